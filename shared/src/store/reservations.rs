//! Reservations. Each hold change is one transaction over the reservation, its stock row
//! and the user's hold count, so units move exactly once.

use super::exec::Write;
use super::idempotency::Completion;
use super::keys::*;
use super::records::stock::Row;
use super::records::{self, reservation as rec, update};
use super::{Repo, StoreError};
use crate::domain::movement::{Cause, Reason, RefKind};
use crate::domain::product::Terms;
use crate::domain::reservation::{Reservation, ReservationStatus};
use crate::domain::time::format_time;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use thiserror::Error;

/// Why a hold (a single one, or a batch of lines: the store knows no difference) was not
/// written; nothing of it was. `line` is the failing line's index in request order.
#[derive(Debug, Error)]
pub enum HoldError {
    /// The line's product has no stock row for its warehouse (or row in its bucket).
    #[error("line {line}: no stock row")]
    NoStockRow { line: usize },
    /// The line's row has too few units.
    #[error("line {line}: only {available} available")]
    Insufficient { line: usize, available: i64 },
    /// The customer's units of the line's product (held and on order) leave no room for
    /// the line's under the product's `limit` (the one the hold was decided on, so a
    /// refusal always names a limit); `counted` is how many they have.
    #[error("line {line}: purchase limit {limit} reached")]
    PurchaseLimit { line: usize, limit: i64, counted: i64 },
    /// The line's product's terms (archived, purchase limit, warehouses) changed since
    /// they were read.
    #[error("line {line}: the product's terms changed")]
    TermsChanged { line: usize },
    /// The line's row has the units beyond a waitlist's, but its waitlist asks for
    /// another number (`waiting`) than the hold assumed: write again with it.
    #[error("line {line}: {waiting} units waiting")]
    Waiting { line: usize, waiting: i64 },
    /// The user already holds as many active reservations as the cap allows.
    #[error("hold limit reached")]
    HoldLimit,
    /// A condition refused the write that none of the hold's rules explains (a
    /// reservation id taken, a row that has the units after all): a race; write again.
    #[error("the hold's items changed under it")]
    Raced,
    /// The idempotency lease was taken over by a retry.
    #[error("idempotency lease lost")]
    LeaseLost,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a hold ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldEnd {
    /// By its owner or an admin, only while unexpired.
    Release,
    /// By the expiry job or the sweep, only once its time is up.
    Expire,
}

/// What an attempt to end a hold found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// This call ended it and gave its units back.
    Now,
    /// It was not active (or, for `Release`, already past its time; for `Expire`, not
    /// yet due): nothing changed. Whoever wins a race applies it; everyone else sees this.
    NotActive,
}

/// What an extension found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extended {
    /// The hold now ends at the new time, instead of the end it was read with.
    Now,
    /// It changed since it was read (another extension, or it ended or expired): nothing
    /// changed; read it again.
    Moved,
}

/// One page of overdue holds from the sweep index.
#[derive(Debug, Clone)]
pub struct Overdue {
    pub holds: Vec<Reservation>,
    /// A shard had more than the page took.
    pub more: bool,
}

#[derive(Debug, Clone)]
pub struct Reservations(pub(crate) Repo);

impl Reservations {
    /// Holds every line of a hold in one transaction, or none (a single hold is one
    /// line): per line the stock row (under that product's `terms`), the reservation and
    /// the customer's allowance; once the hold count for all lines (refused beyond
    /// `hold_cap`); with `completion` the idempotency record. Each line names the
    /// `waiting` it saw on its row (`Row::hold`). On failure, the first failing line in
    /// request order says why.
    pub async fn hold(
        &self,
        lines: &[(Reservation, Terms, i64)],
        actor: &str,
        completion: Option<Completion>,
        hold_cap: i64,
    ) -> Result<(), HoldError> {
        let table = &*self.0.table;
        let user = lines.first().map(|(r, _, _)| r.user_id.as_str()).unwrap_or(actor);
        let mut items = Vec::with_capacity(lines.len() * 3 + 2);
        for (r, terms, waiting) in lines {
            let now = format_time(r.created_at);
            let cause = Cause::of(Reason::Hold, RefKind::Reservation, &r.id);
            items.push(update(held_row(table, r, &now, actor, &cause).hold(
                r.quantity,
                terms.terms,
                *waiting,
            )?));
            items.push(records::put(table, rec::item(r, actor)?, "attribute_not_exists(pk)")?);
            items.push(update(rec::allow(
                table,
                &r.product_id,
                &r.user_id,
                r.quantity,
                terms.max_per_customer,
            )?));
        }
        let count_at = items.len();
        let holds = i64::try_from(lines.len()).unwrap_or(i64::MAX);
        items.push(update(rec::count(table, user, hold_cap, holds)?));
        let keyed = completion.is_some();
        if let Some(c) = completion {
            items.push(update(c.0));
        }
        let e = match self.0.db.transact("hold", items).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        // In the contract's order: terms (the decision was made on old ones), the hold
        // cap, then per line the purchase limit and the stock, the first line first.
        for (i, (_, terms, _)) in lines.iter().enumerate() {
            if let Some(Some(row)) = e.failed_at(3 * i) {
                if row.opt_n("terms").unwrap_or(0) != terms.terms {
                    return Err(HoldError::TermsChanged { line: i });
                }
            }
        }
        if e.failed_at(count_at).is_some() {
            return Err(HoldError::HoldLimit);
        }
        for (i, (_, terms, _)) in lines.iter().enumerate() {
            // Only a line under a limit carries a condition on its allowance.
            if let (Some(old), Some(limit)) = (e.failed_at(3 * i + 2), terms.max_per_customer) {
                let counted = old.and_then(|a| a.opt_n("units")).unwrap_or(0);
                return Err(HoldError::PurchaseLimit { line: i, limit, counted });
            }
        }
        if keyed && e.failed_at(count_at + 1).is_some() {
            return Err(HoldError::LeaseLost);
        }
        for (i, (r, _, seen)) in lines.iter().enumerate() {
            if let Some(old) = e.failed_at(3 * i) {
                let old = match old {
                    Some(item) => Some(item.clone()),
                    None => {
                        let (pk, sk) = (stock_pk(&r.product_id, r.bucket), stock_sk(r.warehouse_id.as_str()));
                        self.0.db.get("hold", table, &pk, &sk).await?
                    }
                };
                let Some(row) = old else { return Err(HoldError::NoStockRow { line: i }) };
                let Some(available) = row.opt_n("available") else {
                    return Err(HoldError::NoStockRow { line: i });
                };
                // The units a hold may take: those beyond the waitlist's.
                let waiting = row.opt_n("waiting").unwrap_or(0);
                let holdable = available - waiting;
                return Err(match holdable >= r.quantity {
                    true if waiting != *seen => HoldError::Waiting { line: i, waiting },
                    true => HoldError::Raced,
                    false => HoldError::Insufficient { line: i, available: holdable.max(0) },
                });
            }
        }
        Err(match e {
            StoreError::ConditionFailed { .. } => HoldError::Raced,
            e => e.into(),
        })
    }

    /// The units a customer holds and has on order of a product (their allowance's count).
    pub async fn allowance(&self, product_id: &str, user_id: &str) -> Result<i64, StoreError> {
        let pk = allowance_pk(product_id, user_id);
        let item = self.0.db.get("allowance", &self.0.table, &pk, ALLOWANCE_SK).await?;
        Ok(item.and_then(|i| i.opt_n("units")).unwrap_or(0))
    }

    pub async fn get(&self, id: &str) -> Result<Option<Reservation>, StoreError> {
        let item =
            self.0.db.get("get_reservation", &self.0.table, &reservation_pk(id), RESERVATION_SK).await?;
        item.map(|i| rec::reservation(&i)).transpose()
    }

    /// The reservations that exist among `ids`, read consistently.
    pub async fn get_many(&self, ids: &[impl AsRef<str>]) -> Result<Vec<Reservation>, StoreError> {
        let keys = ids.iter().map(|id| (reservation_pk(id.as_ref()), RESERVATION_SK.to_string())).collect();
        self.0.db.batch_get(&self.0.table, keys).await?.iter().map(rec::reservation).collect()
    }

    /// Ends an active hold and gives its units back, in one transaction.
    pub async fn end_hold(
        &self,
        r: &Reservation,
        how: HoldEnd,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<Ended, StoreError> {
        let table = &*self.0.table;
        let now = format_time(now);
        let (status, timing, reason) = match how {
            HoldEnd::Release => (ReservationStatus::Released, "expires_at > :now", Reason::Release),
            HoldEnd::Expire => (ReservationStatus::Expired, "expires_at <= :now", Reason::Expiry),
        };
        let cause = Cause::of(reason, RefKind::Reservation, &r.id);
        let row = held_row(table, r, &now, actor, &cause);
        let items = vec![
            update(rec::end(table, &r.id, status, timing, &now, actor)?),
            update(row.give_back(r.quantity)?),
            update(rec::uncount(table, &r.user_id, 1)?),
            update(rec::disallow(table, &r.product_id, &r.user_id, r.quantity)?),
        ];
        match self.0.db.transact("end_hold", items).await {
            Ok(()) => Ok(Ended::Now),
            Err(e) if e.failed_at(0).is_some() => Ok(Ended::NotActive),
            Err(e) if e.failed_at(1).is_some() => {
                tracing::error!(reservation_id = %r.id, "stock row holds fewer reserved units than an active reservation");
                Err(StoreError::Internal("reserved units missing".into()))
            }
            Err(e) => Err(e),
        }
    }

    /// Moves an active, unexpired hold's end to `until`, from the end `r` was read with.
    pub async fn extend(
        &self,
        r: &Reservation,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<Extended, StoreError> {
        let update = self.0.db.update_item(&self.0.table);
        let (was, until, now) = (format_time(r.expires_at), format_time(until), format_time(now));
        let update = rec::extend(update, &r.id, &was, &until, &now, actor);
        Ok(match self.0.db.update("extend_reservation", update).await? {
            Write::Applied => Extended::Now,
            Write::ConditionFailed(_) => Extended::Moved,
        })
    }

    /// Active reservations whose `expires_at <= now`, at most `per_shard` from each
    /// shard of the sparse sweep index (oldest expiry first), so a backlog in one shard
    /// cannot starve the others. The index is eventually consistent: some may have ended
    /// a moment ago (`end_hold` then says so).
    pub async fn overdue(&self, now: DateTime<Utc>, per_shard: usize) -> Result<Overdue, StoreError> {
        // sweep_sk is "<expires_at>#<id>" with fixed-width times, so everything due by
        // `now` sorts before the time one millisecond later.
        let bound = format_time(now + chrono::Duration::milliseconds(1));
        let mut out = Overdue { holds: Vec::new(), more: false };
        for shard in 0..SWEEP_SHARDS {
            let q = self
                .0
                .db
                .query(&self.0.table)
                .index_name(SWEEP_INDEX)
                .key_condition_expression("sweep_pk = :pk AND sweep_sk < :bound")
                .expression_attribute_values(":pk", records::s(sweep_shard_pk(shard)))
                .expression_attribute_values(":bound", records::s(&bound));
            // One more than the page tells whether the shard has more.
            let per_shard = per_shard.max(1);
            let items = self.0.db.query_all("overdue_reservations", q, Some(per_shard + 1)).await?;
            out.more |= items.len() > per_shard;
            for item in items.iter().take(per_shard) {
                out.holds.push(rec::reservation(item)?);
            }
        }
        Ok(out)
    }

    /// The units of `product_id` that its active reservations hold, per warehouse (every
    /// bucket summed), from the held-units keys on the product list index: one `Query`
    /// page per 1 MB of active holds, so its cost follows the holds open now, never the
    /// product's history. The index is eventually consistent: a hold of a moment ago may
    /// be missing, and one that ended a moment ago may still count.
    pub async fn held_units(&self, product_id: &str) -> Result<BTreeMap<String, i64>, StoreError> {
        let q = self
            .0
            .db
            .query(&self.0.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :pk")
            .projection_expression("warehouse_id, quantity")
            .expression_attribute_values(":pk", records::s(held_pk(product_id)));
        let mut held = BTreeMap::new();
        for item in self.0.db.query_all("held_units", q, None).await? {
            *held.entry(item.s("warehouse_id")?.to_string()).or_default() += item.n("quantity")?;
        }
        Ok(held)
    }
}

/// The stock row a reservation holds its units in.
fn held_row<'a>(
    table: &'a str,
    r: &'a Reservation,
    now: &'a str,
    actor: &'a str,
    cause: &'a Cause,
) -> Row<'a> {
    let (product_id, warehouse, bucket) = (&*r.product_id, r.warehouse_id.as_str(), r.bucket);
    Row { table, product_id, warehouse, bucket, now, actor, cause }
}
