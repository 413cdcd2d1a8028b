//! Wire shapes of responses, kept apart from the entities they render.

use crate::domain::audit::{AuditEntry, FieldChange};
use crate::domain::movement::{Movement, Reconciliation, WarehouseCheck};
use crate::domain::order::{Order, OrderItem};
use crate::domain::order_return::OrderReturn;
use crate::domain::product::Product;
use crate::domain::reservation::Reservation;
use crate::domain::stock::StockLevel;
use crate::domain::time::format_time;
use crate::domain::transfer::Transfer;
use crate::domain::waitlist::Entry;
use crate::service::StockAt;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

/// When an entity was made and last changed: the last two fields of every entity's
/// rendering.
#[derive(Debug, Serialize)]
pub struct Stamps {
    pub created_at: String,
    pub updated_at: String,
}

impl Stamps {
    fn of(created_at: DateTime<Utc>, updated_at: DateTime<Utc>) -> Self {
        Self { created_at: format_time(created_at), updated_at: format_time(updated_at) }
    }
}

impl<'a> From<&'a StockLevel> for StockDto<'a> {
    fn from(s: &'a StockLevel) -> Self {
        let units = &s.units;
        Self {
            warehouse_id: s.warehouse_id.as_str(),
            on_hand: units.on_hand,
            reserved: units.reserved,
            available: units.available,
            incoming: Some(s.incoming),
            waiting: Some(s.waiting),
        }
    }
}

/// A product's stock in one warehouse.
#[derive(Debug, Serialize)]
pub struct StockDto<'a> {
    pub warehouse_id: &'a str,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    /// Units in transit towards it; not known at a past instant (`as_of`), so left out
    /// there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incoming: Option<i64>,
    /// Units its waiting waitlist entries ask for (part of `available`); not known at a
    /// past instant either.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<i64>,
}

/// A product as the catalogue renders it, its stock summed over the buckets.
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
    pub low_stock_threshold: Option<i64>,
    #[serde(flatten)]
    pub stamps: Stamps,
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
            stock: p.stock.iter().map(StockDto::from).collect(),
            available: p.available(),
            stock_buckets: p.stock_buckets,
            active: p.active,
            max_per_customer: p.max_per_customer,
            low_stock_threshold: p.low_stock_threshold,
            stamps: Stamps::of(p.created_at, p.updated_at),
        }
    }
}

/// A reservation (hold) as the API renders it.
#[derive(Debug, Serialize)]
pub struct ReservationDto<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub product_id: &'a str,
    pub warehouse_id: &'a str,
    pub quantity: i64,
    pub status: &'static str,
    pub expires_at: String,
    #[serde(flatten)]
    pub stamps: Stamps,
}

impl<'a> From<&'a Reservation> for ReservationDto<'a> {
    fn from(r: &'a Reservation) -> Self {
        Self {
            stamps: Stamps::of(r.created_at, r.updated_at),
            id: &r.id,
            user_id: &r.user_id,
            product_id: &r.product_id,
            warehouse_id: r.warehouse_id.as_str(),
            quantity: r.quantity,
            status: r.status.as_str(),
            expires_at: format_time(r.expires_at),
        }
    }
}

/// A transfer as the API renders it.
#[derive(Debug, Serialize)]
pub struct TransferDto<'a> {
    pub id: &'a str,
    pub product_id: &'a str,
    pub from_warehouse_id: &'a str,
    pub to_warehouse_id: &'a str,
    pub quantity: i64,
    pub status: &'static str,
    pub note: Option<&'a str>,
    #[serde(flatten)]
    pub stamps: Stamps,
}

impl<'a> From<&'a Transfer> for TransferDto<'a> {
    fn from(t: &'a Transfer) -> Self {
        Self {
            stamps: Stamps::of(t.created_at, t.updated_at),
            id: &t.id,
            product_id: &t.product_id,
            from_warehouse_id: t.from_warehouse_id.as_str(),
            to_warehouse_id: t.to_warehouse_id.as_str(),
            quantity: t.quantity,
            status: t.status.as_str(),
            note: t.note.as_deref(),
        }
    }
}

/// A return as the API renders it: one line per product and warehouse (units that came
/// back to two buckets of one warehouse are one line).
#[derive(Debug, Serialize)]
pub struct ReturnDto<'a> {
    pub id: &'a str,
    pub order_id: &'a str,
    pub items: Vec<ReturnItemDto<'a>>,
    pub note: Option<&'a str>,
    pub created_at: String,
}

#[derive(Debug, Serialize)]
pub struct ReturnItemDto<'a> {
    pub product_id: &'a str,
    pub warehouse_id: &'a str,
    pub quantity: i64,
    pub restock: bool,
}

impl<'a> From<&'a OrderReturn> for ReturnDto<'a> {
    fn from(r: &'a OrderReturn) -> Self {
        let mut items: Vec<ReturnItemDto<'a>> = Vec::new();
        for l in &r.lines {
            match items.iter_mut().find(|i| i.product_id == l.product_id && i.warehouse_id == l.warehouse_id)
            {
                Some(i) => i.quantity += l.quantity,
                None => items.push(ReturnItemDto {
                    product_id: &l.product_id,
                    warehouse_id: &l.warehouse_id,
                    quantity: l.quantity,
                    restock: l.restock,
                }),
            }
        }
        Self {
            id: &r.id,
            order_id: &r.order_id,
            items,
            note: r.note.as_deref(),
            created_at: format_time(r.created_at),
        }
    }
}

/// A waitlist entry as the API renders it, with its place in the queue while it waits
/// (`null` otherwise, and in events).
#[derive(Debug, Serialize)]
pub struct WaitlistEntryDto<'a> {
    pub id: &'a str,
    pub product_id: &'a str,
    pub warehouse_id: &'a str,
    pub user_id: &'a str,
    pub quantity: i64,
    pub status: &'static str,
    pub position: Option<i64>,
    pub reservation_id: Option<&'a str>,
    pub created_at: String,
    pub expires_at: String,
}

impl<'a> WaitlistEntryDto<'a> {
    pub fn new(e: &'a Entry, position: Option<i64>) -> Self {
        Self {
            id: &e.id,
            product_id: &e.product_id,
            warehouse_id: e.warehouse_id.as_str(),
            user_id: &e.user_id,
            quantity: e.quantity,
            status: e.status.as_str(),
            position,
            reservation_id: e.reservation_id.as_deref(),
            created_at: format_time(e.created_at),
            expires_at: format_time(e.expires_at),
        }
    }
}

/// One line of an order: what it sold, from where, at what price.
#[derive(Debug, Serialize)]
pub struct OrderItemDto<'a> {
    pub product_id: &'a str,
    pub sku: &'a str,
    pub name: &'a str,
    pub warehouse_id: &'a str,
    pub reservation_id: &'a str,
    pub quantity: i64,
    /// Units of the line returned so far.
    pub returned_quantity: i64,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
}

impl<'a> From<&'a OrderItem> for OrderItemDto<'a> {
    fn from(l: &'a OrderItem) -> Self {
        Self {
            product_id: &l.product_id,
            sku: &l.sku,
            name: &l.name,
            warehouse_id: &l.warehouse_id,
            reservation_id: &l.reservation_id,
            quantity: l.quantity,
            returned_quantity: l.returned,
            unit_price_cents: l.unit_price_cents,
            line_total_cents: l.line_total_cents(),
        }
    }
}

/// An order as the API renders it, its total computed from its lines.
#[derive(Debug, Serialize)]
pub struct OrderDto<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub status: &'static str,
    pub currency: &'a str,
    pub total_cents: i64,
    pub items: Vec<OrderItemDto<'a>>,
    #[serde(flatten)]
    pub stamps: Stamps,
}

impl<'a> From<&'a Order> for OrderDto<'a> {
    fn from(o: &'a Order) -> Self {
        Self {
            id: &o.id,
            user_id: &o.user_id,
            status: o.status.as_str(),
            currency: &o.currency,
            total_cents: o.total_cents(),
            items: o.items.iter().map(OrderItemDto::from).collect(),
            stamps: Stamps::of(o.created_at, o.updated_at),
        }
    }
}

/// `{"items": [...], "next_cursor": "..." | null}`
#[derive(Debug, Serialize)]
pub struct ListDto<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// One audit record: what changed on which entity, by whom, when.
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

/// What a movement refers to.
#[derive(Debug, Serialize)]
pub struct ReferenceDto<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
}

/// One stock movement.
#[derive(Debug, Serialize)]
pub struct MovementDto<'a> {
    pub id: &'a str,
    pub product_id: &'a str,
    pub warehouse_id: &'a str,
    /// Only for a product with `stock_buckets > 1`, whose rows number their own `seq`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<usize>,
    pub seq: u64,
    pub at: String,
    pub reason: &'static str,
    pub reference: Option<ReferenceDto<'a>>,
    pub actor: &'a str,
    pub note: Option<&'a str>,
    pub on_hand_change: i64,
    pub reserved_change: i64,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

impl<'a> MovementDto<'a> {
    pub fn new(m: &'a Movement, bucketed: bool) -> Self {
        Self {
            id: &m.id,
            product_id: &m.product_id,
            warehouse_id: &m.warehouse_id,
            bucket: bucketed.then_some(m.bucket),
            seq: m.seq,
            at: format_time(m.at),
            reason: m.reason.as_str(),
            reference: m.reference.as_ref().map(|r| ReferenceDto { kind: r.kind.as_str(), id: &r.id }),
            actor: &m.actor,
            note: m.note.as_deref(),
            on_hand_change: m.on_hand_change,
            reserved_change: m.reserved_change,
            on_hand: m.on_hand,
            reserved: m.reserved,
            available: m.available,
        }
    }
}

/// A product's stock at an instant.
#[derive(Debug, Serialize)]
pub struct StockAtDto<'a> {
    pub product_id: &'a str,
    pub as_of: String,
    pub stock: Vec<StockDto<'a>>,
    pub available: i64,
}

impl<'a> From<&'a StockAt> for StockAtDto<'a> {
    fn from(s: &'a StockAt) -> Self {
        let stock: Vec<StockDto<'a>> = s
            .stock
            .iter()
            .map(|(w, u)| StockDto {
                warehouse_id: w.as_str(),
                on_hand: u.on_hand,
                reserved: u.reserved,
                available: u.available,
                incoming: None,
                waiting: None,
            })
            .collect();
        Self {
            product_id: &s.product_id,
            as_of: format_time(s.as_of),
            available: stock.iter().map(|x| x.available).sum(),
            stock,
        }
    }
}

/// A product's reconciliation.
#[derive(Debug, Serialize)]
pub struct ReconciliationDto<'a> {
    pub product_id: &'a str,
    pub consistent: bool,
    pub warehouses: Vec<WarehouseCheckDto<'a>>,
}

#[derive(Debug, Serialize)]
pub struct WarehouseCheckDto<'a> {
    pub warehouse_id: &'a str,
    pub on_hand: i64,
    pub reserved: i64,
    pub ledger_on_hand: i64,
    pub ledger_reserved: i64,
    pub held_by_reservations: i64,
    pub consistent: bool,
}

impl<'a> From<&'a WarehouseCheck> for WarehouseCheckDto<'a> {
    fn from(w: &'a WarehouseCheck) -> Self {
        Self {
            warehouse_id: &w.warehouse_id,
            on_hand: w.counters.on_hand,
            reserved: w.counters.reserved,
            ledger_on_hand: w.ledger.on_hand,
            ledger_reserved: w.ledger.reserved,
            held_by_reservations: w.held_by_reservations,
            consistent: w.consistent(),
        }
    }
}

impl<'a> From<&'a Reconciliation> for ReconciliationDto<'a> {
    fn from(r: &'a Reconciliation) -> Self {
        Self {
            product_id: &r.product_id,
            consistent: r.consistent(),
            warehouses: r.warehouses.iter().map(WarehouseCheckDto::from).collect(),
        }
    }
}
