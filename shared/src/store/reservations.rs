//! Reservations and the stock moves that go with them. Each hold change is one
//! transaction over the reservation and its stock row, so units move exactly once.

use super::idempotency::Completion;
use super::keys::*;
use super::products::{put, stock_from_item};
use super::{n, s, set_bucket, values, Item, Store, StoreError};
use crate::adapters::clock::format_time;
use crate::domain::product::WarehouseId;
use crate::domain::reservation::{Reservation, ReservationStatus};
use crate::domain::stock::StockLevel;
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

/// Why a reservation was not created.
#[derive(Debug)]
pub enum ReserveError {
    /// The product has no stock row for that warehouse.
    NoStockRow,
    Insufficient {
        available: i64,
    },
    /// The idempotency lease was taken over by a retry; nothing was written.
    LeaseLost,
    /// A bucketed product's buckets kept changing under each plan; nothing was written.
    Contended,
    /// The user already holds as many active reservations as the cap allows.
    HoldLimit,
    Store(StoreError),
}

/// How a hold ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldEnd {
    /// By its owner or an admin, only while unexpired.
    Release,
    /// By the expiry job or the sweep, only once its time is up.
    Expire,
}

impl Store {
    /// Holds the units, writes the reservation, counts it among the user's active holds
    /// (refused beyond `hold_cap`) and, with a key, completes the idempotency record, in
    /// one transaction.
    pub async fn create_reservation(
        &self,
        r: &Reservation,
        actor: &str,
        completion: Option<&Completion>,
        hold_cap: i64,
    ) -> Result<(), ReserveError> {
        let now = format_time(r.created_at);
        let hold = Update::builder()
            .table_name(&self.table)
            .key(PK, s(stock_pk(&r.product_id, r.bucket)))
            .key(SK, s(stock_sk(r.warehouse_id.as_str())))
            .update_expression(
                "SET available = available - :q, reserved = reserved + :q, updated_at = :now, last_actor = :actor",
            )
            .condition_expression("available >= :q")
            .expression_attribute_values(":q", n(r.quantity))
            .expression_attribute_values(":now", s(&now))
            .expression_attribute_values(":actor", s(actor))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| ReserveError::Store(e.into()))?;
        let mut items = vec![
            TransactWriteItem::builder().update(hold).build(),
            put(&self.table, reservation_item(r, actor), "attribute_not_exists(pk)")
                .map_err(ReserveError::Store)?,
        ];
        if let Some(c) = completion {
            items.push(c.transact_item(&self.table).map_err(ReserveError::Store)?);
        }
        let count = Update::builder()
            .table_name(&self.table)
            .key(PK, s(holds_pk(&r.user_id)))
            .key(SK, s(HOLDS_SK))
            .update_expression("ADD active :one")
            .condition_expression("attribute_not_exists(active) OR active < :cap")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cap", n(hold_cap))
            .build()
            .map_err(|e| ReserveError::Store(e.into()))?;
        let count_at = items.len();
        items.push(TransactWriteItem::builder().update(count).build());
        match self.transact("create_reservation", items).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed_at(count_at).is_some() => Err(ReserveError::HoldLimit),
            Err(e) if completion.is_some() && e.failed_at(2).is_some() => Err(ReserveError::LeaseLost),
            Err(e) => match e.failed_at(0) {
                None => Err(ReserveError::Store(e)),
                Some(old) => {
                    let old = match old {
                        Some(item) => Some(item.clone()),
                        None => self
                            .get_item(&stock_pk(&r.product_id, r.bucket), &stock_sk(r.warehouse_id.as_str()))
                            .await
                            .map_err(ReserveError::Store)?,
                    };
                    match old.and_then(|i| i.opt_n("available")) {
                        None => Err(ReserveError::NoStockRow),
                        Some(available) => Err(ReserveError::Insufficient { available }),
                    }
                }
            },
        }
    }

    pub async fn get_reservation(&self, id: &str) -> Result<Option<Reservation>, StoreError> {
        self.get_item(&reservation_pk(id), RESERVATION_SK)
            .await?
            .map(|i| reservation_from_item(&i))
            .transpose()
    }

    /// Ends an active hold and gives its units back, in one transaction. `Ok(false)`: the
    /// hold was not active (or, for `Release`, already past its time; for `Expire`, not yet
    /// due), so nothing changed. Whoever wins a race applies it; everyone else sees false.
    pub async fn end_hold(
        &self,
        r: &Reservation,
        how: HoldEnd,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let now = format_time(now);
        let (status, timing) = match how {
            HoldEnd::Release => (ReservationStatus::Released, "expires_at > :now"),
            HoldEnd::Expire => (ReservationStatus::Expired, "expires_at <= :now"),
        };
        let flip = Update::builder()
            .table_name(&self.table)
            .key(PK, s(reservation_pk(&r.id)))
            .key(SK, s(RESERVATION_SK))
            .update_expression(
                "SET #status = :to, updated_at = :now, last_actor = :actor REMOVE sweep_pk, sweep_sk",
            )
            .condition_expression(format!("#status = :active AND {timing}"))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", s(status.as_str()))
            .expression_attribute_values(":active", s(ReservationStatus::Active.as_str()))
            .expression_attribute_values(":now", s(&now))
            .expression_attribute_values(":actor", s(actor))
            .build()?;
        let give_back = Update::builder()
            .table_name(&self.table)
            .key(PK, s(stock_pk(&r.product_id, r.bucket)))
            .key(SK, s(stock_sk(r.warehouse_id.as_str())))
            .update_expression(
                "SET available = available + :q, reserved = reserved - :q, updated_at = :now, last_actor = :actor",
            )
            .condition_expression("reserved >= :q")
            .expression_attribute_values(":q", n(r.quantity))
            .expression_attribute_values(":now", s(&now))
            .expression_attribute_values(":actor", s(actor))
            .build()?;
        let items = vec![
            TransactWriteItem::builder().update(flip).build(),
            TransactWriteItem::builder().update(give_back).build(),
            TransactWriteItem::builder().update(uncount(&self.table, &r.user_id, 1)?).build(),
        ];
        match self.transact("end_hold", items).await {
            Ok(()) => Ok(true),
            Err(e) if e.failed_at(0).is_some() => Ok(false),
            Err(e) if e.failed_at(1).is_some() => {
                tracing::error!(reservation_id = %r.id, "stock row holds fewer reserved units than an active reservation");
                Err(StoreError::Internal("reserved units missing".into()))
            }
            Err(e) => Err(e),
        }
    }

    /// Active reservations whose `expires_at <= now`, at most `per_shard` from each
    /// shard of the sparse sweep index (oldest expiry first), so a backlog in one shard
    /// cannot starve the others; `more` says whether any shard had more. The index is
    /// eventually consistent: some may have ended a moment ago (`end_hold` then says so).
    pub async fn overdue_reservations(
        &self,
        now: DateTime<Utc>,
        per_shard: usize,
    ) -> Result<(Vec<Reservation>, bool), StoreError> {
        // sweep_sk is "<expires_at>#<id>" with fixed-width times, so everything due by
        // `now` sorts before the time one millisecond later.
        let bound = format_time(now + chrono::Duration::milliseconds(1));
        let page = i32::try_from(per_shard.clamp(1, 100)).unwrap_or(100);
        let mut out = Vec::new();
        let mut more = false;
        for shard in 0..SWEEP_SHARDS {
            let mut taken = 0;
            let mut start = None;
            loop {
                let res = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .index_name(SWEEP_INDEX)
                    .key_condition_expression("sweep_pk = :pk AND sweep_sk < :bound")
                    .expression_attribute_values(":pk", s(sweep_shard_pk(shard)))
                    .expression_attribute_values(":bound", s(&bound))
                    .limit(page)
                    .set_exclusive_start_key(start)
                    .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(|e| super::classify("overdue_reservations", e))?;
                self.metrics.read(res.consumed_capacity());
                let items = res.items.unwrap_or_default();
                let room = per_shard - taken;
                if items.len() > room {
                    more = true;
                }
                for item in items.into_iter().take(room) {
                    out.push(reservation_from_item(&Item(item))?);
                    taken += 1;
                }
                start = res.last_evaluated_key;
                if taken >= per_shard {
                    more |= start.is_some();
                    break;
                }
                if start.is_none() {
                    break;
                }
            }
        }
        Ok((out, more))
    }

    /// The stock row of one warehouse (bucket 0: all of an unbucketed product's), read
    /// consistently.
    pub async fn get_stock(
        &self,
        product_id: &str,
        warehouse: &WarehouseId,
    ) -> Result<Option<StockLevel>, StoreError> {
        self.get_item(&product_pk(product_id), &stock_sk(warehouse.as_str()))
            .await?
            .map(|i| stock_from_item(&i))
            .transpose()
    }
}

fn reservation_item(
    r: &Reservation,
    actor: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    let expires = format_time(r.expires_at);
    let mut item = values([
        (PK, s(reservation_pk(&r.id))),
        (SK, s(RESERVATION_SK)),
        ("entity", s("reservation")),
        ("id", s(&r.id)),
        ("user_id", s(&r.user_id)),
        ("product_id", s(&r.product_id)),
        ("warehouse_id", s(r.warehouse_id.as_str())),
        ("quantity", n(r.quantity)),
        ("status", s(r.status.as_str())),
        ("expires_at", s(&expires)),
        ("created_at", s(format_time(r.created_at))),
        ("updated_at", s(format_time(r.updated_at))),
        ("last_actor", s(actor)),
    ]);
    set_bucket(&mut item, r.bucket);
    if r.status == ReservationStatus::Active {
        item.insert(SWEEP_PK.into(), s(sweep_pk(&r.id)));
        item.insert(SWEEP_SK.into(), s(sweep_sk(&expires, &r.id)));
    }
    item
}

/// Gives `holds` back to a user's count of active holds. Unconditional: it travels with the
/// transition that ends those holds, whose own conditions decide whether it applies.
pub(crate) fn uncount(table: &str, user_id: &str, holds: i64) -> Result<Update, StoreError> {
    Ok(Update::builder()
        .table_name(table)
        .key(PK, s(holds_pk(user_id)))
        .key(SK, s(HOLDS_SK))
        .update_expression("ADD active :minus")
        .expression_attribute_values(":minus", n(-holds))
        .build()?)
}

pub(crate) fn reservation_from_item(i: &Item) -> Result<Reservation, StoreError> {
    Ok(Reservation {
        id: i.s("id")?.to_string(),
        user_id: i.s("user_id")?.to_string(),
        product_id: i.s("product_id")?.to_string(),
        warehouse_id: WarehouseId::parse(i.s("warehouse_id")?).map_err(StoreError::Internal)?,
        quantity: i.n("quantity")?,
        bucket: i.bucket()?,
        status: ReservationStatus::parse(i.s("status")?)
            .ok_or_else(|| StoreError::Internal("bad reservation status".into()))?,
        expires_at: i.time("expires_at")?,
        created_at: i.time("created_at")?,
        updated_at: i.time("updated_at")?,
    })
}
