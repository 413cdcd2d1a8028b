//! Products and their SKU claims.

use super::{from_item, s, to_attrs, Attrs};
use crate::domain::product::{Currency, Product, Sku, StockSettings, Terms};
use crate::domain::stock::{sum_per_warehouse, StockLevel, WarehouseId};
use crate::domain::time::{format_time, parse_time};
use crate::store::keys::*;
use crate::store::{Item, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A product as stored (its stock rows are items of their own).
#[derive(Debug, Serialize, Deserialize)]
struct ProductRecord {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    entity: String,
    id: String,
    sku: String,
    name: String,
    price_cents: i64,
    currency: String,
    created_at: String,
    updated_at: String,
    last_actor: String,
    /// Only bucketed products carry the setting, so other products' items stay as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stock_buckets: Option<i64>,
    #[serde(default = "active_by_default")]
    active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_per_customer: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    low_stock_threshold: Option<i64>,
    /// Products written before these existed read as version 0, terms 0, stock_rev 0.
    #[serde(default)]
    version: i64,
    #[serde(default)]
    terms: i64,
    /// Counts additions of stock (which may add stock rows), so that a change of terms
    /// knows it reached every row.
    #[serde(default)]
    stock_rev: i64,
    /// The warehouses the product has stock rows in (a map, so that one can be added by
    /// name and an empty one stored). Products written before it existed have none, and
    /// their terms name no warehouse until stock is added to a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warehouses: Option<BTreeMap<String, bool>>,
    /// How many changes of its own fields the product has had (`EVENT_SEQ`): its
    /// events' `sequence`. Stock changes are the stock's events, never the product's.
    #[serde(default)]
    ev: i64,
}

fn active_by_default() -> bool {
    true
}

/// What a change of a product must find unchanged: its version (the tag), its count of
/// changes (`ev`, which also counts threshold changes, which the tag leaves out) and the
/// stock rows it read (`stock_rev`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revision {
    pub version: i64,
    pub ev: i64,
    pub stock_rev: i64,
}

/// The product attribute that lists `warehouses`.
fn warehouse_map<'a>(warehouses: impl IntoIterator<Item = &'a WarehouseId>) -> BTreeMap<String, bool> {
    warehouses.into_iter().map(|w| (w.as_str().to_string(), true)).collect()
}

/// The fields of a product an order line snapshots, and the version they are of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceSnapshot {
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub currency: String,
    pub version: i64,
}

pub fn item(p: &Product, actor: &str) -> Result<Attrs, StoreError> {
    to_attrs(&ProductRecord {
        pk: product_pk(&p.id),
        sk: PRODUCT_SK.into(),
        gsi1pk: PRODUCT_LIST_PK.into(),
        gsi1sk: p.id.clone(),
        entity: "product".into(),
        id: p.id.clone(),
        sku: p.sku.as_str().into(),
        name: p.name.clone(),
        price_cents: p.price_cents,
        currency: p.currency.as_str().into(),
        created_at: format_time(p.created_at),
        updated_at: format_time(p.updated_at),
        last_actor: actor.into(),
        stock_buckets: (p.stock_buckets > 1).then_some(p.stock_buckets as i64),
        active: p.active,
        max_per_customer: p.max_per_customer,
        low_stock_threshold: p.low_stock_threshold,
        version: p.version,
        terms: p.terms,
        stock_rev: 0,
        warehouses: Some(warehouse_map(p.stock.iter().map(|l| &l.warehouse_id))),
        ev: 1,
    })
}

/// The claim that makes a SKU unique: written with the product, on condition that it is new.
pub fn sku_claim(p: &Product, actor: &str) -> Attrs {
    Attrs::from([
        (PK.into(), s(sku_pk(p.sku.as_str()))),
        (SK.into(), s(SKU_SK)),
        ("entity".into(), s("sku_claim")),
        ("product_id".into(), s(&p.id)),
        ("last_actor".into(), s(actor)),
    ])
}

/// A product's `stock_buckets`; products written before the setting existed have one.
pub fn buckets_of(head: &Item) -> Result<usize, StoreError> {
    let k = head.opt_n("stock_buckets").unwrap_or(1);
    usize::try_from(k)
        .ok()
        .filter(|k| *k >= 1)
        .ok_or_else(|| StoreError::Internal("bad stock_buckets".into()))
}

/// The settings of the product at `head` that its stock events depend on, with its id.
pub fn stock_settings(head: &Item) -> Result<(String, StockSettings), StoreError> {
    let threshold = head.opt_n("low_stock_threshold");
    Ok((
        head.s("id")?.to_string(),
        StockSettings { low_stock_threshold: threshold, stock_buckets: buckets_of(head)? },
    ))
}

/// The product at `head` with its stock `rows` of every bucket, shown summed per warehouse.
pub fn product(head: &Item, rows: Vec<StockLevel>) -> Result<Product, StoreError> {
    with_revision(head, rows).map(|(p, _)| p)
}

/// `product`, and the revision a change of it must find unchanged, from one reading of
/// the item.
pub fn with_revision(head: &Item, rows: Vec<StockLevel>) -> Result<(Product, Revision), StoreError> {
    let r: ProductRecord = from_item(head)?;
    let revision = Revision { version: r.version, ev: r.ev, stock_rev: r.stock_rev };
    let time = |t: &str| parse_time(t).ok_or_else(|| StoreError::Internal("bad product time".into()));
    let stock = sum_per_warehouse(rows);
    let own_updated = time(&r.updated_at)?;
    let updated_at = stock.iter().map(|s| s.updated_at).fold(own_updated, chrono::DateTime::max);
    let product = Product {
        sku: Sku::parse(&r.sku).map_err(StoreError::Internal)?,
        currency: Currency::parse(&r.currency).map_err(StoreError::Internal)?,
        stock_buckets: buckets_of(head)?,
        created_at: time(&r.created_at)?,
        updated_at,
        stock,
        active: r.active,
        max_per_customer: r.max_per_customer,
        low_stock_threshold: r.low_stock_threshold,
        version: r.version,
        terms: r.terms,
        id: r.id,
        name: r.name,
        price_cents: r.price_cents,
    };
    Ok((product, revision))
}

pub fn terms(head: &Item) -> Result<Terms, StoreError> {
    let r: ProductRecord = from_item(head)?;
    Ok(Terms {
        buckets: buckets_of(head)?,
        active: r.active,
        max_per_customer: r.max_per_customer,
        terms: r.terms,
        warehouses: r
            .warehouses
            .unwrap_or_default()
            .keys()
            .map(|w| WarehouseId::parse(w).map_err(StoreError::Internal))
            .collect::<Result<_, _>>()?,
    })
}

/// `attr = :name`, or for 0 (items written before the attribute existed) its absence too.
pub fn equals_or_absent(attr: &str, placeholder: &str, value: i64) -> String {
    if value == 0 {
        format!("(attribute_not_exists({attr}) OR {attr} = {placeholder})")
    } else {
        format!("{attr} = {placeholder}")
    }
}

/// The product's own fields as `next` has them, on condition that it is still at
/// `revision`; `updated_at` and the writer stamped.
pub fn change(
    table: &str,
    revision: Revision,
    next: &Product,
    now: &str,
    actor: &str,
) -> Result<aws_sdk_dynamodb::types::Update, StoreError> {
    let (set_limit, limit) = match next.max_per_customer {
        Some(m) => (", max_per_customer = :limit", Some(m)),
        None => ("", None),
    };
    let set_threshold =
        if next.low_stock_threshold.is_some() { ", low_stock_threshold = :threshold" } else { "" };
    let removed: Vec<&str> = [
        next.max_per_customer.is_none().then_some("max_per_customer"),
        next.low_stock_threshold.is_none().then_some("low_stock_threshold"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let remove = if removed.is_empty() { String::new() } else { format!(" REMOVE {}", removed.join(", ")) };
    let u = super::update_at(table, product_pk(&next.id), PRODUCT_SK).update_expression(format!(
        "SET #name = :name, price_cents = :price, active = :active, version = :version, terms = :terms, \
         updated_at = :now, last_actor = :actor{set_limit}{set_threshold}{remove} ADD ev :one"
    ));
    let mut u = at_revision(u, revision)
        .expression_attribute_names("#name", "name")
        .expression_attribute_values(":name", s(&next.name))
        .expression_attribute_values(":price", super::n(next.price_cents))
        .expression_attribute_values(":active", aws_sdk_dynamodb::types::AttributeValue::Bool(next.active))
        .expression_attribute_values(":version", super::n(next.version))
        .expression_attribute_values(":terms", super::n(next.terms))
        .expression_attribute_values(":one", super::n(1))
        .expression_attribute_values(":now", s(now))
        .expression_attribute_values(":actor", s(actor));
    if let Some(m) = limit {
        u = u.expression_attribute_values(":limit", super::n(m));
    }
    if let Some(t) = next.low_stock_threshold {
        u = u.expression_attribute_values(":threshold", super::n(t));
    }
    Ok(u.build()?)
}

/// Counts an addition of stock on the product (which may add stock rows), on condition
/// that it exists and its terms are still `terms` (the new rows are written with them).
pub fn added_stock(
    table: &str,
    product_id: &str,
    terms: i64,
) -> Result<aws_sdk_dynamodb::types::Update, StoreError> {
    Ok(super::update_at(table, product_pk(product_id), PRODUCT_SK)
        .update_expression("ADD stock_rev :one")
        .condition_expression(format!(
            "attribute_exists(pk) AND {}",
            equals_or_absent("terms", ":terms", terms)
        ))
        .expression_attribute_values(":one", super::n(1))
        .expression_attribute_values(":terms", super::n(terms))
        .return_values_on_condition_check_failure(
            aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
        )
        .build()?)
}

/// Records that the product, read at `revision`, now has stock rows in `warehouses`
/// (one more than it had), under the terms version `terms`; counted as an addition of
/// stock (`stock_rev`), so a change or another new warehouse read before it moves on.
pub fn opened_warehouse(
    table: &str,
    product_id: &str,
    revision: Revision,
    warehouses: &[WarehouseId],
    terms: i64,
) -> Result<aws_sdk_dynamodb::types::Update, StoreError> {
    let listed = serde_dynamo::to_attribute_value(warehouse_map(warehouses))
        .map_err(|e| StoreError::Internal(format!("item mapping: {e}")))?;
    let u = super::update_at(table, product_pk(product_id), PRODUCT_SK)
        .update_expression("SET warehouses = :warehouses, terms = :terms ADD stock_rev :one");
    Ok(at_revision(u, revision)
        .expression_attribute_values(":warehouses", listed)
        .expression_attribute_values(":terms", super::n(terms))
        .expression_attribute_values(":one", super::n(1))
        .build()?)
}

/// `u` on condition that the product is still at `revision`: no change of it and no
/// addition of stock since it was read.
fn at_revision(
    u: aws_sdk_dynamodb::types::builders::UpdateBuilder,
    revision: Revision,
) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
    u.condition_expression(format!(
        "{} AND {} AND {}",
        equals_or_absent("version", ":was", revision.version),
        equals_or_absent("ev", ":ev", revision.ev),
        equals_or_absent("stock_rev", ":rev", revision.stock_rev)
    ))
    .expression_attribute_values(":was", super::n(revision.version))
    .expression_attribute_values(":ev", super::n(revision.ev))
    .expression_attribute_values(":rev", super::n(revision.stock_rev))
}

/// That the product's version is still `version` (an order snapshots its price).
pub fn unchanged(
    table: &str,
    product_id: &str,
    version: i64,
) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
    let check = aws_sdk_dynamodb::types::ConditionCheck::builder()
        .table_name(table)
        .key(PK, s(product_pk(product_id)))
        .key(SK, s(PRODUCT_SK))
        .condition_expression(equals_or_absent("version", ":v", version))
        .expression_attribute_values(":v", super::n(version))
        .build()?;
    Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder().condition_check(check).build())
}

pub fn price_snapshot(head: &Item) -> Result<(String, PriceSnapshot), StoreError> {
    let r: ProductRecord = from_item(head)?;
    Ok((
        r.id,
        PriceSnapshot {
            sku: r.sku,
            name: r.name,
            price_cents: r.price_cents,
            currency: r.currency,
            version: r.version,
        },
    ))
}
