//! Waitlist entries as stored (`WL#<id>` / `#WAITLIST`; while waiting, on the product
//! list index under `WAITQ#<product>#<warehouse>` by id, which is the queue in join
//! order), and the stock row's side of a queue (`waiting`, written without a movement:
//! no unit moves when a buyer joins or leaves).

use super::{from_item, n, s, to_attrs, update_at, Attrs};
use crate::domain::stock::WarehouseId;
use crate::domain::time::{format_time, parse_time};
use crate::domain::waitlist::{Entry, WaitlistStatus, SYSTEM_ACTOR};
use crate::store::keys::*;
use crate::store::{Item, StoreError};
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, Update};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct EntryRecord {
    pk: String,
    sk: String,
    entity: String,
    id: String,
    product_id: String,
    warehouse_id: String,
    user_id: String,
    quantity: i64,
    status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reservation_id: Option<String>,
    created_at: String,
    updated_at: String,
    expires_at: String,
    last_actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
    #[serde(default)]
    ev: i64,
}

/// A new waiting entry, in its queue.
pub fn item(e: &Entry, actor: &str) -> Result<Attrs, StoreError> {
    to_attrs(&EntryRecord {
        pk: waitlist_pk(&e.id),
        sk: WAITLIST_SK.into(),
        entity: "waitlist_entry".into(),
        id: e.id.clone(),
        product_id: e.product_id.clone(),
        warehouse_id: e.warehouse_id.as_str().into(),
        user_id: e.user_id.clone(),
        quantity: e.quantity,
        status: e.status.as_str().into(),
        reservation_id: e.reservation_id.clone(),
        created_at: format_time(e.created_at),
        updated_at: format_time(e.updated_at),
        expires_at: format_time(e.expires_at),
        last_actor: actor.into(),
        gsi1pk: (e.status == WaitlistStatus::Waiting)
            .then(|| queue_pk(&e.product_id, e.warehouse_id.as_str())),
        gsi1sk: (e.status == WaitlistStatus::Waiting).then(|| e.id.clone()),
        ev: 1,
    })
}

pub fn entry(i: &Item) -> Result<Entry, StoreError> {
    let r: EntryRecord = from_item(i)?;
    let bad = |what: &str| StoreError::Internal(format!("bad waitlist entry {what}"));
    let time = |t: &str| parse_time(t).ok_or_else(|| bad("time"));
    Ok(Entry {
        warehouse_id: WarehouseId::parse(&r.warehouse_id).map_err(StoreError::Internal)?,
        status: WaitlistStatus::parse(&r.status).ok_or_else(|| bad("status"))?,
        created_at: time(&r.created_at)?,
        updated_at: time(&r.updated_at)?,
        expires_at: time(&r.expires_at)?,
        ev: u64::try_from(r.ev).unwrap_or(0),
        id: r.id,
        product_id: r.product_id,
        user_id: r.user_id,
        quantity: r.quantity,
        reservation_id: r.reservation_id,
    })
}

/// Takes a waiting entry out of its queue as `after` (left, or expired), on condition that
/// it is still waiting: of a leave, an expiry and an offer racing, one passes this.
pub fn end(table: &str, after: &Entry, actor: &str) -> Result<Update, StoreError> {
    Ok(update_at(table, waitlist_pk(&after.id), WAITLIST_SK)
        .update_expression(
            "SET #status = :to, updated_at = :now, last_actor = :actor REMOVE gsi1pk, gsi1sk ADD ev :one",
        )
        .condition_expression("#status = :waiting")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":to", s(after.status.as_str()))
        .expression_attribute_values(":waiting", s(WaitlistStatus::Waiting.as_str()))
        .expression_attribute_values(":now", s(format_time(after.updated_at)))
        .expression_attribute_values(":actor", s(actor))
        .expression_attribute_values(":one", n(1))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()?)
}

/// Marks a waiting entry `offered` as the hold `reservation_id`, out of its queue, on
/// condition that it still waits and has not run out its time at `now`.
pub fn offered(table: &str, e: &Entry, reservation_id: &str, now: &str) -> Result<Update, StoreError> {
    Ok(update_at(table, waitlist_pk(&e.id), WAITLIST_SK)
        .update_expression(
            "SET #status = :offered, reservation_id = :rid, updated_at = :now, last_actor = :actor \
             REMOVE gsi1pk, gsi1sk ADD ev :one",
        )
        .condition_expression("#status = :waiting AND expires_at > :now")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":offered", s(WaitlistStatus::Offered.as_str()))
        .expression_attribute_values(":waiting", s(WaitlistStatus::Waiting.as_str()))
        .expression_attribute_values(":rid", s(reservation_id))
        .expression_attribute_values(":now", s(now))
        .expression_attribute_values(":actor", s(SYSTEM_ACTOR))
        .expression_attribute_values(":one", n(1))
        .build()?)
}

/// The stock row's side of a join: `q` more units waiting, on condition that a hold of
/// `q` could not be filled now (`available < q + waiting`, judged on the `seen` waiting:
/// a queue only longer than seen makes that truer, a shorter one fails it) and that the
/// row holds under the product's `terms`.
pub fn queue(
    table: &str,
    product_id: &str,
    warehouse: &str,
    q: i64,
    terms: i64,
    seen: i64,
    (now, actor): (&str, &str),
) -> Result<Update, StoreError> {
    Ok(update_at(table, stock_pk(product_id, 0), stock_sk(warehouse))
        .update_expression(
            "SET waiting = if_not_exists(waiting, :zero) + :q, updated_at = :now, last_actor = :actor",
        )
        .condition_expression(format!(
            "available < :need AND (attribute_not_exists(waiting) OR waiting >= :seen) AND {}",
            super::product::equals_or_absent("terms", ":terms", terms)
        ))
        .expression_attribute_values(":zero", n(0))
        .expression_attribute_values(":q", n(q))
        .expression_attribute_values(":need", n(q.saturating_add(seen)))
        .expression_attribute_values(":seen", n(seen))
        .expression_attribute_values(":terms", n(terms))
        .expression_attribute_values(":now", s(now))
        .expression_attribute_values(":actor", s(actor))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()?)
}

/// The stock row's side of an entry that stops waiting without an offer: `q` fewer units
/// waiting.
pub fn unqueue(
    table: &str,
    product_id: &str,
    warehouse: &str,
    q: i64,
    (now, actor): (&str, &str),
) -> Result<Update, StoreError> {
    Ok(update_at(table, stock_pk(product_id, 0), stock_sk(warehouse))
        .update_expression("SET waiting = waiting - :q, updated_at = :now, last_actor = :actor")
        .condition_expression("waiting >= :q")
        .expression_attribute_values(":q", n(q))
        .expression_attribute_values(":now", s(now))
        .expression_attribute_values(":actor", s(actor))
        .build()?)
}
