//! Events rendered as the API renders their entities: an event's `data` is the entity after
//! the change in the same shape a `GET` returns, so this layer, which owns those shapes,
//! makes the events the stream job writes to the feed.

use super::dto::{
    MovementDto, OrderDto, ProductDto, ReservationDto, ReturnDto, TransferDto, WaitlistEntryDto,
};
use crate::domain::audit::{AuditEntry, FieldChange};
use crate::domain::event::{write_crossing, Changed, Event, EventType, FeedEntry};
use crate::domain::movement::{Movement, Observed};
use crate::domain::product::StockSettings;
use serde_json::Value;

/// The event of an entity's change, from its audit entry (id, actor, time, changes) and
/// the entity decoded from the record (for a product, `product` is the product read with
/// its stock); `None` when no event describes the change.
pub fn entity_event(entry: &AuditEntry, changed: &Changed, position: &str) -> Option<FeedEntry> {
    let kind = changed.kind()?;
    let data = match changed {
        Changed::Product(c) => serde_json::to_value(ProductDto::from(&c.after)),
        Changed::Reservation(c) => serde_json::to_value(ReservationDto::from(&c.after)),
        Changed::Order(c) => serde_json::to_value(OrderDto::from(&c.after)).map(|mut data| {
            // A return's event carries the return beside the order.
            if let (EventType::OrderReturned, Some(r), Some(obj)) =
                (kind, c.after.last_return.as_ref(), data.as_object_mut())
            {
                obj.insert("return".into(), serde_json::to_value(ReturnDto::from(r)).unwrap_or(Value::Null));
            }
            data
        }),
        Changed::Transfer(c) => serde_json::to_value(TransferDto::from(&c.after)),
        // No place: an event is a moment of the entry, its place a moment of the queue.
        Changed::Waitlist(c) => serde_json::to_value(WaitlistEntryDto::new(&c.after, None)),
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
/// movement; then, for a product whose warehouse is one row, the threshold event the
/// write makes (`write_crossing`), numbered by the write's last movement, its `data` the
/// stock after the write. `settings`: the product's (`None`: unknown, so no crossing; a
/// movement off bucket 0 still tells a bucketed product, whose events carry their
/// bucket).
pub fn stock_events(w: &Observed, made: &[Movement], settings: Option<&StockSettings>) -> Vec<FeedEntry> {
    let bucketed = match settings {
        Some(s) => s.stock_buckets > 1,
        None => made.iter().any(|m| m.bucket > 0),
    };
    let stock = |m: &Movement| {
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
        data
    };
    let change =
        |k: &str, old: i64, new: i64| (k.to_string(), FieldChange { old: old.into(), new: new.into() });
    let mut out: Vec<FeedEntry> = made
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (old_on_hand, old_reserved) = (m.on_hand - m.on_hand_change, m.reserved - m.reserved_change);
            let changes = [
                ("on_hand", old_on_hand, m.on_hand),
                ("reserved", old_reserved, m.reserved),
                ("available", old_on_hand - old_reserved, m.available),
            ]
            .into_iter()
            .filter(|(_, old, new)| old != new)
            .map(|(k, old, new)| change(k, old, new))
            .collect();
            FeedEntry {
                event: Event {
                    event_id: m.id.clone(),
                    kind: EventType::StockChanged,
                    entity_id: m.product_id.clone(),
                    sequence: m.seq,
                    occurred_at: m.at,
                    actor: m.actor.clone(),
                    data: stock(m),
                    changes,
                },
                position: format!("{}#{:02}", w.position, i * 2),
            }
        })
        .collect();
    let judged = settings.filter(|s| s.stock_buckets <= 1);
    let crossed = judged.and_then(|s| write_crossing(made, s.low_stock_threshold, w.opened));
    if let (Some((kind, before)), Some(last)) = (crossed, made.last()) {
        let mut data = stock(last);
        data["low_stock_threshold"] = judged.and_then(|s| s.low_stock_threshold).into();
        out.push(FeedEntry {
            event: Event {
                event_id: format!("{}:{}", last.id, kind.as_str()),
                kind,
                entity_id: last.product_id.clone(),
                sequence: last.seq,
                occurred_at: last.at,
                actor: last.actor.clone(),
                data,
                changes: [change("available", before, last.available)].into_iter().collect(),
            },
            position: format!("{}#{:02}", w.position, (made.len() - 1) * 2 + 1),
        });
    }
    out
}
