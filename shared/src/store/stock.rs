//! Stock: adjustments of on-hand units and the buckets of hot products. Holds and sales
//! move stock too, but inside the reservation and order transactions (see
//! `records::stock::Row`).

use super::keys::*;
use super::records::stock::{self as rec, Row};
use super::records::{self, update};
use super::{Repo, StoreError};
use crate::domain::buckets::{plan_removal, split_evenly};
use crate::domain::movement::{Cause, Reason};
use crate::domain::stock::{StockLevel, Units, WarehouseId, MAX_QUANTITY};
use crate::domain::time::format_time;
use aws_sdk_dynamodb::types::{ConditionCheck, TransactWriteItem};
use chrono::{DateTime, Utc};
use thiserror::Error;

/// Why a stock adjustment did not apply.
#[derive(Debug, Error)]
pub enum AdjustError {
    #[error("no such product")]
    ProductNotFound,
    #[error("no stock in that warehouse")]
    WarehouseNotFound,
    #[error("only {available} available")]
    Insufficient { available: i64 },
    #[error("on-hand would pass the maximum")]
    TooMuch,
    /// A count's `expected` was not the current `on_hand`; nothing was written.
    #[error("{on_hand} on hand, not the count's expected number")]
    StockChanged { on_hand: i64 },
    /// A bucketed removal kept losing races with reservations; nothing was written.
    #[error("buckets kept changing")]
    Contended,
    /// The product's terms changed since they were read; nothing was written.
    #[error("the product's terms changed")]
    TermsChanged,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What gathering units into one bucket did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gathered {
    Moved,
    /// A donor no longer had its share (a racing reservation took it); nothing moved.
    Raced,
}

/// Most items one `TransactGetItems` reads.
const SNAPSHOT_ITEMS: usize = 100;

/// How often a bucketed removal re-plans on a fresh snapshot after losing a race.
const REMOVAL_ATTEMPTS: usize = 4;

/// An adjustment of one product's stock in one warehouse.
#[derive(Debug, Clone, Copy)]
pub struct Adjustment<'a> {
    pub product_id: &'a str,
    pub warehouse: &'a WarehouseId,
    pub delta: i64,
    /// The product's `stock_buckets`.
    pub buckets: usize,
    /// The product's terms version (`Terms::terms`), which new rows take.
    pub terms: i64,
    pub now: DateTime<Utc>,
    pub actor: &'a str,
    /// Why (`received`, `removed`, `damaged`), with the admin's note.
    pub cause: &'a Cause,
}

/// A count of one warehouse's stock: `on_hand` becomes `set_on_hand` (and with
/// `expected`, only where that is the current number).
#[derive(Debug, Clone, Copy)]
pub struct Count<'a> {
    pub product_id: &'a str,
    pub warehouse: &'a WarehouseId,
    pub set_on_hand: i64,
    pub expected: Option<i64>,
    pub buckets: usize,
    pub now: DateTime<Utc>,
    pub actor: &'a str,
    pub cause: &'a Cause,
}

/// What a count did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Applied,
    /// `on_hand` already was the number: nothing written.
    Unchanged,
}

#[derive(Debug, Clone)]
pub struct Stock(pub(crate) Repo);

impl Stock {
    fn row<'a>(&'a self, a: &Adjustment<'a>, bucket: usize, now: &'a str) -> Row<'a> {
        Row {
            table: &self.0.table,
            product_id: a.product_id,
            warehouse: a.warehouse.as_str(),
            bucket,
            now,
            actor: a.actor,
            cause: a.cause,
        }
    }

    /// The check that the product exists, first in every adjustment.
    fn product_exists(&self, product_id: &str) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&*self.0.table)
            .key(PK, records::s(product_pk(product_id)))
            .key(SK, records::s(PRODUCT_SK))
            .condition_expression("attribute_exists(pk)")
            .build()?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// The first item of every adjustment: a removal checks that the product exists; an
    /// addition (which may create rows) also counts itself on the product (`stock_rev`),
    /// so that a change of terms knows whether it reached every row, and holds the terms
    /// its new rows take.
    fn product_guard(&self, a: &Adjustment<'_>) -> Result<TransactWriteItem, StoreError> {
        if a.delta > 0 {
            Ok(update(records::product::added_stock(&self.0.table, a.product_id, a.terms)?))
        } else {
            self.product_exists(a.product_id)
        }
    }

    /// Why the guard failed: no product, or its terms moved on.
    fn guard_failed(&self, old: Option<&super::Item>) -> AdjustError {
        match old {
            Some(_) => AdjustError::TermsChanged,
            None => AdjustError::ProductNotFound,
        }
    }

    /// Adds (`delta > 0`, creating the row if needed) or removes on-hand units in one
    /// conditional transaction: the product must exist, removal may only take available
    /// units, and on-hand may not pass the maximum.
    pub async fn adjust(&self, a: Adjustment<'_>) -> Result<(), AdjustError> {
        if a.buckets > 1 {
            return self.adjust_buckets(a).await;
        }
        let now = format_time(a.now);
        let row = self.row(&a, 0, &now);
        let change = if a.delta > 0 { row.add(a.delta, a.terms)? } else { row.remove(-a.delta)? };
        let items = vec![self.product_guard(&a)?, update(change)];
        let e = match self.0.db.transact("adjust_stock", items).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if let Some(old) = e.failed_at(0) {
            return Err(self.guard_failed(old));
        }
        let Some(old) = e.failed_at(1) else { return Err(e.into()) };
        if a.delta > 0 {
            return Err(AdjustError::TooMuch);
        }
        let old = match old {
            Some(item) => Some(item.clone()),
            None => {
                self.0
                    .db
                    .get(
                        "adjust_stock",
                        &self.0.table,
                        &product_pk(a.product_id),
                        &stock_sk(a.warehouse.as_str()),
                    )
                    .await?
            }
        };
        match old.and_then(|i| i.opt_n("available")) {
            None => Err(AdjustError::WarehouseNotFound),
            Some(available) => Err(AdjustError::Insufficient { available }),
        }
    }

    /// `adjust` for a bucketed product. An addition is split evenly over the buckets
    /// (creating rows of a new warehouse in every bucket); a removal takes available
    /// units from the fullest buckets (`plan_removal`), each on condition that they are
    /// still there, re-planned on a fresh snapshot when a reservation got there first.
    /// The maximum is checked on the snapshot's sum (and per row in the write), so only
    /// two admins adding at the same instant could pass it together.
    async fn adjust_buckets(&self, a: Adjustment<'_>) -> Result<(), AdjustError> {
        let now = format_time(a.now);
        let k = a.buckets;
        for _ in 0..REMOVAL_ATTEMPTS {
            let snapshot = self.buckets(a.product_id, a.warehouse, k).await?;
            let mut items = vec![self.product_guard(&a)?];
            if a.delta > 0 {
                let on_hand: i64 = snapshot.iter().flatten().map(|b| b.on_hand).sum();
                if on_hand + a.delta > MAX_QUANTITY {
                    return Err(AdjustError::TooMuch);
                }
                for (bucket, x) in split_evenly(a.delta, k).into_iter().enumerate() {
                    // A known warehouse has a row in every bucket (they are created
                    // together), so a bucket whose share is 0 is left alone: writing it
                    // would change nothing but `updated_at` and audit an empty change.
                    if x == 0 && snapshot.is_some() {
                        continue;
                    }
                    items.push(update(self.row(&a, bucket, &now).add(x, a.terms)?));
                }
            } else {
                let Some(buckets) = snapshot else { return Err(AdjustError::WarehouseNotFound) };
                let Some(takes) = plan_removal(&buckets, -a.delta) else {
                    return Err(AdjustError::Insufficient {
                        available: buckets.iter().map(|b| b.available).sum(),
                    });
                };
                for (bucket, x) in takes {
                    items.push(update(self.row(&a, bucket, &now).remove(x)?));
                }
            }
            match self.0.db.transact("adjust_stock", items).await {
                Ok(()) => return Ok(()),
                Err(e) if e.failed_at(0).is_some() => return Err(self.guard_failed(e.failed_at(0).flatten())),
                Err(StoreError::ConditionFailed { .. }) if a.delta > 0 => return Err(AdjustError::TooMuch),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AdjustError::Contended)
    }

    /// Sets a warehouse's `on_hand` (`Count`) in one transaction over its rows (one per
    /// bucket), each on condition that its `on_hand` is still the one read and its held
    /// units fit: the count applies to exactly the number it was judged on, whatever holds
    /// and sales race it. A sale that got there first makes it read and judge again (and
    /// a count with `expected` then finds the number changed). The units beyond the held
    /// ones are split evenly over the buckets.
    pub async fn count(&self, c: Count<'_>) -> Result<Counted, AdjustError> {
        let now = format_time(c.now);
        let k = c.buckets.max(1);
        for _ in 0..REMOVAL_ATTEMPTS {
            let Some(rows) = self.buckets(c.product_id, c.warehouse, k).await? else {
                return Err(AdjustError::WarehouseNotFound);
            };
            let on_hand: i64 = rows.iter().map(|u| u.on_hand).sum();
            let reserved: i64 = rows.iter().map(|u| u.reserved).sum();
            if c.expected.is_some_and(|e| e != on_hand) {
                return Err(AdjustError::StockChanged { on_hand });
            }
            if on_hand == c.set_on_hand {
                return Ok(Counted::Unchanged);
            }
            if reserved > c.set_on_hand {
                return Err(AdjustError::Insufficient { available: on_hand - reserved });
            }
            let mut items = vec![self.product_exists(c.product_id)?];
            for (bucket, (units, free)) in
                rows.iter().zip(split_evenly(c.set_on_hand - reserved, k)).enumerate()
            {
                let row = Row {
                    table: &self.0.table,
                    product_id: c.product_id,
                    warehouse: c.warehouse.as_str(),
                    bucket,
                    now: &now,
                    actor: c.actor,
                    cause: c.cause,
                };
                items.push(update(row.count(units.on_hand, units.reserved + free)?));
            }
            match self.0.db.transact("count_stock", items).await {
                Ok(()) => return Ok(Counted::Applied),
                Err(e) if e.failed_at(0).is_some() => return Err(AdjustError::ProductNotFound),
                Err(StoreError::ConditionFailed { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AdjustError::Contended)
    }

    /// Each bucket of one warehouse's stock of a bucketed product, indexed by bucket, as
    /// of one instant (one `TransactGetItems`; `k <= MAX_STOCK_ROWS` keeps it within one
    /// call): a `BatchGetItem` reads each row at its own moment, so a gather moving units
    /// between buckets meanwhile could show a total that never was, on which a count
    /// would wrongly answer `stock_changed` or "unchanged", and a hold or a removal
    /// would wrongly be refused. A bucket without a row reads as empty. `None`: no bucket
    /// has a row (the warehouse is unknown).
    pub async fn buckets(
        &self,
        product_id: &str,
        warehouse: &WarehouseId,
        k: usize,
    ) -> Result<Option<Vec<Units>>, StoreError> {
        let keys: Vec<(String, String)> =
            (0..k).map(|b| (stock_pk(product_id, b), stock_sk(warehouse.as_str()))).collect();
        let mut rows = Vec::with_capacity(k);
        for chunk in keys.chunks(SNAPSHOT_ITEMS) {
            rows.extend(self.0.db.snapshot(&self.0.table, chunk.to_vec()).await?);
        }
        if rows.is_empty() {
            return Ok(None);
        }
        let mut buckets = vec![Units::default(); k];
        for row in &rows {
            if let Some(slot) = buckets.get_mut(rec::bucket_of(row)?) {
                *slot = rec::level(row)?.units;
            }
        }
        Ok(Some(buckets))
    }

    /// Moves available units from `donors` into bucket `into` (net zero on-hand), each
    /// donor on condition that it still has them.
    pub async fn gather(
        &self,
        product_id: &str,
        warehouse: &WarehouseId,
        into: usize,
        donors: &[(usize, i64)],
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<Gathered, StoreError> {
        let now = format_time(now);
        let cause = Cause::new(Reason::Rebalance);
        let row = |bucket| Row {
            table: &self.0.table,
            product_id,
            warehouse: warehouse.as_str(),
            bucket,
            now: &now,
            actor,
            cause: &cause,
        };
        let moved: i64 = donors.iter().map(|(_, x)| x).sum();
        let mut items = vec![update(row(into).receive(moved)?)];
        for &(bucket, x) in donors {
            items.push(update(row(bucket).remove(x)?));
        }
        match self.0.db.transact("gather_stock", items).await {
            Ok(()) => Ok(Gathered::Moved),
            Err(StoreError::ConditionFailed { .. }) => Ok(Gathered::Raced),
            Err(e) => Err(e),
        }
    }

    /// A product's stock rows as of one instant. An unbucketed product's rows are bucket
    /// 0's, which came with the product's own `Query`. A bucketed product's rows, every
    /// bucket of every warehouse, are read again in one `TransactGetItems`: a gather
    /// (units moved between buckets by one transaction) is then seen whole or not at all,
    /// so no read shows a total that never was. Every warehouse has a row in every bucket
    /// (creation and additions write them all), so bucket 0's rows name the keys;
    /// `warehouses x stock_buckets <= MAX_STOCK_ROWS` keeps them within one call's 100
    /// items. A product past it (one that grew before every path kept to the limit) is
    /// read 100 rows a call: its total may then mix instants, which beats no answer.
    pub(crate) async fn all_buckets(
        &self,
        id: &str,
        k: usize,
        bucket_zero: Vec<StockLevel>,
    ) -> Result<Vec<StockLevel>, StoreError> {
        // No warehouse yet (a product created without stock): nothing to read, and
        // TransactGetItems refuses an empty list.
        if k <= 1 || bucket_zero.is_empty() {
            return Ok(bucket_zero);
        }
        let keys: Vec<(String, String)> = bucket_zero
            .iter()
            .flat_map(|row| (0..k).map(move |b| (stock_pk(id, b), stock_sk(row.warehouse_id.as_str()))))
            .collect();
        let mut rows = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(SNAPSHOT_ITEMS) {
            rows.extend(self.0.db.snapshot(&self.0.table, chunk.to_vec()).await?);
        }
        rows.iter().map(rec::level).collect()
    }
}
