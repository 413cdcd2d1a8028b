//! Audit entries: one per change of a business entity, with a field-level diff of its
//! business fields (the store leaves out its own bookkeeping before diffing).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityType {
    Product,
    Stock,
    Reservation,
    Order,
    Transfer,
    WaitlistEntry,
}

impl EntityType {
    pub const ALL: [EntityType; 6] =
        [Self::Product, Self::Stock, Self::Reservation, Self::Order, Self::Transfer, Self::WaitlistEntry];

    /// The entity an item's `entity` attribute names; `None` for items that are not
    /// business entities (SKU claims, idempotency records, ...).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Product => "product",
            Self::Stock => "stock",
            Self::Reservation => "reservation",
            Self::Order => "order",
            Self::Transfer => "transfer",
            Self::WaitlistEntry => "waitlist_entry",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Created,
    Updated,
    Deleted,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Created, Self::Updated, Self::Deleted].into_iter().find(|a| a.as_str() == s)
    }
}

/// One field's change.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct FieldChange {
    pub old: Value,
    pub new: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: String,
    pub entity_type: EntityType,
    pub entity_id: String,
    /// For stock entries: the warehouse of the stock row.
    pub warehouse_id: Option<String>,
    pub action: AuditAction,
    pub actor: String,
    pub at: DateTime<Utc>,
    pub changes: BTreeMap<String, FieldChange>,
}

/// Field-level changes between two images of an entity's business fields (either may be
/// absent). On creation every field appears with `old: null`.
pub fn diff(
    old: Option<&Map<String, Value>>,
    new: Option<&Map<String, Value>>,
) -> BTreeMap<String, FieldChange> {
    let empty = Map::new();
    let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
    old.keys()
        .chain(new.keys())
        .filter_map(|k| {
            let (o, n) =
                (old.get(k).cloned().unwrap_or(Value::Null), new.get(k).cloned().unwrap_or(Value::Null));
            (o != n).then(|| (k.clone(), FieldChange { old: o, new: n }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_creation_lists_every_field_with_old_null() {
        let new = m(json!({"id": "1", "status": "active", "quantity": 2}));
        let d = diff(None, Some(&new));
        assert_eq!(d.keys().collect::<Vec<_>>(), ["id", "quantity", "status"]);
        assert_eq!(d["quantity"], FieldChange { old: Value::Null, new: json!(2) });
    }

    #[test]
    fn an_update_lists_only_what_changed() {
        let old = m(json!({"status": "pending", "total_cents": 5}));
        let new = m(json!({"status": "confirmed", "total_cents": 5}));
        let d = diff(Some(&old), Some(&new));
        assert_eq!(d.len(), 1);
        assert_eq!(d["status"], FieldChange { old: json!("pending"), new: json!("confirmed") });
    }

    #[test]
    fn only_business_entities_are_audited() {
        assert_eq!(EntityType::parse("stock"), Some(EntityType::Stock));
        assert_eq!(EntityType::parse("idempotency"), None);
        assert_eq!(EntityType::parse("sku_claim"), None);
    }
}
