//! Transfers as stored (`T#<id>` / `#TRANSFER`, on the product list index under
//! `XFER#<product>` and on the sweep index under `TRANSFER`, both by id, so that a
//! product's transfers and all transfers list newest first), and the one write that ends
//! a transfer in transit.

use super::{from_item, n, s, to_attrs, update_at, Attrs};
use crate::domain::stock::WarehouseId;
use crate::domain::time::{format_time, parse_time};
use crate::domain::transfer::{Transfer, TransferStatus};
use crate::store::keys::*;
use crate::store::{Item, StoreError};
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, Update};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct TransferRecord {
    pk: String,
    sk: String,
    entity: String,
    id: String,
    product_id: String,
    from_warehouse_id: String,
    to_warehouse_id: String,
    quantity: i64,
    status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    created_at: String,
    updated_at: String,
    last_actor: String,
    gsi1pk: String,
    gsi1sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sweep_pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sweep_sk: Option<String>,
    #[serde(default)]
    ev: i64,
}

pub fn item(t: &Transfer, actor: &str) -> Result<Attrs, StoreError> {
    to_attrs(&TransferRecord {
        pk: transfer_pk(&t.id),
        sk: TRANSFER_SK.into(),
        entity: "transfer".into(),
        id: t.id.clone(),
        product_id: t.product_id.clone(),
        from_warehouse_id: t.from_warehouse_id.as_str().into(),
        to_warehouse_id: t.to_warehouse_id.as_str().into(),
        quantity: t.quantity,
        status: t.status.as_str().into(),
        note: t.note.clone(),
        created_at: format_time(t.created_at),
        updated_at: format_time(t.updated_at),
        last_actor: actor.into(),
        gsi1pk: transfers_of_pk(&t.product_id),
        gsi1sk: t.id.clone(),
        sweep_pk: Some(TRANSFER_LIST_PK.into()),
        sweep_sk: Some(t.id.clone()),
        ev: 1,
    })
}

pub fn transfer(i: &Item) -> Result<Transfer, StoreError> {
    let r: TransferRecord = from_item(i)?;
    let bad = |what: &str| StoreError::Internal(format!("bad transfer {what}"));
    let time = |t: &str| parse_time(t).ok_or_else(|| bad("time"));
    Ok(Transfer {
        from_warehouse_id: WarehouseId::parse(&r.from_warehouse_id).map_err(StoreError::Internal)?,
        to_warehouse_id: WarehouseId::parse(&r.to_warehouse_id).map_err(StoreError::Internal)?,
        status: TransferStatus::parse(&r.status).ok_or_else(|| bad("status"))?,
        created_at: time(&r.created_at)?,
        updated_at: time(&r.updated_at)?,
        ev: u64::try_from(r.ev).unwrap_or(0),
        id: r.id,
        product_id: r.product_id,
        quantity: r.quantity,
        note: r.note,
    })
}

/// Ends the transfer (`after`'s status, time and change count) on condition that it is
/// still in transit: of a receive and a cancel racing, only one passes this.
pub fn end(table: &str, after: &Transfer, actor: &str) -> Result<Update, StoreError> {
    Ok(update_at(table, transfer_pk(&after.id), TRANSFER_SK.to_string())
        .update_expression("SET #status = :to, updated_at = :now, last_actor = :actor, ev = ev + :one")
        .condition_expression("#status = :in_transit")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":to", s(after.status.as_str()))
        .expression_attribute_values(":in_transit", s(TransferStatus::InTransit.as_str()))
        .expression_attribute_values(":now", s(format_time(after.updated_at)))
        .expression_attribute_values(":actor", s(actor))
        .expression_attribute_values(":one", n(1))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()?)
}
