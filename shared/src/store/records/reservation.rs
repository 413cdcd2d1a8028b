//! Reservations, the per-user count of active holds, and the transitions that end a hold.

use super::{from_item, n, s, to_attrs, update_at, Attrs};
use crate::domain::reservation::{Reservation, ReservationStatus};
use crate::domain::stock::WarehouseId;
use crate::domain::time::{format_time, parse_time};
use crate::store::keys::*;
use crate::store::{Item, StoreError};
use aws_sdk_dynamodb::types::Update;
use serde::{Deserialize, Serialize};

/// A reservation as stored. While active it carries the sparse sweep index's keys and
/// the held-units keys (on the product list index, `keys::held_pk`).
#[derive(Debug, Serialize, Deserialize)]
struct ReservationRecord {
    pk: String,
    sk: String,
    entity: String,
    id: String,
    user_id: String,
    product_id: String,
    warehouse_id: String,
    quantity: i64,
    status: String,
    expires_at: String,
    created_at: String,
    updated_at: String,
    last_actor: String,
    #[serde(default, skip_serializing_if = "super::is_zero")]
    bucket: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sweep_pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sweep_sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
    /// How many changes the reservation has had (`EVENT_SEQ`): its events' `sequence`.
    #[serde(default)]
    ev: i64,
}

pub fn item(r: &Reservation, actor: &str) -> Result<Attrs, StoreError> {
    let expires = format_time(r.expires_at);
    let active = r.status == ReservationStatus::Active;
    to_attrs(&ReservationRecord {
        pk: reservation_pk(&r.id),
        sk: RESERVATION_SK.into(),
        entity: "reservation".into(),
        id: r.id.clone(),
        user_id: r.user_id.clone(),
        product_id: r.product_id.clone(),
        warehouse_id: r.warehouse_id.as_str().into(),
        quantity: r.quantity,
        status: r.status.as_str().into(),
        sweep_pk: active.then(|| sweep_pk(&r.id)),
        sweep_sk: active.then(|| sweep_sk(&expires, &r.id)),
        gsi1pk: active.then(|| held_pk(&r.product_id)),
        gsi1sk: active.then(|| held_sk(r.warehouse_id.as_str(), r.bucket, &r.id)),
        expires_at: expires,
        created_at: format_time(r.created_at),
        updated_at: format_time(r.updated_at),
        last_actor: actor.into(),
        bucket: r.bucket,
        ev: 1,
    })
}

pub fn reservation(i: &Item) -> Result<Reservation, StoreError> {
    let r: ReservationRecord = from_item(i)?;
    let time = |t: &str| parse_time(t).ok_or_else(|| StoreError::Internal("bad reservation time".into()));
    Ok(Reservation {
        warehouse_id: WarehouseId::parse(&r.warehouse_id).map_err(StoreError::Internal)?,
        status: ReservationStatus::parse(&r.status)
            .ok_or_else(|| StoreError::Internal("bad reservation status".into()))?,
        expires_at: time(&r.expires_at)?,
        created_at: time(&r.created_at)?,
        updated_at: time(&r.updated_at)?,
        id: r.id,
        user_id: r.user_id,
        product_id: r.product_id,
        quantity: r.quantity,
        bucket: r.bucket,
    })
}

/// Ends an active hold as `to`; `timing` is the condition on `expires_at` (`:now` bound).
/// Leaving the sweep index and the held-units index goes with it.
pub fn end(
    table: &str,
    id: &str,
    to: ReservationStatus,
    timing: &str,
    now: &str,
    actor: &str,
) -> Result<Update, StoreError> {
    Ok(update_at(table, reservation_pk(id), RESERVATION_SK)
        .update_expression(
            "SET #status = :to, updated_at = :now, last_actor = :actor \
             REMOVE sweep_pk, sweep_sk, gsi1pk, gsi1sk ADD ev :one",
        )
        .condition_expression(format!("#status = :active AND {timing}"))
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":to", s(to.as_str()))
        .expression_attribute_values(":active", s(ReservationStatus::Active.as_str()))
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":now", s(now))
        .expression_attribute_values(":actor", s(actor))
        .build()?)
}

/// Moves an active, unexpired hold's end from `was` (the end it was read with) to `until`
/// (on condition that it is later), with its sweep index key: one conditional write, so
/// an extension and an expiry racing on the hold cannot both apply, and a write that
/// applies knows the end it replaced (`was`: the other writers' ends fail the condition).
pub fn extend(
    update: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    id: &str,
    was: &str,
    until: &str,
    now: &str,
    actor: &str,
) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
    update
        .key(PK, s(reservation_pk(id)))
        .key(SK, s(RESERVATION_SK))
        .update_expression(
            "SET expires_at = :until, sweep_sk = :sweep, updated_at = :now, last_actor = :actor ADD ev :one",
        )
        .condition_expression(
            "#status = :active AND expires_at = :was AND expires_at > :now AND expires_at < :until",
        )
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":active", s(ReservationStatus::Active.as_str()))
        .expression_attribute_values(":was", s(was))
        .expression_attribute_values(":until", s(until))
        .expression_attribute_values(":sweep", s(sweep_sk(until, id)))
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":now", s(now))
        .expression_attribute_values(":actor", s(actor))
}

/// Converts an active, unexpired hold of `actor` into a line of `order_id`.
pub fn convert(table: &str, id: &str, order_id: &str, now: &str, actor: &str) -> Result<Update, StoreError> {
    Ok(update_at(table, reservation_pk(id), RESERVATION_SK)
        .update_expression(
            "SET #status = :converted, updated_at = :now, last_actor = :actor, order_id = :order \
             REMOVE sweep_pk, sweep_sk, gsi1pk, gsi1sk ADD ev :one",
        )
        .condition_expression("#status = :active AND user_id = :actor AND expires_at > :now")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":converted", s(ReservationStatus::Converted.as_str()))
        .expression_attribute_values(":active", s(ReservationStatus::Active.as_str()))
        .expression_attribute_values(":now", s(now))
        .expression_attribute_values(":actor", s(actor))
        .expression_attribute_values(":order", s(order_id))
        .expression_attribute_values(":one", n(1))
        .build()?)
}

/// Counts `holds` more active holds of `user_id`, on condition that the user then holds no
/// more than `cap` (the count item is kept in step by the same transactions that start and end holds).
pub fn count(table: &str, user_id: &str, cap: i64, holds: i64) -> Result<Update, StoreError> {
    let condition =
        if holds > cap { "active <= :room" } else { "attribute_not_exists(active) OR active <= :room" };
    Ok(update_at(table, holds_pk(user_id), HOLDS_SK)
        .update_expression("ADD active :n")
        .condition_expression(condition)
        .expression_attribute_values(":n", n(holds))
        .expression_attribute_values(":room", n(cap - holds))
        .build()?)
}

/// Counts `q` more units against a customer's allowance of a product; with a `limit`, on
/// condition that the units already counted leave room for them.
pub fn allow(
    table: &str,
    product_id: &str,
    user_id: &str,
    q: i64,
    limit: Option<i64>,
) -> Result<Update, StoreError> {
    let u = update_at(table, allowance_pk(product_id, user_id), ALLOWANCE_SK)
        .update_expression("ADD units :q")
        .expression_attribute_values(":q", n(q));
    let u = match limit {
        // More than the limit at once never fits, not even for a customer with none yet.
        Some(limit) if q > limit => {
            u.condition_expression("units <= :room").expression_attribute_values(":room", n(-1))
        }
        Some(limit) => u
            .condition_expression("attribute_not_exists(units) OR units <= :room")
            .expression_attribute_values(":room", n(limit - q))
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            ),
        None => u,
    };
    Ok(u.build()?)
}

/// Gives `q` units back to a customer's allowance (a hold ended, an order cancelled).
/// Unconditional: it travels with the transition, whose own conditions decide.
pub fn disallow(table: &str, product_id: &str, user_id: &str, q: i64) -> Result<Update, StoreError> {
    Ok(update_at(table, allowance_pk(product_id, user_id), ALLOWANCE_SK)
        .update_expression("ADD units :minus")
        .expression_attribute_values(":minus", n(-q))
        .build()?)
}

/// Gives `holds` back to a user's count. Unconditional: it travels with the transition
/// that ends those holds, whose own conditions decide whether it applies.
pub fn uncount(table: &str, user_id: &str, holds: i64) -> Result<Update, StoreError> {
    Ok(update_at(table, holds_pk(user_id), HOLDS_SK)
        .update_expression("ADD active :minus")
        .expression_attribute_values(":minus", n(-holds))
        .build()?)
}
