//! Orders: the conversion of reservations into an order, reads, and status changes.

use super::idempotency::Completion;
use super::keys::*;
use super::reservations::reservation_from_item;
use super::{classify, n, s, set_bucket, values, Item, Store, StoreError};
use crate::adapters::clock::format_time;
use crate::domain::order::{Order, OrderItem, OrderStatus};
use crate::domain::reservation::{Reservation, ReservationStatus};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};

/// The fields of a product an order line snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceSnapshot {
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub currency: String,
}

/// Why a conversion did not apply.
#[derive(Debug)]
pub enum ConvertError {
    /// A reservation was no longer active, owned or unexpired at commit time.
    ReservationsChanged,
    /// The idempotency lease was taken over; nothing was written.
    LeaseLost,
    Store(StoreError),
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

impl Store {
    /// Consistent reads of many items by key (BatchGetItem, 100 keys a call, unprocessed
    /// keys retried). Missing items are simply absent from the result.
    pub(crate) async fn batch_get(&self, keys: Vec<(String, String)>) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        for chunk in keys.chunks(100) {
            let mut request = KeysAndAttributes::builder().consistent_read(true);
            for (pk, sk) in chunk {
                request = request.keys(values([(PK, s(pk)), (SK, s(sk))]));
            }
            let mut pending = Some(HashMap::from([(self.table.clone(), request.build()?)]));
            let mut attempt = 0u32;
            while let Some(items) = pending.take().filter(|m| !m.is_empty()) {
                attempt += 1;
                if attempt > 8 {
                    return Err(StoreError::Unavailable);
                }
                if attempt > 1 {
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt.min(5))).await;
                }
                let res = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(items))
                    .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
                    .send()
                    .await
                    .map_err(|e| classify("batch_get", e))?;
                self.metrics.read(res.consumed_capacity());
                if let Some(found) = res.responses.and_then(|mut r| r.remove(&self.table)) {
                    out.extend(found.into_iter().map(Item));
                }
                pending = res.unprocessed_keys;
            }
        }
        Ok(out)
    }

    /// The items at `keys` (at most 100) as of one instant (`TransactGetItems`); missing
    /// ones are absent. A read that meets a transaction in progress on one of them is
    /// cancelled by DynamoDB and retried here with the transactions' jittered backoff.
    pub(crate) async fn snapshot(&self, keys: Vec<(String, String)>) -> Result<Vec<Item>, StoreError> {
        use aws_sdk_dynamodb::types::{Get, TransactGetItem};
        let gets = keys
            .iter()
            .map(|(pk, sk)| {
                let get = Get::builder().table_name(&self.table).key(PK, s(pk)).key(SK, s(sk)).build()?;
                Ok(TransactGetItem::builder().get(get).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_get_items()
                .set_transact_items(Some(gets.clone()))
                .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
                .send()
                .await;
            match result {
                Ok(out) => {
                    self.metrics.read(out.consumed_capacity());
                    return Ok(out
                        .responses
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|r| r.item)
                        .filter(|i| !i.is_empty())
                        .map(Item)
                        .collect());
                }
                Err(e) => {
                    let cancelled =
                        e.as_service_error().is_some_and(|s| s.is_transaction_canceled_exception());
                    let wait = super::backoff(attempt);
                    if cancelled && attempt < 6 && crate::deadline::allows(wait) {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    if cancelled {
                        tracing::warn!(attempt, "snapshot read kept meeting transactions in progress");
                        return Err(StoreError::Unavailable);
                    }
                    return Err(classify("snapshot", e));
                }
            }
        }
    }

    /// The reservations that exist among `ids`, read consistently.
    pub async fn get_reservations(&self, ids: &[String]) -> Result<Vec<Reservation>, StoreError> {
        let keys = ids.iter().map(|id| (reservation_pk(id), RESERVATION_SK.to_string())).collect();
        self.batch_get(keys).await?.iter().map(reservation_from_item).collect()
    }

    /// Price snapshots of the products that exist among `ids`.
    pub async fn price_snapshots(&self, ids: &[&str]) -> Result<HashMap<String, PriceSnapshot>, StoreError> {
        let keys = ids.iter().map(|id| (product_pk(id), PRODUCT_SK.to_string())).collect();
        self.batch_get(keys)
            .await?
            .iter()
            .map(|i| {
                Ok((
                    i.s("id")?.to_string(),
                    PriceSnapshot {
                        sku: i.s("sku")?.to_string(),
                        name: i.s("name")?.to_string(),
                        price_cents: i.n("price_cents")?,
                        currency: i.s("currency")?.to_string(),
                    },
                ))
            })
            .collect()
    }

    /// Converts the order's reservations and writes the order in one transaction: each
    /// reservation `active -> converted` (still active, the caller's and unexpired at
    /// `now`), each stock row's units from reserved to sold, the order put, and with a key
    /// the idempotency record completed. All of it or none of it.
    pub async fn create_order(
        &self,
        order: &Order,
        now: DateTime<Utc>,
        completion: Option<&Completion>,
    ) -> Result<(), ConvertError> {
        let now_s = format_time(now);
        let actor = order.user_id.as_str();
        let fail = |e: aws_sdk_dynamodb::error::BuildError| ConvertError::Store(e.into());
        let mut items = Vec::new();
        for line in &order.items {
            let update = Update::builder()
                .table_name(&self.table)
                .key(PK, s(reservation_pk(&line.reservation_id)))
                .key(SK, s(RESERVATION_SK))
                .update_expression(
                    "SET #status = :converted, updated_at = :now, last_actor = :actor, order_id = :order \
                     REMOVE sweep_pk, sweep_sk",
                )
                .condition_expression("#status = :active AND user_id = :actor AND expires_at > :now")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":converted", s(ReservationStatus::Converted.as_str()))
                .expression_attribute_values(":active", s(ReservationStatus::Active.as_str()))
                .expression_attribute_values(":now", s(&now_s))
                .expression_attribute_values(":actor", s(actor))
                .expression_attribute_values(":order", s(&order.id))
                .build()
                .map_err(fail)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        for ((product, warehouse, bucket), q) in units_per_row(&order.items) {
            let update = Update::builder()
                .table_name(&self.table)
                .key(PK, s(stock_pk(product, bucket)))
                .key(SK, s(stock_sk(warehouse)))
                .update_expression(
                    "SET on_hand = on_hand - :q, reserved = reserved - :q, updated_at = :now, last_actor = :actor",
                )
                .condition_expression("reserved >= :q")
                .expression_attribute_values(":q", n(q))
                .expression_attribute_values(":now", s(&now_s))
                .expression_attribute_values(":actor", s(actor))
                .build()
                .map_err(fail)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let converted = i64::try_from(order.items.len()).unwrap_or(i64::MAX);
        let uncount =
            super::reservations::uncount(&self.table, actor, converted).map_err(ConvertError::Store)?;
        items.push(TransactWriteItem::builder().update(uncount).build());
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(order_item(order, actor)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(fail)?;
        items.push(TransactWriteItem::builder().put(put).build());
        if let Some(c) = completion {
            items.push(c.transact_item(&self.table).map_err(ConvertError::Store)?);
        }
        let completion_at = items.len() - 1;
        match self.transact("create_order", items).await {
            Ok(()) => Ok(()),
            Err(e) if (0..order.items.len()).any(|i| e.failed_at(i).is_some()) => {
                Err(ConvertError::ReservationsChanged)
            }
            Err(e) if completion.is_some() && e.failed_at(completion_at).is_some() => {
                Err(ConvertError::LeaseLost)
            }
            Err(e @ StoreError::ConditionFailed(_)) => {
                tracing::error!(order_id = %order.id, error = ?e, "reserved units missing for active reservations");
                Err(ConvertError::Store(StoreError::Internal("reserved units missing".into())))
            }
            Err(e) => Err(ConvertError::Store(e)),
        }
    }

    pub async fn get_order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        self.get_item(&order_pk(id), ORDER_SK).await?.map(|i| order_from_item(&i)).transpose()
    }

    /// Moves the order from its current status to `to`, on condition that the status is
    /// still the one read; cancelling also puts the sold units back on hand and on sale,
    /// in the same transaction. `Ok(false)`: the status changed meanwhile, nothing written.
    pub async fn change_order_status(
        &self,
        order: &Order,
        to: OrderStatus,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let now_s = format_time(now);
        let flip = Update::builder()
            .table_name(&self.table)
            .key(PK, s(order_pk(&order.id)))
            .key(SK, s(ORDER_SK))
            .update_expression(
                "SET #status = :to, updated_at = :now, last_actor = :actor, ous_pk = :ous, oss_pk = :oss",
            )
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":ous", s(order_user_status_pk(&order.user_id, to.as_str())))
            .expression_attribute_values(":oss", s(order_status_pk(to.as_str(), &order.id)))
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":from", s(order.status.as_str()))
            .expression_attribute_values(":now", s(&now_s))
            .expression_attribute_values(":actor", s(actor))
            .build()?;
        let mut items = vec![TransactWriteItem::builder().update(flip).build()];
        if to == OrderStatus::Cancelled {
            for ((product, warehouse, bucket), q) in units_per_row(&order.items) {
                let restock = Update::builder()
                    .table_name(&self.table)
                    .key(PK, s(stock_pk(product, bucket)))
                    .key(SK, s(stock_sk(warehouse)))
                    .update_expression(
                        "SET on_hand = on_hand + :q, available = available + :q, updated_at = :now, last_actor = :actor",
                    )
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(":q", n(q))
                    .expression_attribute_values(":now", s(&now_s))
                    .expression_attribute_values(":actor", s(actor))
                    .build()?;
                items.push(TransactWriteItem::builder().update(restock).build());
            }
        }
        match self.transact("change_order_status", items).await {
            Ok(()) => Ok(true),
            Err(e) if e.failed_at(0).is_some() => Ok(false),
            Err(e) => Err(e),
        }
    }
}

pub(crate) fn order_item(o: &Order, actor: &str) -> HashMap<String, AttributeValue> {
    let lines = o
        .items
        .iter()
        .map(|l| {
            let mut line = values([
                ("product_id", s(&l.product_id)),
                ("sku", s(&l.sku)),
                ("name", s(&l.name)),
                ("warehouse_id", s(&l.warehouse_id)),
                ("reservation_id", s(&l.reservation_id)),
                ("quantity", n(l.quantity)),
                ("unit_price_cents", n(l.unit_price_cents)),
            ]);
            set_bucket(&mut line, l.bucket);
            AttributeValue::M(line)
        })
        .collect();
    let created = format_time(o.created_at);
    values([
        (PK, s(order_pk(&o.id))),
        (SK, s(ORDER_SK)),
        (OU_PK, s(order_user_pk(&o.user_id))),
        (OUS_PK, s(order_user_status_pk(&o.user_id, o.status.as_str()))),
        (OA_PK, s(order_all_pk(&o.id))),
        (OSS_PK, s(order_status_pk(o.status.as_str(), &o.id))),
        (O_TIME, s(order_time_key(&created, &o.id))),
        (O_VALUE, s(order_value_key(o.total_cents(), &o.id))),
        ("entity", s("order")),
        ("id", s(&o.id)),
        ("user_id", s(&o.user_id)),
        ("status", s(o.status.as_str())),
        ("currency", s(&o.currency)),
        ("total_cents", n(o.total_cents())),
        ("items", AttributeValue::L(lines)),
        ("created_at", s(created)),
        ("updated_at", s(format_time(o.updated_at))),
        ("last_actor", s(actor)),
    ])
}

pub(crate) fn order_from_item(i: &Item) -> Result<Order, StoreError> {
    let lines =
        i.0.get("items")
            .and_then(|v| v.as_l().ok())
            .ok_or_else(|| StoreError::Internal("order lacks items".into()))?;
    let items = lines
        .iter()
        .map(|v| {
            let m =
                Item(v.as_m().map_err(|_| StoreError::Internal("order item is not a map".into()))?.clone());
            Ok(OrderItem {
                product_id: m.s("product_id")?.to_string(),
                sku: m.s("sku")?.to_string(),
                name: m.s("name")?.to_string(),
                warehouse_id: m.s("warehouse_id")?.to_string(),
                reservation_id: m.s("reservation_id")?.to_string(),
                quantity: m.n("quantity")?,
                unit_price_cents: m.n("unit_price_cents")?,
                bucket: m.bucket()?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Order {
        id: i.s("id")?.to_string(),
        user_id: i.s("user_id")?.to_string(),
        status: OrderStatus::parse(i.s("status")?)
            .ok_or_else(|| StoreError::Internal("bad order status".into()))?,
        currency: i.s("currency")?.to_string(),
        items,
        created_at: i.time("created_at")?,
        updated_at: i.time("updated_at")?,
    })
}
