//! What the items look like: for each kind of item, the record it is stored as, its keys,
//! and the writes (with their conditions) that the repositories put into requests. Record
//! structs are mapped with `serde_dynamo`; expressions and keys are written by hand, so
//! that every condition can be read where it is defined.

pub mod audit;
pub mod event;
pub mod idempotency;
pub mod movement;
pub mod order;
pub mod product;
pub mod reservation;
pub mod stock;
pub mod transfer;
pub mod waitlist;

use super::{Item, StoreError};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;

/// An item as the SDK takes it.
pub type Attrs = HashMap<String, AttributeValue>;

/// A record as an item. An empty map is never written: DynamoDB Local hands it to the
/// stream as `{}` (no type), which no stream reader can decode. A record field that may
/// be an empty map is therefore `Option` with `#[serde(default)]`, read back as absent.
pub(crate) fn to_attrs<T: Serialize>(record: &T) -> Result<Attrs, StoreError> {
    let mut item: Attrs =
        serde_dynamo::to_item(record).map_err(|e| StoreError::Internal(format!("item mapping: {e}")))?;
    item.retain(|_, v| !matches!(v, AttributeValue::M(m) if m.is_empty()));
    Ok(item)
}

/// An item as a record; an item of another shape is a store error.
pub(crate) fn from_item<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item.0.clone()).map_err(|e| StoreError::Internal(format!("item shape: {e}")))
}

pub(crate) fn is_zero(n: &usize) -> bool {
    *n == 0
}

pub(crate) fn is_zero_i64(n: &i64) -> bool {
    *n == 0
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A put of `item` in a transaction, on `condition`.
pub(crate) fn put(table: &str, item: Attrs, condition: &str) -> Result<TransactWriteItem, StoreError> {
    Ok(TransactWriteItem::builder()
        .put(Put::builder().table_name(table).set_item(Some(item)).condition_expression(condition).build()?)
        .build())
}

/// A put of `item` in a transaction, whatever is there (an item whose key and content
/// follow from what it records, so writing it again writes the same).
pub(crate) fn put_always(table: &str, item: Attrs) -> Result<TransactWriteItem, StoreError> {
    Ok(TransactWriteItem::builder()
        .put(Put::builder().table_name(table).set_item(Some(item)).build()?)
        .build())
}

/// An update in a transaction.
pub(crate) fn update(u: Update) -> TransactWriteItem {
    TransactWriteItem::builder().update(u).build()
}

/// An update of the item at `pk`/`sk` of `table`, to fill in.
pub(crate) fn update_at(
    table: &str,
    pk: String,
    sk: impl Into<String>,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    Update::builder().table_name(table).key(super::keys::PK, s(pk)).key(super::keys::SK, s(sk))
}
