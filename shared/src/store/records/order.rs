//! Orders: the item with its lines and the keys of the eight list indexes (see
//! `order_list`), the status change that moves it between index partitions, and returns
//! (their items in the order's partition, and the one write that takes units back).

use super::{from_item, n, s, to_attrs, update_at, Attrs};
use crate::domain::order::{Order, OrderItem, OrderStatus};
use crate::domain::order_return::{OrderReturn, ReturnLine, ReturnPlan};
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
    /// The units returned over all lines: the one number a return's write conditions on
    /// to know whether it brings the last unit back.
    #[serde(default, skip_serializing_if = "super::is_zero_i64")]
    returned_units: i64,
    /// The latest return, for the order's `OrderReturned` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_return: Option<ReturnRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct LineRecord {
    product_id: String,
    sku: String,
    name: String,
    warehouse_id: String,
    reservation_id: String,
    quantity: i64,
    #[serde(default, skip_serializing_if = "super::is_zero_i64")]
    returned: i64,
    unit_price_cents: i64,
    #[serde(default, skip_serializing_if = "super::is_zero")]
    bucket: usize,
}

/// A return as stored: its own item `O#<order>` / `RETURN#<id>` (so an order's returns
/// are one query of its partition, oldest first by id), and as the order's `last_return`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReturnRecord {
    id: String,
    order_id: String,
    items: Vec<ReturnLineRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReturnLineRecord {
    product_id: String,
    warehouse_id: String,
    quantity: i64,
    restock: bool,
    #[serde(default, skip_serializing_if = "super::is_zero")]
    bucket: usize,
}

/// A return's item in its order's partition (`entity` tells it apart; the audit log
/// records the return as the order's change, so this item is not audited itself).
#[derive(Debug, Serialize, Deserialize)]
struct ReturnItem {
    pk: String,
    sk: String,
    entity: String,
    #[serde(flatten)]
    ret: ReturnRecord,
}

impl From<&OrderReturn> for ReturnRecord {
    fn from(r: &OrderReturn) -> Self {
        Self {
            id: r.id.clone(),
            order_id: r.order_id.clone(),
            items: r
                .lines
                .iter()
                .map(|l| ReturnLineRecord {
                    product_id: l.product_id.clone(),
                    warehouse_id: l.warehouse_id.clone(),
                    quantity: l.quantity,
                    restock: l.restock,
                    bucket: l.bucket,
                })
                .collect(),
            note: r.note.clone(),
            created_at: format_time(r.created_at),
        }
    }
}

impl TryFrom<ReturnRecord> for OrderReturn {
    type Error = StoreError;

    fn try_from(r: ReturnRecord) -> Result<Self, StoreError> {
        Ok(OrderReturn {
            created_at: parse_time(&r.created_at)
                .ok_or_else(|| StoreError::Internal("bad return time".into()))?,
            id: r.id,
            order_id: r.order_id,
            lines: r
                .items
                .into_iter()
                .map(|l| ReturnLine {
                    product_id: l.product_id,
                    warehouse_id: l.warehouse_id,
                    bucket: l.bucket,
                    quantity: l.quantity,
                    restock: l.restock,
                })
                .collect(),
            note: r.note,
        })
    }
}

pub fn return_item(r: &OrderReturn) -> Result<Attrs, StoreError> {
    to_attrs(&ReturnItem {
        pk: order_pk(&r.order_id),
        sk: order_return_sk(&r.id),
        entity: "order_return".into(),
        ret: r.into(),
    })
}

pub fn order_return(i: &Item) -> Result<OrderReturn, StoreError> {
    let r: ReturnItem = from_item(i)?;
    r.ret.try_into()
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
                returned: l.returned,
                unit_price_cents: l.unit_price_cents,
                bucket: l.bucket,
            })
            .collect(),
        created_at: created,
        updated_at: format_time(o.updated_at),
        last_actor: actor.into(),
        ev: 1,
        returned_units: o.items.iter().map(|l| l.returned).sum(),
        last_return: o.last_return.as_ref().map(ReturnRecord::from),
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
        last_return: r.last_return.map(OrderReturn::try_from).transpose()?,
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
                returned: l.returned,
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

/// Takes a return's units back on the order as read (`plan`): each line's `returned` up
/// by its part, `returned_units` by the whole, the return as `last_return`, and, when it
/// brings the last unit back, the status `returned` with its index keys. On condition that
/// the order is still delivered, that no line passes what it sold (so concurrent returns
/// never take more than the order sold, whatever their interleaving), and that
/// `returned_units` still says what the plan assumed about completion: below the point
/// where this return would complete the order, or, for the completing return, exactly
/// what was read (units only ever come back, so equal means every line is as read).
pub fn record_return(table: &str, plan: &ReturnPlan, now: &str, actor: &str) -> Result<Update, StoreError> {
    let o = &plan.after;
    let mut set = vec![
        "updated_at = :now".to_string(),
        "last_actor = :actor".to_string(),
        "last_return = :ret".to_string(),
    ];
    let mut conditions = vec!["#status = :delivered".to_string()];
    let mut u = update_at(table, order_pk(&o.id), ORDER_SK);
    for &(index, take) in &plan.per_line {
        let line = format!("#items[{index}].#returned");
        set.push(format!("{line} = if_not_exists({line}, :zero) + :take{index}"));
        let sold = plan.after.items.get(index).map_or(0, |l| l.quantity);
        conditions.push(format!("(attribute_not_exists({line}) OR {line} <= :room{index})"));
        u = u
            .expression_attribute_values(format!(":take{index}"), n(take))
            .expression_attribute_values(format!(":room{index}"), n(sold - take));
    }
    let units: i64 = plan.per_line.iter().map(|&(_, take)| take).sum();
    if plan.completes() {
        set.push("#status = :returned, ous_pk = :ous, oss_pk = :oss".into());
        u = u
            .expression_attribute_values(":returned", s(OrderStatus::Returned.as_str()))
            .expression_attribute_values(
                ":ous",
                s(order_user_status_pk(&o.user_id, OrderStatus::Returned.as_str())),
            )
            .expression_attribute_values(":oss", s(order_status_pk(OrderStatus::Returned.as_str(), &o.id)))
            .expression_attribute_values(":before", n(plan.returned_before));
        conditions.push(if plan.returned_before == 0 {
            "(attribute_not_exists(returned_units) OR returned_units = :before)".into()
        } else {
            "returned_units = :before".into()
        });
    } else {
        // After this write it stays below what the order sold.
        u = u.expression_attribute_values(":bound", n(plan.sold - units));
        conditions.push("(attribute_not_exists(returned_units) OR returned_units < :bound)".into());
    }
    let ret = aws_sdk_dynamodb::types::AttributeValue::M(to_attrs(&ReturnRecord::from(&plan.ret))?);
    Ok(u.update_expression(format!("SET {} ADD ev :one, returned_units :units", set.join(", ")))
        .condition_expression(conditions.join(" AND "))
        .expression_attribute_names("#status", "status")
        // `items` is a reserved word; the line attribute is aliased beside it.
        .expression_attribute_names("#items", "items")
        .expression_attribute_names("#returned", "returned")
        .expression_attribute_values(":delivered", s(OrderStatus::Delivered.as_str()))
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":units", n(units))
        .expression_attribute_values(":ret", ret)
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":now", s(now))
        .expression_attribute_values(":actor", s(actor))
        .build()?)
}
