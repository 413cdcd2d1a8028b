//! Products and their SKU claims.

use super::{from_item, s, to_attrs, Attrs};
use crate::domain::product::{Currency, Product, Sku};
use crate::domain::stock::{sum_per_warehouse, StockLevel};
use crate::domain::time::{format_time, parse_time};
use crate::store::keys::*;
use crate::store::{Item, StoreError};
use serde::{Deserialize, Serialize};

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
}

/// The fields of a product an order line snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceSnapshot {
    pub sku: String,
    pub name: String,
    pub price_cents: i64,
    pub currency: String,
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

/// The product at `head` with its stock `rows` of every bucket, shown summed per warehouse.
pub fn product(head: &Item, rows: Vec<StockLevel>) -> Result<Product, StoreError> {
    let r: ProductRecord = from_item(head)?;
    let time = |t: &str| parse_time(t).ok_or_else(|| StoreError::Internal("bad product time".into()));
    let stock = sum_per_warehouse(rows);
    let own_updated = time(&r.updated_at)?;
    let updated_at = stock.iter().map(|s| s.updated_at).fold(own_updated, chrono::DateTime::max);
    Ok(Product {
        sku: Sku::parse(&r.sku).map_err(StoreError::Internal)?,
        currency: Currency::parse(&r.currency).map_err(StoreError::Internal)?,
        stock_buckets: buckets_of(head)?,
        created_at: time(&r.created_at)?,
        updated_at,
        stock,
        id: r.id,
        name: r.name,
        price_cents: r.price_cents,
    })
}

pub fn price_snapshot(head: &Item) -> Result<(String, PriceSnapshot), StoreError> {
    let r: ProductRecord = from_item(head)?;
    Ok((r.id, PriceSnapshot { sku: r.sku, name: r.name, price_cents: r.price_cents, currency: r.currency }))
}
