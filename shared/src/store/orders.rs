//! Orders: the conversion of reservations into an order, reads, status changes, and
//! returns.

use super::idempotency::Completion;
use super::keys::*;
use super::records::stock::Row;
use super::records::{self, order as rec, reservation, update};
use super::{Repo, StoreError};
use crate::domain::movement::{Cause, Reason, RefKind};
use crate::domain::order::{Order, OrderItem, OrderStatus};
use crate::domain::order_return::{OrderReturn, ReturnPlan};
use crate::domain::time::format_time;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use thiserror::Error;

/// Why a conversion did not apply.
#[derive(Debug, Error)]
pub enum ConvertError {
    /// A reservation was no longer active, owned or unexpired at commit time.
    #[error("a reservation changed")]
    ReservationsChanged,
    /// The idempotency lease was taken over; nothing was written.
    #[error("idempotency lease lost")]
    LeaseLost,
    /// A product's price (or other own field) changed since it was read; nothing was
    /// written, so no order carries a price that was never current with its lines.
    #[error("a product changed")]
    PricesChanged,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a status change found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusWrite {
    Applied,
    /// The status was no longer the one read; nothing was written.
    Changed,
    /// A cancellation would take a warehouse past the most units a row holds; nothing
    /// was written.
    RowFull,
}

/// What a return's write found.
#[derive(Debug, Error)]
pub enum ReturnError {
    /// The order is not as planned from any more (another return or a status change came
    /// first); nothing was written: plan again.
    #[error("the order changed")]
    Changed,
    #[error("idempotency lease lost")]
    LeaseLost,
    /// A restock would take a warehouse past the most units a row holds; nothing was
    /// written.
    #[error("a row would be full")]
    RowFull,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Units per stock row (product, warehouse, bucket) of an order's lines: one transaction
/// may touch each row only once.
fn units_per_row(lines: &[OrderItem]) -> BTreeMap<(&str, &str, usize), i64> {
    let mut rows = BTreeMap::new();
    for l in lines {
        *rows.entry((l.product_id.as_str(), l.warehouse_id.as_str(), l.bucket)).or_insert(0) += l.quantity;
    }
    rows
}

#[derive(Debug, Clone)]
pub struct Orders(pub(crate) Repo);

impl Orders {
    /// Converts the order's reservations and writes the order in one transaction: each
    /// reservation `active -> converted` (still active, the caller's and unexpired at
    /// `now`), each stock row's units from reserved to sold, the hold count, the order
    /// put, and with `completion` the idempotency record completed. All of it or none.
    pub async fn create(
        &self,
        order: &Order,
        now: DateTime<Utc>,
        completion: Option<Completion>,
        product_versions: &[(&str, i64)],
    ) -> Result<(), ConvertError> {
        let table = &*self.0.table;
        let now = format_time(now);
        let actor = order.user_id.as_str();
        let mut items = Vec::new();
        for line in &order.items {
            items.push(update(reservation::convert(table, &line.reservation_id, &order.id, &now, actor)?));
        }
        let cause = Cause::of(Reason::Sale, RefKind::Order, &order.id);
        for ((product_id, warehouse, bucket), q) in units_per_row(&order.items) {
            items.push(update(
                Row { table, product_id, warehouse, bucket, now: &now, actor, cause: &cause }.sell(q)?,
            ));
        }
        let converted = i64::try_from(order.items.len()).unwrap_or(i64::MAX);
        items.push(update(reservation::uncount(table, actor, converted)?));
        items.push(records::put(table, rec::item(order, actor)?, "attribute_not_exists(pk)")?);
        let keyed = completion.is_some();
        if let Some(c) = completion {
            items.push(update(c.0));
        }
        let completion_at = items.len() - 1;
        let checks_from = items.len();
        for &(product_id, version) in product_versions {
            items.push(records::product::unchanged(table, product_id, version)?);
        }
        match self.0.db.transact("create_order", items).await {
            Ok(()) => Ok(()),
            Err(e)
                if (checks_from..checks_from + product_versions.len()).any(|i| e.failed_at(i).is_some()) =>
            {
                Err(ConvertError::PricesChanged)
            }
            Err(e) if (0..order.items.len()).any(|i| e.failed_at(i).is_some()) => {
                Err(ConvertError::ReservationsChanged)
            }
            Err(e) if keyed && e.failed_at(completion_at).is_some() => Err(ConvertError::LeaseLost),
            Err(e @ StoreError::ConditionFailed { .. }) => {
                tracing::error!(order_id = %order.id, error = %e, "reserved units missing for active reservations");
                Err(StoreError::Internal("reserved units missing".into()).into())
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Order>, StoreError> {
        let item = self.0.db.get("get_order", &self.0.table, &order_pk(id), ORDER_SK).await?;
        item.map(|i| rec::order(&i)).transpose()
    }

    /// Moves the order from its current status to `to`, on condition that the status is
    /// still the one read; cancelling also puts the sold units back on hand and on sale,
    /// in the same transaction.
    pub async fn change_status(
        &self,
        order: &Order,
        to: OrderStatus,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<StatusWrite, StoreError> {
        let table = &*self.0.table;
        let now = format_time(now);
        let mut items = vec![update(rec::change_status(table, order, to, &now, actor)?)];
        if to == OrderStatus::Cancelled {
            // The units go back to the customer's allowances too.
            let mut per_product: BTreeMap<&str, i64> = BTreeMap::new();
            for l in &order.items {
                *per_product.entry(l.product_id.as_str()).or_insert(0) += l.quantity;
            }
            for (product_id, q) in per_product {
                items.push(update(reservation::disallow(table, product_id, &order.user_id, q)?));
            }
            let cause = Cause::of(Reason::Cancellation, RefKind::Order, &order.id);
            for ((product_id, warehouse, bucket), q) in units_per_row(&order.items) {
                let row = Row { table, product_id, warehouse, bucket, now: &now, actor, cause: &cause };
                items.push(update(row.restock(q)?));
            }
        }
        match self.0.db.transact("change_order_status", items).await {
            Ok(()) => Ok(StatusWrite::Applied),
            Err(e) if e.failed_at(0).is_some() => Ok(StatusWrite::Changed),
            // Only the restocked rows carry conditions besides the order.
            Err(StoreError::ConditionFailed { .. }) => Ok(StatusWrite::RowFull),
            Err(e) => Err(e),
        }
    }

    /// Writes a return as planned in one transaction: the order's lines take the units
    /// back (`record_return`'s conditions), the return is put, the restocked units go
    /// back on hand and on sale in the rows they were sold from (`return` movements), the
    /// customer's allowances get every returned unit back, and with `completion` the
    /// idempotency record is completed. All of it or none.
    pub async fn record_return(
        &self,
        plan: &ReturnPlan,
        actor: &str,
        completion: Option<Completion>,
    ) -> Result<(), ReturnError> {
        let table = &*self.0.table;
        let ret = &plan.ret;
        let now = format_time(ret.created_at);
        let mut items = vec![update(rec::record_return(table, plan, &now, actor)?)];
        items.push(records::put(table, rec::return_item(ret)?, "attribute_not_exists(pk)")?);
        let cause = Cause::of(Reason::Return, RefKind::Return, &ret.id);
        for ((product_id, warehouse, bucket), q) in ret.restocked_per_row() {
            let row = Row { table, product_id, warehouse, bucket, now: &now, actor, cause: &cause };
            items.push(update(row.restock(q)?));
        }
        for (product_id, q) in ret.units_per_product() {
            items.push(update(reservation::disallow(table, product_id, &plan.after.user_id, q)?));
        }
        let completion_at = completion.as_ref().map(|_| items.len());
        if let Some(c) = completion {
            items.push(update(c.0));
        }
        match self.0.db.transact("record_return", items).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed_at(0).is_some() => Err(ReturnError::Changed),
            Err(e) if completion_at.is_some_and(|i| e.failed_at(i).is_some()) => Err(ReturnError::LeaseLost),
            // The return item is new and the allowances carry no condition: a restocked row.
            Err(StoreError::ConditionFailed { .. }) => Err(ReturnError::RowFull),
            Err(e) => Err(e.into()),
        }
    }

    /// Up to `limit` of an order's returns after `after` (an id), oldest first; `more`
    /// says whether another page exists.
    pub async fn returns(
        &self,
        order_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<OrderReturn>, bool), StoreError> {
        let q = self
            .0
            .db
            .query(&self.0.table)
            .expression_attribute_values(":pk", records::s(order_pk(order_id)))
            .consistent_read(true);
        let q = match after {
            // The partition's other items (`#ORDER`) sort before `RETURN#`.
            Some(a) => q
                .key_condition_expression("pk = :pk AND sk > :after")
                .expression_attribute_values(":after", records::s(order_return_sk(a))),
            None => q
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", records::s(ORDER_RETURN_SK_PREFIX)),
        };
        let mut found = self.0.db.query_all("list_returns", q, Some(limit + 1)).await?;
        let more = found.len() > limit;
        found.truncate(limit);
        let returns = found.iter().map(rec::order_return).collect::<Result<Vec<_>, _>>()?;
        Ok((returns, more))
    }
}
