//! Events out: what stockhold tells a shop's other systems about every business change.
//! An event is made once per change from the table's stream (the same source as the
//! audit log), numbered per entity so that a consumer can see a gap, and kept in the
//! replay feed for 7 days. This module holds the catalogue and the event itself; how
//! an entity is rendered into `data` is the HTTP layer's (the API's own shapes).

use super::audit::FieldChange;
use super::movement::{Movement, Reason};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The `source` of every event on the bus.
pub const SOURCE: &str = "stockhold";

/// How long the replay feed keeps an event.
pub const FEED_DAYS: i64 = 7;

macro_rules! event_types {
    ($($name:ident),* $(,)?) => {
        /// The catalogue: an event's `detail-type` (and its detail's `type`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType { $($name),* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(Self::$name),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$name => stringify!($name)),* }
            }
        }
    };
}

event_types!(
    ProductCreated,
    ProductChanged,
    StockChanged,
    StockLow,
    OutOfStock,
    BackInStock,
    ReservationCreated,
    ReservationExtended,
    ReservationReleased,
    ReservationExpired,
    ReservationConverted,
    OrderCreated,
    OrderStatusChanged,
    OrderReturned,
    TransferCreated,
    TransferReceived,
    TransferCancelled,
    WaitlistJoined,
    WaitlistOffered,
    WaitlistLeft,
    WaitlistExpired,
);

impl EventType {
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == s)
    }

    /// The entity type events of this type are about.
    pub fn entity_type(self) -> &'static str {
        use EventType::*;
        match self {
            ProductCreated | ProductChanged => "product",
            StockChanged | StockLow | OutOfStock | BackInStock => "stock",
            ReservationCreated | ReservationExtended | ReservationReleased | ReservationExpired
            | ReservationConverted => "reservation",
            OrderCreated | OrderStatusChanged | OrderReturned => "order",
            TransferCreated | TransferReceived | TransferCancelled => "transfer",
            WaitlistJoined | WaitlistOffered | WaitlistLeft | WaitlistExpired => "waitlist_entry",
        }
    }
}

/// Most units a product's `low_stock_threshold` may name.
pub const MAX_LOW_STOCK_THRESHOLD: i64 = 1_000_000_000;

/// The threshold event one write of a warehouse's stock makes, from its `available`
/// before and after and the product's `low_stock_threshold`: `OutOfStock` when it falls
/// to 0 (or below, which a count under held units can leave), `BackInStock` when it
/// rises from there, `StockLow` when it falls from above the threshold to at or below it
/// and stays above 0. A write makes at most one (each rule starts where the others end),
/// so each crossing is one event exactly when each write is judged once. A warehouse's
/// first write (`opened`: its row is new) is no crossing: there was no level before.
pub fn crossing(before: i64, after: i64, threshold: Option<i64>, opened: bool) -> Option<EventType> {
    if opened {
        return None;
    }
    if before > 0 && after <= 0 {
        Some(EventType::OutOfStock)
    } else if before <= 0 && after > 0 {
        Some(EventType::BackInStock)
    } else {
        let t = threshold?;
        (before > t && after <= t && after > 0).then_some(EventType::StockLow)
    }
}

/// The threshold event of one write from the movements it made (in order): judged on
/// the `available` before its first movement and after its last, so a write that makes
/// two (a gap found, then the write's own change) is still one step. An `opening`
/// movement is the level the ledger first learns of, not a change: the level before is
/// the one after it. `opened`: the write made the row. The event and the `available`
/// it was judged from.
pub fn write_crossing(made: &[Movement], threshold: Option<i64>, opened: bool) -> Option<(EventType, i64)> {
    let changes: Vec<&Movement> = made.iter().skip_while(|m| m.reason == Reason::Opening).collect();
    let (first, last) = (changes.first()?, changes.last()?);
    let before = first.available - (first.on_hand_change - first.reserved_change);
    crossing(before, last.available, threshold, opened).map(|kind| (kind, before))
}

/// The entity types an event can be about (the feed's `entity_type` filter).
pub const ENTITY_TYPES: &[&str] = &["product", "stock", "reservation", "order", "transfer", "waitlist_entry"];

/// One event: the `detail` of what goes on the bus, and an item of the replay feed.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The same on every delivery: made from the stream record (and, for the several
    /// events of one record, the event's place among them), so a retry keeps it.
    pub event_id: String,
    pub kind: EventType,
    pub entity_id: String,
    /// 1, 2, 3, ... per entity (per warehouse of a product for the stock events).
    pub sequence: u64,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    /// The entity after the change, as the API renders it.
    pub data: Value,
    pub changes: BTreeMap<String, FieldChange>,
}

impl Event {
    /// The event's `detail` object, as the bus, the webhook and the feed carry it.
    pub fn detail(&self) -> Value {
        json!({
            "event_id": self.event_id,
            "type": self.kind.as_str(),
            "entity_type": self.kind.entity_type(),
            "entity_id": self.entity_id,
            "sequence": self.sequence,
            "occurred_at": super::time::format_time(self.occurred_at),
            "actor": self.actor,
            "data": self.data,
            "changes": self.changes,
        })
    }
}

/// An event as the feed keeps it, with the place it takes in the stream of its table (the
/// stream record's sequence number and the event's place among that record's events), so
/// that events written in the same millisecond keep their order.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEntry {
    pub event: Event,
    pub position: String,
}

/// An event as the bus takes it (`PutEvents`): what was published to the feed, ready to
/// go out. `detail` is the feed's JSON text as it is, so the bus, the webhook and the
/// feed carry the same bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub event_id: String,
    pub kind: EventType,
    /// When the change happened (the envelope's `time`).
    pub time: DateTime<Utc>,
    pub detail: String,
}

/// Most events one `PutEvents` request takes, and most bytes its entries may add up to
/// (EventBridge's limits; an entry counts its source, detail-type, detail and 14 bytes
/// for its time).
pub const BUS_BATCH: usize = 10;
pub const BUS_REQUEST_BYTES: usize = 256 * 1024;

impl Outgoing {
    /// The size EventBridge counts against `BUS_REQUEST_BYTES`.
    pub fn size(&self) -> usize {
        14 + SOURCE.len() + self.kind.as_str().len() + self.detail.len()
    }
}

/// Events, each with what the caller tags it with (its stream record).
pub type Tagged<T> = Vec<(T, Outgoing)>;

/// Splits `events` into requests the bus takes: at most `BUS_BATCH` each and within
/// `BUS_REQUEST_BYTES`, in order. An event too large for any request comes back apart
/// (`Err`): no retry can publish it (the feed keeps it).
pub fn bus_requests<T>(events: Vec<(T, Outgoing)>) -> (Vec<Tagged<T>>, Tagged<T>) {
    let (mut requests, mut too_large) = (Vec::new(), Vec::new());
    let mut current: Vec<(T, Outgoing)> = Vec::new();
    let mut bytes = 0;
    for (tag, e) in events {
        let size = e.size();
        if size > BUS_REQUEST_BYTES {
            too_large.push((tag, e));
            continue;
        }
        if current.len() == BUS_BATCH || bytes + size > BUS_REQUEST_BYTES {
            requests.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push((tag, e));
    }
    if !current.is_empty() {
        requests.push(current);
    }
    (requests, too_large)
}

/// An entity's change as its stream record shows it: the entity before (none for a
/// creation) and after, and its change count after (`sequence`).
#[derive(Debug, Clone)]
pub struct EntityChange<T> {
    pub before: Option<T>,
    pub after: T,
    pub sequence: u64,
}

/// The change of a product, reservation or order (stock rows are the ledger's).
#[derive(Debug, Clone)]
pub enum Changed {
    Product(EntityChange<super::product::Product>),
    Reservation(EntityChange<super::reservation::Reservation>),
    Order(EntityChange<super::order::Order>),
    Transfer(EntityChange<super::transfer::Transfer>),
    Waitlist(EntityChange<super::waitlist::Entry>),
}

/// The id of an order's latest return.
fn returned(o: &super::order::Order) -> Option<&str> {
    o.last_return.as_ref().map(|r| r.id.as_str())
}

impl Changed {
    /// The event type of the change; `None` for a change no event describes.
    pub fn kind(&self) -> Option<EventType> {
        use super::reservation::ReservationStatus as R;
        match self {
            Self::Product(c) => {
                Some(if c.before.is_none() { EventType::ProductCreated } else { EventType::ProductChanged })
            }
            Self::Reservation(c) => match (&c.before, c.after.status) {
                (None, _) => Some(EventType::ReservationCreated),
                (Some(b), R::Released) if b.status == R::Active => Some(EventType::ReservationReleased),
                (Some(b), R::Expired) if b.status == R::Active => Some(EventType::ReservationExpired),
                (Some(b), R::Converted) if b.status == R::Active => Some(EventType::ReservationConverted),
                (Some(b), R::Active) if b.expires_at != c.after.expires_at => {
                    Some(EventType::ReservationExtended)
                }
                _ => None,
            },
            Self::Order(c) => match &c.before {
                None => Some(EventType::OrderCreated),
                // A return is its own event, also when it completes the order (its changes
                // show the status then).
                Some(b) if returned(b) != returned(&c.after) => Some(EventType::OrderReturned),
                Some(b) if b.status != c.after.status => Some(EventType::OrderStatusChanged),
                _ => None,
            },
            Self::Transfer(c) => {
                use super::transfer::TransferStatus as T;
                match (&c.before, c.after.status) {
                    (None, _) => Some(EventType::TransferCreated),
                    (Some(b), T::Received) if b.status == T::InTransit => Some(EventType::TransferReceived),
                    (Some(b), T::Cancelled) if b.status == T::InTransit => Some(EventType::TransferCancelled),
                    _ => None,
                }
            }
            Self::Waitlist(c) => {
                use super::waitlist::WaitlistStatus as W;
                match (&c.before, c.after.status) {
                    (None, _) => Some(EventType::WaitlistJoined),
                    (Some(b), W::Offered) if b.status == W::Waiting => Some(EventType::WaitlistOffered),
                    (Some(b), W::Left) if b.status == W::Waiting => Some(EventType::WaitlistLeft),
                    (Some(b), W::Expired) if b.status == W::Waiting => Some(EventType::WaitlistExpired),
                    _ => None,
                }
            }
        }
    }

    pub fn sequence(&self) -> u64 {
        match self {
            Self::Product(c) => c.sequence,
            Self::Reservation(c) => c.sequence,
            Self::Order(c) => c.sequence,
            Self::Transfer(c) => c.sequence,
            Self::Waitlist(c) => c.sequence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_crossing_of_a_warehouses_available_is_one_event_and_other_moves_none() {
        use EventType::*;
        let t = Some(5);
        assert_eq!(crossing(6, 5, t, false), Some(StockLow), "to the threshold");
        assert_eq!(crossing(9, 1, t, false), Some(StockLow), "past it, above 0");
        assert_eq!(crossing(5, 4, t, false), None, "already low");
        assert_eq!(crossing(6, 0, t, false), Some(OutOfStock), "straight to 0: only out of stock");
        assert_eq!(crossing(1, 0, None, false), Some(OutOfStock), "whatever the threshold");
        assert_eq!(crossing(2, -1, None, false), Some(OutOfStock), "a count under held units");
        assert_eq!(crossing(0, 3, t, false), Some(BackInStock), "up from 0, still low");
        assert_eq!(crossing(-1, 0, t, false), None, "still nothing available");
        assert_eq!(crossing(0, 0, t, false), None);
        assert_eq!(crossing(4, 9, t, false), None, "rising above the threshold is no event");
        assert_eq!(crossing(6, 5, None, false), None, "no threshold, no low stock");
        assert_eq!(crossing(0, 0, Some(0), false), None);
        assert_eq!(crossing(1, 0, Some(0), false), Some(OutOfStock), "threshold 0: out of stock only");
        assert_eq!(crossing(0, 10, t, true), None, "a warehouse's first stock");
    }

    fn moved(reason: Reason, change: (i64, i64), after: (i64, i64)) -> Movement {
        Movement {
            id: "m".into(),
            product_id: "p".into(),
            warehouse_id: "w".into(),
            bucket: 0,
            seq: 1,
            at: chrono::DateTime::UNIX_EPOCH,
            reason,
            reference: None,
            actor: "a".into(),
            note: None,
            on_hand_change: change.0,
            reserved_change: change.1,
            on_hand: after.0,
            reserved: after.1,
            available: after.0 - after.1,
        }
    }

    #[test]
    fn a_write_is_judged_from_before_its_first_movement_to_after_its_last_opening_aside() {
        use EventType::*;
        let t = Some(3);
        let sale = moved(Reason::Sale, (-1, -1), (4, 0));
        assert_eq!(write_crossing(&[sale], t, false), None, "a sale leaves available as it was");
        let hold = moved(Reason::Hold, (0, 2), (5, 2));
        assert_eq!(write_crossing(std::slice::from_ref(&hold), t, false), Some((StockLow, 5)), "5 to 3");
        let gap = moved(Reason::Unknown, (0, 1), (5, 1));
        let own = moved(Reason::Hold, (0, 4), (5, 5));
        assert_eq!(
            write_crossing(&[gap, own], t, false),
            Some((OutOfStock, 5)),
            "5 to 0 over the gap: one step"
        );
        let opening = moved(Reason::Opening, (5, 0), (5, 0));
        assert_eq!(
            write_crossing(&[opening.clone(), hold], t, false),
            Some((StockLow, 5)),
            "from the opened level"
        );
        assert_eq!(write_crossing(&[opening], t, false), None, "only an opening: nothing changed");
        assert_eq!(write_crossing(&[], t, false), None);
        let created = moved(Reason::Received, (2, 0), (2, 0));
        assert_eq!(write_crossing(&[created], t, true), None, "the row's first write");
    }

    fn outgoing(detail_len: usize) -> Outgoing {
        Outgoing {
            event_id: "e".into(),
            kind: EventType::StockChanged,
            time: chrono::Utc::now(),
            detail: "x".repeat(detail_len),
        }
    }

    #[test]
    fn bus_requests_hold_ten_events_within_256_kib_in_order_and_set_apart_what_fits_none() {
        let small: Vec<(usize, Outgoing)> = (0..23).map(|i| (i, outgoing(10))).collect();
        let (requests, apart) = bus_requests(small);
        assert_eq!(requests.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 3]);
        assert!(apart.is_empty());
        assert_eq!(
            requests.concat().iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            (0..23).collect::<Vec<_>>()
        );
        // 100 KiB each: two fit in one request, a third would pass 256 KiB.
        let big: Vec<(usize, Outgoing)> =
            (0..3).map(|i| (i, outgoing(100 * 1024))).chain([(3, outgoing(BUS_REQUEST_BYTES))]).collect();
        let (requests, apart) = bus_requests(big);
        assert_eq!(requests.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);
        assert_eq!(apart.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [3]);
        assert!(requests.iter().all(|r| r.iter().map(|(_, e)| e.size()).sum::<usize>() <= BUS_REQUEST_BYTES));
    }

    #[test]
    fn every_type_parses_back_and_names_its_entity() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
            assert!(ENTITY_TYPES.contains(&t.entity_type()));
        }
        assert_eq!(EventType::ALL.len(), 21);
        assert_eq!(EventType::parse("stockchanged"), None);
    }
}
