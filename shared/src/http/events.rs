//! Events rendered as the API renders their entities: an event's `data` is the entity after
//! the change in the same shape a `GET` returns, so this layer, which owns those shapes,
//! makes the events the stream job writes to the feed.

use super::dto::{MovementDto, OrderDto, ProductDto, ReservationDto};
use crate::domain::audit::{AuditEntry, FieldChange};
use crate::domain::event::{Changed, Event, EventType, FeedEntry};
use crate::domain::movement::{Movement, Observed};
use serde_json::Value;

/// The event of an entity's change, from its audit entry (id, actor, time, changes) and
/// the entity decoded from the record (for a product, `product` is the product read with
/// its stock); `None` when no event describes the change.
pub fn entity_event(entry: &AuditEntry, changed: &Changed, position: &str) -> Option<FeedEntry> {
    let kind = changed.kind()?;
    let data = match changed {
        Changed::Product(c) => serde_json::to_value(ProductDto::from(&c.after)),
        Changed::Reservation(c) => serde_json::to_value(ReservationDto::from(&c.after)),
        Changed::Order(c) => serde_json::to_value(OrderDto::from(&c.after)),
    }
    .unwrap_or(Value::Null);
    Some(FeedEntry {
        event: Event {
            event_id: entry.id.clone(),
            kind,
            entity_id: entry.entity_id.clone(),
            sequence: changed.sequence(),
            occurred_at: entry.at,
            actor: entry.actor.clone(),
            data,
            changes: entry.changes.clone(),
        },
        position: format!("{position}#00"),
    })
}

/// The stock events of one write of a stock row: a `StockChanged` per movement it made,
/// numbered by the movement's `seq`, its `data` the row's stock after it with the
/// movement. `bucketed`: the product spreads a warehouse over bucket rows, whose
/// movements (and so these events) carry their bucket.
pub fn stock_events(w: &Observed, made: &[Movement], bucketed: bool) -> Vec<FeedEntry> {
    made.iter()
        .enumerate()
        .map(|(i, m)| {
            let mut data = serde_json::json!({
                "product_id": m.product_id,
                "warehouse_id": m.warehouse_id,
                "on_hand": m.on_hand,
                "reserved": m.reserved,
                "available": m.available,
                "movement": MovementDto::new(m, bucketed),
            });
            if bucketed {
                data["bucket"] = m.bucket.into();
            }
            let (old_on_hand, old_reserved) = (m.on_hand - m.on_hand_change, m.reserved - m.reserved_change);
            let changes = [
                ("on_hand", old_on_hand, m.on_hand),
                ("reserved", old_reserved, m.reserved),
                ("available", old_on_hand - old_reserved, m.available),
            ]
            .into_iter()
            .filter(|(_, old, new)| old != new)
            .map(|(k, old, new)| (k.to_string(), FieldChange { old: old.into(), new: new.into() }))
            .collect();
            FeedEntry {
                event: Event {
                    event_id: m.id.clone(),
                    kind: EventType::StockChanged,
                    entity_id: m.product_id.clone(),
                    sequence: m.seq,
                    occurred_at: m.at,
                    actor: m.actor.clone(),
                    data,
                    changes,
                },
                position: format!("{}#{:02}", w.position, i * 2),
            }
        })
        .collect()
}
