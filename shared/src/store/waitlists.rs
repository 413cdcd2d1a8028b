//! Waitlist entries: joining (the entry, the stock row's `waiting`, the user's hold count
//! and allowance, in one transaction), reading, the queue, and ending an entry without an
//! offer (left or expired), each the mirror of the other.

use super::idempotency::Completion;
use super::keys::*;
use super::records::reservation as hold_rec;
use super::records::stock::Row;
use super::records::waitlist as rec;
use super::records::{self, update};
use super::{Repo, StoreError};
use crate::domain::movement::{Cause, Reason, RefKind};
use crate::domain::product::Terms;
use crate::domain::reservation::Reservation;
use crate::domain::time::format_time;
use crate::domain::waitlist::{Entry, SYSTEM_ACTOR};
use thiserror::Error;

/// Why a join did not apply.
#[derive(Debug, Error)]
pub enum JoinError {
    /// A hold could be filled now: `available` units beyond the queue's.
    #[error("{available} available")]
    Available { available: i64 },
    /// The queue is of another size (`waiting`) than the join assumed: join again with it.
    #[error("{waiting} waiting")]
    Waiting { waiting: i64 },
    /// The product has no stock row in the warehouse.
    #[error("no stock row")]
    NoStockRow,
    /// The product's terms changed since they were read.
    #[error("the product's terms changed")]
    TermsChanged,
    #[error("hold limit reached")]
    HoldLimit,
    /// The customer's units of the product leave no room under `limit` (`counted` now).
    #[error("purchase limit {limit} reached")]
    PurchaseLimit { limit: i64, counted: i64 },
    #[error("idempotency lease lost")]
    LeaseLost,
    /// A refusal none of the rules explains: join again.
    #[error("raced")]
    Raced,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
pub struct Waitlists(pub(crate) Repo);

impl Waitlists {
    /// Puts `e` (waiting) in its warehouse's queue: the row's `waiting` grows by its
    /// quantity on condition that a hold of it could not be filled (`records::waitlist::
    /// queue`, judged on the `seen` waiting), the user's hold count (within `hold_cap`)
    /// and allowance (within the product's limit) count it as a hold, and with
    /// `completion` the idempotency record. All or none.
    pub async fn join(
        &self,
        e: &Entry,
        terms: &Terms,
        seen: i64,
        hold_cap: i64,
        completion: Option<Completion>,
    ) -> Result<(), JoinError> {
        let table = &*self.0.table;
        let now = format_time(e.created_at);
        let actor = e.user_id.as_str();
        let mut items = vec![
            update(rec::queue(
                table,
                &e.product_id,
                e.warehouse_id.as_str(),
                e.quantity,
                terms.terms,
                seen,
                (&now, actor),
            )?),
            records::put(table, rec::item(e, actor)?, "attribute_not_exists(pk)")?,
            update(hold_rec::allow(table, &e.product_id, &e.user_id, e.quantity, terms.max_per_customer)?),
            update(hold_rec::count(table, &e.user_id, hold_cap, 1)?),
        ];
        let keyed = completion.is_some();
        if let Some(c) = completion {
            items.push(update(c.0));
        }
        let err = match self.0.db.transact("join_waitlist", items).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        // The contract's order, as for a hold: terms, hold cap, purchase limit, stock.
        let row = err.failed_at(0);
        if let Some(Some(old)) = row {
            if old.opt_n("terms").unwrap_or(0) != terms.terms {
                return Err(JoinError::TermsChanged);
            }
        }
        if err.failed_at(3).is_some() {
            return Err(JoinError::HoldLimit);
        }
        if let (Some(old), Some(limit)) = (err.failed_at(2), terms.max_per_customer) {
            return Err(JoinError::PurchaseLimit {
                limit,
                counted: old.and_then(|a| a.opt_n("units")).unwrap_or(0),
            });
        }
        if keyed && err.failed_at(4).is_some() {
            return Err(JoinError::LeaseLost);
        }
        match row {
            Some(None) => Err(JoinError::NoStockRow),
            Some(Some(old)) => {
                let (available, waiting) =
                    (old.opt_n("available").unwrap_or(0), old.opt_n("waiting").unwrap_or(0));
                if available - waiting >= e.quantity {
                    Err(JoinError::Available { available: available - waiting })
                } else if waiting != seen {
                    Err(JoinError::Waiting { waiting })
                } else {
                    Err(JoinError::Raced)
                }
            }
            None => match err {
                StoreError::ConditionFailed { .. } => Err(JoinError::Raced),
                other => Err(other.into()),
            },
        }
    }

    /// Offers `e` its units as the hold `r` (active, its user's, `e`'s product, warehouse
    /// and quantity): the entry `offered` on condition that it still waits and has time
    /// left, the row's units from the queue to the hold (`Row::offer`), the reservation
    /// put. The user's hold count and allowance already count the entry, which becomes the
    /// hold. `Ok(false)`: the entry or the units were not there; nothing was written.
    pub async fn offer(&self, e: &Entry, r: &Reservation) -> Result<bool, StoreError> {
        let table = &*self.0.table;
        let now = format_time(r.created_at);
        let cause = Cause::of(Reason::Hold, RefKind::Reservation, &r.id);
        let row = Row {
            table,
            product_id: &e.product_id,
            warehouse: e.warehouse_id.as_str(),
            bucket: 0,
            now: &now,
            actor: SYSTEM_ACTOR,
            cause: &cause,
        };
        let items = vec![
            update(rec::offered(table, e, &r.id, &now)?),
            update(row.offer(e.quantity)?),
            records::put(table, hold_rec::item(r, SYSTEM_ACTOR)?, "attribute_not_exists(pk)")?,
        ];
        match self.0.db.transact("offer_waitlist_entry", items).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Entry>, StoreError> {
        let item = self.0.db.get("get_waitlist_entry", &self.0.table, &waitlist_pk(id), WAITLIST_SK).await?;
        item.as_ref().map(rec::entry).transpose()
    }

    /// Ends a waiting entry without an offer (`after`: left or expired): out of its queue
    /// on condition that it still waits, its units no longer kept, its place against the
    /// hold cap and the purchase limit given back. `Ok(false)`: it no longer waited
    /// (another end, or an offer, came first); nothing was written.
    pub async fn end(&self, after: &Entry, actor: &str) -> Result<bool, StoreError> {
        let table = &*self.0.table;
        let now = format_time(after.updated_at);
        let items = vec![
            update(rec::end(table, after, actor)?),
            update(rec::unqueue(
                table,
                &after.product_id,
                after.warehouse_id.as_str(),
                after.quantity,
                (&now, actor),
            )?),
            update(hold_rec::uncount(table, &after.user_id, 1)?),
            update(hold_rec::disallow(table, &after.product_id, &after.user_id, after.quantity)?),
        ];
        match self.0.db.transact("end_waitlist_entry", items).await {
            Ok(()) => Ok(true),
            Err(e) if e.failed_at(0).is_some() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Up to `limit` waiting entries of a warehouse's queue after `after` (an id), first
    /// come first; `more` says whether another page exists. From the index: an entry
    /// that joined or stopped waiting a moment ago may show, or still show, on the next
    /// call.
    pub async fn queue(
        &self,
        product_id: &str,
        warehouse: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Entry>, bool), StoreError> {
        let q = self
            .0
            .db
            .query(&self.0.table)
            .index_name(GSI1)
            .expression_attribute_values(":pk", records::s(queue_pk(product_id, warehouse)));
        let q = match after {
            Some(a) => q
                .key_condition_expression("gsi1pk = :pk AND gsi1sk > :after")
                .expression_attribute_values(":after", records::s(a)),
            None => q.key_condition_expression("gsi1pk = :pk"),
        };
        let mut found = self.0.db.query_all("waitlist_queue", q, Some(limit + 1)).await?;
        let more = found.len() > limit;
        found.truncate(limit);
        let entries = found.iter().map(rec::entry).collect::<Result<Vec<_>, _>>()?;
        Ok((entries, more))
    }

    /// Where `e` stands in its queue: 1 + the waiting entries that joined before it.
    pub async fn position(&self, e: &Entry) -> Result<i64, StoreError> {
        let q = self
            .0
            .db
            .query(&self.0.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :pk AND gsi1sk < :id")
            .expression_attribute_values(":pk", records::s(queue_pk(&e.product_id, e.warehouse_id.as_str())))
            .expression_attribute_values(":id", records::s(&e.id))
            .select(aws_sdk_dynamodb::types::Select::Count);
        let mut ahead = 0;
        let mut start = None;
        loop {
            // No filter: the items evaluated are the entries counted.
            let page = self.0.db.query_page("waitlist_position", q.clone(), start).await?;
            ahead += i64::try_from(page.scanned).unwrap_or(i64::MAX);
            start = page.next;
            if start.is_none() {
                return Ok(ahead + 1);
            }
        }
    }
}
