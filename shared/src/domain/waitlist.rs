//! Waitlists: a buyer refused a hold queues for it at one warehouse of a product, first
//! come first served. A waiting entry holds a place against the hold cap and the
//! purchase limit as a hold does, and its units are kept from other buyers (`waiting` on
//! the stock row); when the whole quantity of the first entry is there, it becomes an
//! ordinary hold of its user (`offered`). An entry waits at most `WAITLIST_TTL_SECONDS`.
//!
//! The state machine: `waiting -> offered | left | expired`, nothing out of the other
//! three. Waiting past `expires_at` reads as `expired` before any job writes it (as holds
//! expire lazily), and no longer counts for anything once the expiry is written.

use super::reservation::MAX_RESERVATION_QUANTITY;
use super::stock::{StockLevel, WarehouseId};
use super::validate::{int_in, string, Fields};
use super::DomainError;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Who makes offers and expiries: the actor of an offered hold and of the jobs' writes.
pub const SYSTEM_ACTOR: &str = "system";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WaitlistStatus {
    Waiting,
    /// Turned into a hold of its user (`reservation_id`).
    Offered,
    /// Its user (or an admin) took it off the list.
    Left,
    /// It waited `WAITLIST_TTL_SECONDS` without an offer.
    Expired,
}

impl WaitlistStatus {
    pub const ALL: [WaitlistStatus; 4] = [Self::Waiting, Self::Offered, Self::Left, Self::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Offered => "offered",
            Self::Left => "left",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// A validated `POST /api/products/{id}/waitlist` body (the product comes from the path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub quantity: i64,
    /// `None`: the product's only warehouse (422 when it has several).
    pub warehouse_id: Option<WarehouseId>,
}

impl NewEntry {
    /// `quantity` as for a hold (an entry becomes one).
    pub fn from_json(obj: &Map<String, Value>) -> Result<Self, DomainError> {
        let mut f = Fields::new(obj);
        let quantity = f.required("quantity", |v| int_in(v, 1, MAX_RESERVATION_QUANTITY));
        let warehouse_id = f.optional("warehouse_id", |v| WarehouseId::parse(string(v)?));
        f.finish(|| Some(Self { quantity: quantity?, warehouse_id }))
    }

    /// The warehouse the entry waits at: the named one, which the product must have
    /// (404), or its only one (422 when it has several, naming `warehouse_id`).
    pub fn warehouse<'a>(&'a self, stock: &'a [StockLevel]) -> Result<&'a StockLevel, DomainError> {
        match &self.warehouse_id {
            Some(w) => stock.iter().find(|l| &l.warehouse_id == w).ok_or(DomainError::NotFound("warehouse")),
            None => match stock {
                [only] => Ok(only),
                _ => Err(DomainError::invalid(
                    "warehouse_id",
                    "is required: the product has more than one warehouse",
                )),
            },
        }
    }
}

impl super::fingerprint::Canonical for NewEntry {
    fn canonical(&self) -> Value {
        serde_json::json!({
            "quantity": self.quantity,
            "warehouse_id": self.warehouse_id.as_ref().map(WarehouseId::as_str),
        })
    }
}

/// Joining is for a hold that cannot be filled now: `StockAvailable` with what a hold
/// could take when `level` could fill `quantity` at once.
pub fn may_join(level: &StockLevel, quantity: i64) -> Result<(), DomainError> {
    match level.holdable() {
        available if available >= quantity => Err(DomainError::StockAvailable { available }),
        _ => Ok(()),
    }
}

/// A waitlist entry as stored and returned (its `position` is read apart: it changes
/// with every entry ahead of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub product_id: String,
    pub warehouse_id: WarehouseId,
    pub user_id: String,
    pub quantity: i64,
    /// The stored status; read it through `status_at` to apply lazy expiry.
    pub status: WaitlistStatus,
    /// The hold it became, once offered.
    pub reservation_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Its changes so far (1 when made): the events' `sequence`.
    pub ev: u64,
}

/// What leaving an entry comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leaving {
    /// It was waiting: it leaves (this is the entry after).
    Leave(Entry),
    /// It had left already: a second leave changes nothing and answers the entry.
    Already,
}

impl Entry {
    pub fn status_at(&self, now: DateTime<Utc>) -> WaitlistStatus {
        match self.status {
            WaitlistStatus::Waiting if self.expires_at <= now => WaitlistStatus::Expired,
            s => s,
        }
    }

    /// The entry as read at `now` (lazy expiry applied).
    pub fn as_of(&self, now: DateTime<Utc>) -> Entry {
        Entry { status: self.status_at(now), ..self.clone() }
    }

    /// Leaving at `now`: a waiting entry leaves, a left one stays as it is, an offered or
    /// expired one cannot (`WaitlistEntryNotWaiting` with its status).
    pub fn leave(&self, now: DateTime<Utc>) -> Result<Leaving, DomainError> {
        match self.status_at(now) {
            WaitlistStatus::Waiting => Ok(Leaving::Leave(Entry {
                status: WaitlistStatus::Left,
                updated_at: now,
                ev: self.ev + 1,
                ..self.clone()
            })),
            WaitlistStatus::Left => Ok(Leaving::Already),
            s => Err(DomainError::WaitlistEntryNotWaiting { status: s.as_str() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::stock::Units;
    use serde_json::json;

    fn level(w: &str, available: i64, waiting: i64) -> StockLevel {
        StockLevel {
            warehouse_id: WarehouseId::parse(w).expect("id"),
            units: Units { on_hand: available, reserved: 0, available },
            incoming: 0,
            waiting,
            updated_at: Utc::now(),
        }
    }

    fn entry(status: WaitlistStatus, expires_in: i64) -> Entry {
        let now = Utc::now();
        Entry {
            id: "w".into(),
            product_id: "p".into(),
            warehouse_id: WarehouseId::parse("main").expect("id"),
            user_id: "alice".into(),
            quantity: 2,
            status,
            reservation_id: None,
            created_at: now,
            updated_at: now,
            expires_at: now + chrono::Duration::seconds(expires_in),
            ev: 1,
        }
    }

    #[test]
    fn an_entry_names_a_quantity_and_a_warehouse_only_a_one_warehouse_product_may_leave_out() {
        let parse = |v: Value| NewEntry::from_json(v.as_object().expect("object"));
        let one = parse(json!({"quantity": 2})).expect("valid");
        let stock = [level("main", 0, 0), level("east", 0, 0)];
        assert!(matches!(one.warehouse(&stock[..1]), Ok(l) if l.warehouse_id.as_str() == "main"));
        assert!(matches!(one.warehouse(&stock), Err(DomainError::Validation(_))));
        let east = parse(json!({"quantity": 1, "warehouse_id": "east"})).expect("valid");
        assert!(matches!(east.warehouse(&stock), Ok(l) if l.warehouse_id.as_str() == "east"));
        assert_eq!(east.warehouse(&stock[..1]), Err(DomainError::NotFound("warehouse")));
        for bad in [
            json!({}),
            json!({"quantity": 0}),
            json!({"quantity": 1, "warehouse_id": "Main"}),
            json!({"quantity": 1, "product_id": "p"}),
        ] {
            assert!(matches!(parse(bad.clone()), Err(DomainError::Validation(_))), "{bad}");
        }
    }

    #[test]
    fn joining_is_refused_while_a_hold_could_be_filled_beyond_the_queue() {
        assert_eq!(may_join(&level("main", 3, 0), 3), Err(DomainError::StockAvailable { available: 3 }));
        assert_eq!(may_join(&level("main", 3, 1), 3), Ok(()), "the queue keeps one of the three");
        assert_eq!(may_join(&level("main", 5, 1), 3), Err(DomainError::StockAvailable { available: 4 }));
        assert_eq!(may_join(&level("main", 0, 0), 1), Ok(()));
    }

    #[test]
    fn only_a_waiting_entry_leaves_and_leaving_twice_changes_nothing() {
        let now = Utc::now();
        let waiting = entry(WaitlistStatus::Waiting, 60);
        let Ok(Leaving::Leave(left)) = waiting.leave(now) else { panic!("waiting leaves") };
        assert_eq!((left.status, left.ev), (WaitlistStatus::Left, 2));
        assert_eq!(left.leave(now), Ok(Leaving::Already));
        let offered = entry(WaitlistStatus::Offered, 60);
        assert_eq!(offered.leave(now), Err(DomainError::WaitlistEntryNotWaiting { status: "offered" }));
        let overdue = entry(WaitlistStatus::Waiting, -1);
        assert_eq!(overdue.status_at(now), WaitlistStatus::Expired, "lazily expired");
        assert_eq!(overdue.leave(now), Err(DomainError::WaitlistEntryNotWaiting { status: "expired" }));
        for s in WaitlistStatus::ALL {
            assert_eq!(WaitlistStatus::parse(s.as_str()), Some(s));
        }
    }
}
