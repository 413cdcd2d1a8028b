//! Orders: the item with its lines and the keys of the eight list indexes (see
//! `order_list`), and the status change that moves it between index partitions.

use super::{from_item, s, to_attrs, update_at, Attrs};
use crate::domain::order::{Order, OrderItem, OrderStatus};
use crate::domain::time::{format_time, parse_time};
use crate::store::keys::*;
use crate::store::{Item, StoreError};
use aws_sdk_dynamodb::types::Update;
use serde::{Deserialize, Serialize};

/// An order as stored.
#[derive(Debug, Serialize, Deserialize)]
struct OrderRecord {
    pk: String,
    sk: String,
    ou_pk: String,
    ous_pk: String,
    oa_pk: String,
    oss_pk: String,
    o_time: String,
    o_value: String,
    entity: String,
    id: String,
    user_id: String,
    status: String,
    currency: String,
    total_cents: i64,
    items: Vec<LineRecord>,
    created_at: String,
    updated_at: String,
    last_actor: String,
    /// How many changes the order has had (`EVENT_SEQ`): its events' `sequence`.
    #[serde(default)]
    ev: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct LineRecord {
    product_id: String,
    sku: String,
    name: String,
    warehouse_id: String,
    reservation_id: String,
    quantity: i64,
    unit_price_cents: i64,
    #[serde(default, skip_serializing_if = "super::is_zero")]
    bucket: usize,
}

pub fn item(o: &Order, actor: &str) -> Result<Attrs, StoreError> {
    let created = format_time(o.created_at);
    to_attrs(&OrderRecord {
        pk: order_pk(&o.id),
        sk: ORDER_SK.into(),
        ou_pk: order_user_pk(&o.user_id),
        ous_pk: order_user_status_pk(&o.user_id, o.status.as_str()),
        oa_pk: order_all_pk(&o.id),
        oss_pk: order_status_pk(o.status.as_str(), &o.id),
        o_time: order_time_key(&created, &o.id),
        o_value: order_value_key(o.total_cents(), &o.id),
        entity: "order".into(),
        id: o.id.clone(),
        user_id: o.user_id.clone(),
        status: o.status.as_str().into(),
        currency: o.currency.clone(),
        total_cents: o.total_cents(),
        items: o
            .items
            .iter()
            .map(|l| LineRecord {
                product_id: l.product_id.clone(),
                sku: l.sku.clone(),
                name: l.name.clone(),
                warehouse_id: l.warehouse_id.clone(),
                reservation_id: l.reservation_id.clone(),
                quantity: l.quantity,
                unit_price_cents: l.unit_price_cents,
                bucket: l.bucket,
            })
            .collect(),
        created_at: created,
        updated_at: format_time(o.updated_at),
        last_actor: actor.into(),
        ev: 1,
    })
}

pub fn order(i: &Item) -> Result<Order, StoreError> {
    let r: OrderRecord = from_item(i)?;
    let time = |t: &str| parse_time(t).ok_or_else(|| StoreError::Internal("bad order time".into()));
    Ok(Order {
        status: OrderStatus::parse(&r.status)
            .ok_or_else(|| StoreError::Internal("bad order status".into()))?,
        created_at: time(&r.created_at)?,
        updated_at: time(&r.updated_at)?,
        id: r.id,
        user_id: r.user_id,
        currency: r.currency,
        items: r
            .items
            .into_iter()
            .map(|l| OrderItem {
                product_id: l.product_id,
                sku: l.sku,
                name: l.name,
                warehouse_id: l.warehouse_id,
                reservation_id: l.reservation_id,
                quantity: l.quantity,
                unit_price_cents: l.unit_price_cents,
                bucket: l.bucket,
            })
            .collect(),
    })
}

/// Moves `o` from the status it was read with to `to` (on condition that it still has
/// it), with its status index keys.
pub fn change_status(
    table: &str,
    o: &Order,
    to: OrderStatus,
    now: &str,
    actor: &str,
) -> Result<Update, StoreError> {
    Ok(update_at(table, order_pk(&o.id), ORDER_SK)
        .update_expression(
            "SET #status = :to, updated_at = :now, last_actor = :actor, ous_pk = :ous, oss_pk = :oss \
             ADD ev :one",
        )
        .condition_expression("#status = :from")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":ous", s(order_user_status_pk(&o.user_id, to.as_str())))
        .expression_attribute_values(":oss", s(order_status_pk(to.as_str(), &o.id)))
        .expression_attribute_values(":to", s(to.as_str()))
        .expression_attribute_values(":from", s(o.status.as_str()))
        .expression_attribute_values(":one", super::n(1))
        .expression_attribute_values(":now", s(now))
        .expression_attribute_values(":actor", s(actor))
        .build()?)
}
