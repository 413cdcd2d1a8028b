//! Orders: the conversion request, the entity, and the status state machine with the
//! role rules of docs/api.md.

use super::ids::{Id, ReservationId};
use super::validate::{string, Fields};
use super::DomainError;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::HashSet;

pub const MAX_RESERVATIONS_PER_ORDER: usize = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Processing,
    Shipped,
    Delivered,
    Cancelled,
    /// Every unit came back: reached only by returns, never by a status change.
    Returned,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 7] = [
        Self::Pending,
        Self::Confirmed,
        Self::Processing,
        Self::Shipped,
        Self::Delivered,
        Self::Cancelled,
        Self::Returned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Processing => "processing",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
            Self::Returned => "returned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The transition table (the original system's): where an order may go from here.
    /// `returned` is in no row: only a return that brings the last unit back makes it.
    pub fn next(self) -> &'static [OrderStatus] {
        use OrderStatus::*;
        match self {
            Pending => &[Confirmed, Cancelled],
            Confirmed => &[Processing, Cancelled],
            Processing => &[Shipped],
            Shipped => &[Delivered],
            Delivered | Cancelled | Returned => &[],
        }
    }

    pub fn can_become(self, to: OrderStatus) -> bool {
        self.next().contains(&to)
    }

    /// The table's targets from here, sorted by name (the 409 body's `allowed`).
    pub fn allowed_names(self) -> Vec<String> {
        let mut names: Vec<String> = self.next().iter().map(|s| s.as_str().to_string()).collect();
        names.sort();
        names
    }
}

/// Why a status change is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionError {
    /// The role may not make this change (an admin might).
    Forbidden,
    /// The table does not allow it from the current status.
    NotAllowed { allowed: Vec<String> },
}

/// Whether the caller may make this change at all, before the order is read: customers
/// may only ever cancel.
pub fn role_may_request(is_admin: bool, to: OrderStatus) -> bool {
    is_admin || to == OrderStatus::Cancelled
}

/// Judges a change against the status the order has now. Admins may make any move the
/// table allows; a customer may only cancel their own order while it is pending. A
/// customer's cancel in another status is forbidden where the table allows it (an admin
/// could) and not allowed otherwise.
pub fn judge(is_admin: bool, from: OrderStatus, to: OrderStatus) -> Result<(), TransitionError> {
    let in_table = from.can_become(to);
    if is_admin {
        return if in_table {
            Ok(())
        } else {
            Err(TransitionError::NotAllowed { allowed: from.allowed_names() })
        };
    }
    if to != OrderStatus::Cancelled {
        return Err(TransitionError::Forbidden);
    }
    match (from, in_table) {
        (OrderStatus::Pending, _) => Ok(()),
        (_, true) => Err(TransitionError::Forbidden),
        (_, false) => Err(TransitionError::NotAllowed { allowed: from.allowed_names() }),
    }
}

/// A validated `POST /api/orders` body: 1..=25 distinct reservation ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub reservation_ids: Vec<ReservationId>,
}

impl NewOrder {
    pub fn from_json(obj: &Map<String, Value>) -> Result<Self, DomainError> {
        let mut f = Fields::new(obj);
        let ids = f.required("reservation_ids", |v| {
            let list = v.as_array().ok_or("must be an array of reservation ids")?;
            if list.is_empty() || list.len() > MAX_RESERVATIONS_PER_ORDER {
                return Err(format!("must hold 1 to {MAX_RESERVATIONS_PER_ORDER} reservation ids"));
            }
            let mut seen = HashSet::new();
            let mut ids = Vec::with_capacity(list.len());
            for item in list {
                let id = string(item).map_err(|_| "every reservation id must be a string".to_string())?;
                let id = ReservationId::parse(id).map_err(|e| format!("every reservation id {e}"))?;
                if !seen.insert(id.clone()) {
                    return Err(format!("reservation id {id} is listed twice"));
                }
                ids.push(id);
            }
            Ok(ids)
        });
        f.finish(|| Some(Self { reservation_ids: ids? }))
    }
}

impl super::fingerprint::Canonical for NewOrder {
    fn canonical(&self) -> Value {
        serde_json::json!({ "reservation_ids": self.reservation_ids })
    }
}

/// A validated `PATCH /api/orders/{id}` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusChange {
    pub status: OrderStatus,
}

impl StatusChange {
    pub fn from_json(obj: &Map<String, Value>) -> Result<Self, DomainError> {
        let mut f = Fields::new(obj);
        let status = f.required("status", |v| {
            let s = string(v)?;
            OrderStatus::parse(s).ok_or_else(|| {
                let names: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
                format!("must be one of {}", names.join(", "))
            })
        });
        f.finish(|| Some(Self { status: status? }))
    }
}

/// One line of an order: a converted reservation with the product's price at order time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderItem {
    pub product_id: String,
    pub sku: String,
    pub name: String,
    pub warehouse_id: String,
    pub reservation_id: String,
    pub quantity: i64,
    /// Units of the line returned so far (`returned_quantity`), never above `quantity`.
    pub returned: i64,
    pub unit_price_cents: i64,
    /// The stock bucket the units were sold from (the reservation's); a cancellation puts
    /// them back there. Internal, not in the API.
    pub bucket: usize,
}

impl OrderItem {
    pub fn line_total_cents(&self) -> i64 {
        self.quantity.saturating_mul(self.unit_price_cents)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub user_id: String,
    pub status: OrderStatus,
    pub currency: String,
    pub items: Vec<OrderItem>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The latest return (what the order's `OrderReturned` event carries). Internal.
    pub last_return: Option<super::order_return::OrderReturn>,
}

impl Order {
    pub fn total_cents(&self) -> i64 {
        self.items.iter().map(OrderItem::line_total_cents).fold(0, i64::saturating_add)
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn the_transition_table_is_the_original_systems() {
        let table: Vec<(OrderStatus, Vec<OrderStatus>)> =
            OrderStatus::ALL.iter().map(|s| (*s, s.next().to_vec())).collect();
        assert_eq!(
            table,
            vec![
                (Pending, vec![Confirmed, Cancelled]),
                (Confirmed, vec![Processing, Cancelled]),
                (Processing, vec![Shipped]),
                (Shipped, vec![Delivered]),
                (Delivered, vec![]),
                (Cancelled, vec![]),
                (Returned, vec![]),
            ]
        );
        assert_eq!(Pending.allowed_names(), ["cancelled", "confirmed"]);
    }

    #[test]
    fn every_pair_for_both_roles_follows_the_contract() {
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                let in_table = from.can_become(to);
                let not_allowed = Err(TransitionError::NotAllowed { allowed: from.allowed_names() });
                let admin = judge(true, from, to);
                assert_eq!(
                    admin,
                    if in_table { Ok(()) } else { not_allowed.clone() },
                    "admin {from:?}->{to:?}"
                );
                let customer = judge(false, from, to);
                let expected = match (from, to) {
                    (Pending, Cancelled) => Ok(()),
                    (_, Cancelled) if in_table => Err(TransitionError::Forbidden),
                    (_, Cancelled) => not_allowed,
                    _ => Err(TransitionError::Forbidden),
                };
                assert_eq!(customer, expected, "customer {from:?}->{to:?}");
                assert_eq!(role_may_request(false, to), to == Cancelled);
            }
        }
    }

    #[test]
    fn an_order_needs_1_to_25_distinct_string_ids() {
        let ok = |v: Value| NewOrder::from_json(v.as_object().unwrap());
        assert!(ok(json!({"reservation_ids": ["a", "b"]})).is_ok());
        let many: Vec<String> = (0..26).map(|i| i.to_string()).collect();
        for bad in [
            json!({"reservation_ids": []}),
            json!({"reservation_ids": many}),
            json!({"reservation_ids": ["a", "a"]}),
            json!({"reservation_ids": [1]}),
            json!({"reservation_ids": [""]}),
            json!({"reservation_ids": "a"}),
            json!({}),
            json!({"reservation_ids": ["a"], "coupon": "x"}),
        ] {
            assert!(matches!(ok(bad.clone()), Err(DomainError::Validation(_))), "{bad}");
        }
    }

    #[test]
    fn unknown_statuses_are_validation_errors() {
        let parse = |v: Value| StatusChange::from_json(v.as_object().unwrap());
        assert_eq!(parse(json!({"status": "shipped"})).unwrap().status, Shipped);
        for bad in [json!({"status": "lost"}), json!({"status": 1}), json!({}), json!({"status": "Shipped"})]
        {
            assert!(matches!(parse(bad.clone()), Err(DomainError::Validation(_))), "{bad}");
        }
    }
}
