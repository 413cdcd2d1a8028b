//! Transfers: units moved from one warehouse of a product to another. They leave the
//! source at once (`transfer_out`), are `incoming` at the destination while in transit,
//! and either join its on-hand units (`receive`: `transfer_in`) or go back to the source
//! (`cancel`: `transfer_cancelled`). The two ends are one state machine whose only moves
//! are out of `in_transit`, so of a receive and a cancel exactly one can apply.

use super::ids::{Id, ProductId};
use super::movement::parse_note;
use super::stock::{WarehouseId, MAX_QUANTITY};
use super::validate::{int_in, string, Fields};
use super::DomainError;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransferStatus {
    InTransit,
    Received,
    Cancelled,
}

impl TransferStatus {
    pub const ALL: [TransferStatus; 3] = [Self::InTransit, Self::Received, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InTransit => "in_transit",
            Self::Received => "received",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// How a transfer in transit ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEnd {
    /// The units join the destination's on-hand units.
    Receive,
    /// The units go back to the source's on-hand units.
    Cancel,
}

impl TransferEnd {
    /// The status the transfer takes.
    pub fn status(self) -> TransferStatus {
        match self {
            Self::Receive => TransferStatus::Received,
            Self::Cancel => TransferStatus::Cancelled,
        }
    }
}

/// A transfer as stored and returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: String,
    pub product_id: String,
    pub from_warehouse_id: WarehouseId,
    pub to_warehouse_id: WarehouseId,
    pub quantity: i64,
    pub status: TransferStatus,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Its changes so far (1 when created): the events' `sequence`.
    pub ev: u64,
}

impl Transfer {
    /// The transfer after `end`, or `TransferNotInTransit` if it already ended.
    pub fn ended(&self, end: TransferEnd, now: DateTime<Utc>) -> Result<Transfer, DomainError> {
        if self.status != TransferStatus::InTransit {
            return Err(DomainError::TransferNotInTransit { status: self.status.as_str() });
        }
        Ok(Transfer { status: end.status(), updated_at: now, ev: self.ev + 1, ..self.clone() })
    }
}

/// A validated `GET /api/transfers` query: a product's transfers or all of them, of one
/// status or every status, newest first either way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferQuery {
    pub product_id: Option<ProductId>,
    pub status: Option<TransferStatus>,
}

pub const TRANSFER_LIST_PARAMS: &[&str] = &["product_id", "status", "limit", "cursor"];

impl TransferQuery {
    /// A malformed `product_id` or an unknown `status` is a 422; a well-formed id of no
    /// product is a filter that matches nothing (an empty list, as a list filter should).
    pub fn from_params(p: &std::collections::BTreeMap<String, String>) -> Result<Self, DomainError> {
        let mut errors = Vec::new();
        let mut q = Self::default();
        if let Some(id) = p.get("product_id") {
            match ProductId::parse(id) {
                Ok(id) => q.product_id = Some(id),
                Err(e) => errors.push(super::FieldError::new("product_id", e.to_string())),
            }
        }
        if let Some(s) = p.get("status") {
            match TransferStatus::parse(s) {
                Some(s) => q.status = Some(s),
                None => errors
                    .push(super::FieldError::new("status", "must be one of in_transit, received, cancelled")),
            }
        }
        if errors.is_empty() {
            Ok(q)
        } else {
            Err(DomainError::Validation(errors))
        }
    }

    /// What a cursor of this list is bound to besides the caller: the filters.
    pub fn binding(&self, user_id: &str) -> String {
        format!(
            "transfers\0{user_id}\0{}\0{}",
            self.product_id.as_ref().map_or("", |p| p.as_str()),
            self.status.map_or("", TransferStatus::as_str)
        )
    }
}

/// A validated `POST /api/transfers` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    pub product_id: ProductId,
    pub from_warehouse_id: WarehouseId,
    pub to_warehouse_id: WarehouseId,
    pub quantity: i64,
    pub note: Option<String>,
}

impl NewTransfer {
    /// `quantity` 1..=1,000,000,000 (a row's most on-hand units); the two warehouses must
    /// differ (422 on `to_warehouse_id`).
    pub fn from_json(obj: &Map<String, Value>) -> Result<Self, DomainError> {
        let mut f = Fields::new(obj);
        f.not_null(&["note"]);
        let product_id =
            f.required("product_id", |v| ProductId::parse(string(v)?).map_err(|e| e.to_string()));
        let from = f.required("from_warehouse_id", |v| WarehouseId::parse(string(v)?));
        let to = f.required("to_warehouse_id", |v| WarehouseId::parse(string(v)?));
        let quantity = f.required("quantity", |v| int_in(v, 1, MAX_QUANTITY));
        let note = f.optional("note", |v| parse_note(string(v)?));
        if let (Some(a), Some(b)) = (&from, &to) {
            if a == b {
                f.error("to_warehouse_id", "must differ from from_warehouse_id");
            }
        }
        f.finish(|| {
            Some(Self {
                product_id: product_id?,
                from_warehouse_id: from?,
                to_warehouse_id: to?,
                quantity: quantity?,
                note,
            })
        })
    }
}

impl super::fingerprint::Canonical for NewTransfer {
    fn canonical(&self) -> Value {
        serde_json::json!({
            "product_id": self.product_id,
            "from_warehouse_id": self.from_warehouse_id.as_str(),
            "to_warehouse_id": self.to_warehouse_id.as_str(),
            "quantity": self.quantity,
            "note": self.note,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<NewTransfer, DomainError> {
        NewTransfer::from_json(v.as_object().expect("object"))
    }

    fn fields(e: DomainError) -> Vec<String> {
        match e {
            DomainError::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_transfer_names_two_different_warehouses_and_a_positive_quantity() {
        let ok = parse(json!({"product_id": "p", "from_warehouse_id": "main", "to_warehouse_id": "east",
                              "quantity": 5, "note": "restock east"}))
        .expect("valid");
        assert_eq!((ok.quantity, ok.note.as_deref()), (5, Some("restock east")));
        let same = parse(json!({"product_id": "p", "from_warehouse_id": "main", "to_warehouse_id": "main",
                                "quantity": 5}));
        assert_eq!(fields(same.expect_err("same warehouse")), ["to_warehouse_id"]);
        let bad = parse(json!({"product_id": "p", "from_warehouse_id": "Main", "to_warehouse_id": "east",
                               "quantity": 0, "note": null, "extra": 1}));
        let mut got = fields(bad.expect_err("bad"));
        got.sort();
        assert_eq!(got, ["extra", "from_warehouse_id", "note", "quantity"]);
        assert!(parse(json!({"from_warehouse_id": "a", "to_warehouse_id": "b", "quantity": 1})).is_err());
    }

    #[test]
    fn a_transfer_list_filters_by_a_well_formed_product_and_a_known_status() {
        let params = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let q =
            TransferQuery::from_params(&params(&[("product_id", "p1"), ("status", "received")])).expect("ok");
        assert_eq!((q.product_id.as_deref(), q.status), (Some("p1"), Some(TransferStatus::Received)));
        assert_eq!(TransferQuery::from_params(&params(&[])).expect("ok"), TransferQuery::default());
        let long = "x".repeat(200);
        let bad = TransferQuery::from_params(&params(&[("product_id", &long), ("status", "lost")]));
        let mut got = fields(bad.expect_err("bad"));
        got.sort();
        assert_eq!(got, ["product_id", "status"]);
        assert_ne!(q.binding("admin"), TransferQuery::default().binding("admin"));
        assert_ne!(q.binding("admin"), q.binding("other"));
    }

    #[test]
    fn only_a_transfer_in_transit_ends_and_it_ends_once() {
        let now = chrono::Utc::now();
        let t = Transfer {
            id: "t".into(),
            product_id: "p".into(),
            from_warehouse_id: WarehouseId::parse("main").expect("id"),
            to_warehouse_id: WarehouseId::parse("east").expect("id"),
            quantity: 2,
            status: TransferStatus::InTransit,
            note: None,
            created_at: now,
            updated_at: now,
            ev: 1,
        };
        let received = t.ended(TransferEnd::Receive, now).expect("in transit");
        assert_eq!((received.status, received.ev), (TransferStatus::Received, 2));
        let not_in_transit = Err(DomainError::TransferNotInTransit { status: "received" });
        assert_eq!(received.ended(TransferEnd::Cancel, now), not_in_transit);
        assert_eq!(received.ended(TransferEnd::Receive, now), not_in_transit);
        let cancelled = t.ended(TransferEnd::Cancel, now).expect("in transit");
        assert_eq!(cancelled.status, TransferStatus::Cancelled);
        for s in TransferStatus::ALL {
            assert_eq!(TransferStatus::parse(s.as_str()), Some(s));
        }
    }
}
