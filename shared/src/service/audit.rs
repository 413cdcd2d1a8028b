//! The audit log: writing entries (the audit function) and reading an entity's history
//! (admins only).

use super::products::Page;
use super::App;
use crate::domain::audit::{AuditEntry, EntityType};
use crate::domain::caller::Caller;
use crate::domain::ids::{EntityId, Id};
use crate::domain::{DomainError, FieldError};
use std::collections::BTreeMap;

/// A validated `GET /api/audit` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub entity_type: EntityType,
    pub entity_id: EntityId,
}

pub const AUDIT_PARAMS: &[&str] = &["entity_type", "entity_id", "limit", "cursor"];

impl AuditQuery {
    /// Both filters are required.
    pub fn from_params(p: &BTreeMap<String, String>) -> Result<Self, DomainError> {
        let mut errors = Vec::new();
        let entity_type = match p.get("entity_type").map(String::as_str) {
            None => {
                errors.push(FieldError::new("entity_type", "is required"));
                None
            }
            Some(t) => EntityType::parse(t).or_else(|| {
                let names: Vec<&str> = EntityType::ALL.iter().map(|e| e.as_str()).collect();
                errors.push(FieldError::new("entity_type", format!("must be one of {}", names.join(", "))));
                None
            }),
        };
        let entity_id = match p.get("entity_id") {
            Some(id) => {
                EntityId::parse(id).map_err(|e| errors.push(FieldError::new("entity_id", e.to_string()))).ok()
            }
            None => {
                errors.push(FieldError::new("entity_id", "is required"));
                None
            }
        };
        match (entity_type, entity_id) {
            (Some(entity_type), Some(entity_id)) if errors.is_empty() => Ok(Self { entity_type, entity_id }),
            _ => Err(DomainError::Validation(errors)),
        }
    }
}

impl App {
    /// One entity's history, oldest first.
    pub async fn list_audit(
        &self,
        caller: &Caller,
        q: AuditQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<AuditEntry>, DomainError> {
        if !caller.is_admin {
            return Err(DomainError::Forbidden);
        }
        let binding = format!("audit\0{}\0{}\0{}", caller.user_id, q.entity_type.as_str(), q.entity_id);
        let after = cursor.map(|c| self.config.cursors.decode(&binding, c)).transpose()?;
        let history = self.store.audit.history(q.entity_type, &q.entity_id, after.as_deref(), limit).await?;
        let next_cursor = match history.entries.last() {
            Some((key, _)) if history.more => Some(self.config.cursors.encode(&binding, key)?),
            _ => None,
        };
        Ok(Page { items: history.entries.into_iter().map(|(_, e)| e).collect(), next_cursor })
    }

    /// Records entries (each with the key that orders it among entries of the same
    /// millisecond), in as few requests as the store allows. Recording an entry again (a
    /// redelivered record) leaves the same entry.
    pub async fn record_audit<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a (AuditEntry, String)>,
    ) -> Result<(), DomainError> {
        Ok(self.store.audit.put_all(entries).await?)
    }
}
