//! Reservations: the request to hold stock, the entity and its status rules, including
//! lazy expiry (a hold past `expires_at` is expired whether or not a job has run).

use super::ids::{Id, ProductId};
use super::stock::WarehouseId;
use super::validate::{int_in, product_lines, string, Fields};
use super::DomainError;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

pub const MAX_RESERVATION_QUANTITY: i64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReservationStatus {
    Active,
    Released,
    Expired,
    Converted,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Released => "released",
            Self::Expired => "expired",
            Self::Converted => "converted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "released" => Self::Released,
            "expired" => Self::Expired,
            "converted" => Self::Converted,
            _ => return None,
        })
    }
}

/// A validated `POST /api/reservations` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReservation {
    pub product_id: ProductId,
    pub quantity: i64,
    /// `None`: the service picks the warehouse (see `stock::choose_warehouse`).
    pub warehouse_id: Option<WarehouseId>,
}

impl NewReservation {
    pub fn from_json(obj: &Map<String, Value>) -> Result<Self, DomainError> {
        let mut f = Fields::new(obj);
        let product_id =
            f.required("product_id", |v| ProductId::parse(string(v)?).map_err(|e| e.to_string()));
        let quantity = f.required("quantity", |v| int_in(v, 1, MAX_RESERVATION_QUANTITY));
        let warehouse_id = f.optional("warehouse_id", |v| WarehouseId::parse(string(v)?));
        f.finish(|| Some(Self { product_id: product_id?, quantity: quantity?, warehouse_id }))
    }
}

impl super::fingerprint::Canonical for NewReservation {
    fn canonical(&self) -> Value {
        serde_json::json!({
            "product_id": self.product_id,
            "quantity": self.quantity,
            "warehouse_id": self.warehouse_id.as_ref().map(WarehouseId::as_str),
        })
    }
}

/// Most lines in one batch hold: 25 lines of three items each (stock row, reservation,
/// allowance) plus the hold count and an idempotency record fit DynamoDB's 100-item
/// transaction.
pub const MAX_BATCH_LINES: usize = 25;

/// A validated `POST /api/reservations/batch` body: each line a reservation request, no
/// product twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBatch {
    pub lines: Vec<NewReservation>,
}

impl NewBatch {
    pub fn from_json(obj: &Map<String, Value>) -> Result<Self, DomainError> {
        let mut f = Fields::new(obj);
        let mut line_errors = Vec::new();
        let lines = f.required("items", |v| {
            product_lines(
                v,
                MAX_BATCH_LINES,
                "reservation request",
                NewReservation::from_json,
                |l| l.product_id.clone(),
                &mut line_errors,
            )
        });
        for (field, message) in line_errors {
            f.error(&field, message);
        }
        f.finish(|| Some(Self { lines: lines? }))
    }
}

impl super::fingerprint::Canonical for NewBatch {
    fn canonical(&self) -> Value {
        serde_json::json!({ "items": self.lines.iter().map(NewReservation::canonical).collect::<Vec<_>>() })
    }
}

/// A hold of `quantity` units of one product in one warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: String,
    pub user_id: String,
    pub product_id: String,
    pub warehouse_id: WarehouseId,
    pub quantity: i64,
    /// Which of the warehouse's stock buckets holds the units (0 for unbucketed products);
    /// they go back to, or are sold from, that bucket. Internal, not in the API.
    pub bucket: usize,
    /// The stored status; read it through `status_at` to apply lazy expiry.
    pub status: ReservationStatus,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Reservation {
    /// The status a client sees at `now`: an active hold whose time is up is expired.
    pub fn status_at(&self, now: DateTime<Utc>) -> ReservationStatus {
        match self.status {
            ReservationStatus::Active if self.expires_at <= now => ReservationStatus::Expired,
            s => s,
        }
    }

    /// When an extension at `now` would make the hold end: `ttl` from now, but never
    /// past `max_hold` from its creation. `None`: that is not later than it ends already
    /// (the extension limit).
    pub fn extended_expiry(
        &self,
        now: DateTime<Utc>,
        ttl: Duration,
        max_hold: Duration,
    ) -> Option<DateTime<Utc>> {
        let until = (now + ttl).min(self.created_at + max_hold);
        (until > self.expires_at).then_some(until)
    }

    /// The same reservation as a client sees it at `now`.
    pub fn as_seen_at(mut self, now: DateTime<Utc>) -> Self {
        if self.status_at(now) != self.status {
            // The row still says active; its visible change happened at expiry time.
            self.status = ReservationStatus::Expired;
            self.updated_at = self.expires_at;
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extension_gives_a_full_ttl_from_now_but_never_past_the_longest_hold() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z").unwrap().with_timezone(&Utc);
        let (ttl, max) = (Duration::minutes(10), Duration::minutes(30));
        let r = active_hold(t0, t0 + ttl);
        assert_eq!(r.extended_expiry(t0 + Duration::minutes(4), ttl, max), Some(t0 + Duration::minutes(14)));
        assert_eq!(r.extended_expiry(t0 + Duration::minutes(25), ttl, max), Some(t0 + max));
        let at_limit = Reservation { expires_at: t0 + max, ..r.clone() };
        assert_eq!(at_limit.extended_expiry(t0 + Duration::minutes(25), ttl, max), None);
        assert_eq!(r.extended_expiry(t0, ttl, max), None, "no later than it ends already");
    }
    use chrono::Duration;

    /// An active hold of one unit made at `created_at`, ending at `expires_at`.
    fn active_hold(created_at: DateTime<Utc>, expires_at: DateTime<Utc>) -> Reservation {
        Reservation {
            id: "r".into(),
            user_id: "u".into(),
            product_id: "p".into(),
            warehouse_id: WarehouseId::parse("main").unwrap(),
            quantity: 1,
            bucket: 0,
            status: ReservationStatus::Active,
            expires_at,
            created_at,
            updated_at: created_at,
        }
    }

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_hold_past_its_expiry_reads_as_expired_before_any_job_runs() {
        let now = Utc::now();
        let r = active_hold(now - Duration::minutes(10), now);
        assert_eq!(r.status_at(now - Duration::seconds(1)), ReservationStatus::Active);
        assert_eq!(r.status_at(now), ReservationStatus::Expired);
        let seen = r.clone().as_seen_at(now);
        assert_eq!((seen.status, seen.updated_at), (ReservationStatus::Expired, now));
        let released = Reservation { status: ReservationStatus::Released, ..r };
        assert_eq!(released.status_at(now), ReservationStatus::Released);
    }

    #[test]
    fn quantity_must_be_an_integer_from_1_to_10000() {
        for q in [json!(0), json!(10_001), json!(2.5), json!("2"), json!(-1)] {
            let err = NewReservation::from_json(&body(json!({"product_id": "p", "quantity": q})));
            assert!(matches!(err, Err(DomainError::Validation(_))), "{q}");
        }
        let ok = NewReservation::from_json(&body(json!({"product_id": "p", "quantity": 10_000}))).unwrap();
        assert_eq!((ok.quantity, ok.warehouse_id), (10_000, None));
    }

    #[test]
    fn unknown_fields_and_missing_fields_are_all_reported() {
        let Err(DomainError::Validation(errs)) =
            NewReservation::from_json(&body(json!({"qty": 1, "warehouse_id": "Main"})))
        else {
            panic!("expected validation error");
        };
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["product_id", "quantity", "warehouse_id", "qty"]);
    }

    use serde_json::json;
}
