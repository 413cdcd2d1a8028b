//! Wire shapes of responses, kept apart from the entities they render.

use crate::domain::audit::{AuditEntry, FieldChange};
use crate::domain::order::Order;
use crate::domain::product::Product;
use crate::domain::reservation::Reservation;
use crate::domain::time::format_time;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct StockDto<'a> {
    pub warehouse_id: &'a str,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

#[derive(Debug, Serialize)]
pub struct ProductDto<'a> {
    pub id: &'a str,
    pub sku: &'a str,
    pub name: &'a str,
    pub price_cents: i64,
    pub currency: &'a str,
    pub stock: Vec<StockDto<'a>>,
    pub available: i64,
    pub stock_buckets: usize,
    pub active: bool,
    pub max_per_customer: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

/// A product's `ETag`: a strong tag of its own fields (name, price, limit, `active`),
/// which stock movements never change.
pub fn etag(p: &Product) -> String {
    format!("\"{}\"", p.version)
}

impl<'a> From<&'a Product> for ProductDto<'a> {
    fn from(p: &'a Product) -> Self {
        Self {
            id: &p.id,
            sku: p.sku.as_str(),
            name: &p.name,
            price_cents: p.price_cents,
            currency: p.currency.as_str(),
            stock: p
                .stock
                .iter()
                .map(|s| StockDto {
                    warehouse_id: s.warehouse_id.as_str(),
                    on_hand: s.units.on_hand,
                    reserved: s.units.reserved,
                    available: s.units.available,
                })
                .collect(),
            available: p.available(),
            stock_buckets: p.stock_buckets,
            active: p.active,
            max_per_customer: p.max_per_customer,
            created_at: format_time(p.created_at),
            updated_at: format_time(p.updated_at),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ReservationDto<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub product_id: &'a str,
    pub warehouse_id: &'a str,
    pub quantity: i64,
    pub status: &'static str,
    pub expires_at: String,
    pub created_at: String,
    pub updated_at: String,
}

impl<'a> From<&'a Reservation> for ReservationDto<'a> {
    fn from(r: &'a Reservation) -> Self {
        Self {
            id: &r.id,
            user_id: &r.user_id,
            product_id: &r.product_id,
            warehouse_id: r.warehouse_id.as_str(),
            quantity: r.quantity,
            status: r.status.as_str(),
            expires_at: format_time(r.expires_at),
            created_at: format_time(r.created_at),
            updated_at: format_time(r.updated_at),
        }
    }
}

/// `{"items": [...], "next_cursor": "..." | null}`
#[derive(Debug, Serialize)]
pub struct ListDto<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct OrderItemDto<'a> {
    pub product_id: &'a str,
    pub sku: &'a str,
    pub name: &'a str,
    pub warehouse_id: &'a str,
    pub reservation_id: &'a str,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
}

#[derive(Debug, Serialize)]
pub struct OrderDto<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub status: &'static str,
    pub currency: &'a str,
    pub total_cents: i64,
    pub items: Vec<OrderItemDto<'a>>,
    pub created_at: String,
    pub updated_at: String,
}

impl<'a> From<&'a Order> for OrderDto<'a> {
    fn from(o: &'a Order) -> Self {
        Self {
            id: &o.id,
            user_id: &o.user_id,
            status: o.status.as_str(),
            currency: &o.currency,
            total_cents: o.total_cents(),
            items: o
                .items
                .iter()
                .map(|l| OrderItemDto {
                    product_id: &l.product_id,
                    sku: &l.sku,
                    name: &l.name,
                    warehouse_id: &l.warehouse_id,
                    reservation_id: &l.reservation_id,
                    quantity: l.quantity,
                    unit_price_cents: l.unit_price_cents,
                    line_total_cents: l.line_total_cents(),
                })
                .collect(),
            created_at: format_time(o.created_at),
            updated_at: format_time(o.updated_at),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AuditDto<'a> {
    pub id: &'a str,
    pub entity_type: &'static str,
    pub entity_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warehouse_id: Option<&'a str>,
    pub action: &'static str,
    pub actor: &'a str,
    pub at: String,
    pub changes: &'a BTreeMap<String, FieldChange>,
}

impl<'a> From<&'a AuditEntry> for AuditDto<'a> {
    fn from(e: &'a AuditEntry) -> Self {
        Self {
            id: &e.id,
            entity_type: e.entity_type.as_str(),
            entity_id: &e.entity_id,
            warehouse_id: e.warehouse_id.as_deref(),
            action: e.action.as_str(),
            actor: &e.actor,
            at: format_time(e.at),
            changes: &e.changes,
        }
    }
}
