//! The audit log: entries keyed by entity (`E#<type>#<id>`) and by time, so an entity's
//! history reads oldest first. An entry's key and content derive from its stream record
//! alone, so a redelivered record rewrites the same item: entries are written in batches
//! without conditions.

use super::records::audit::{self as rec, audit_pk};
use super::records::s;
use super::{Repo, StoreError};
use crate::domain::audit::{AuditEntry, EntityType};

/// One page of an entity's history: entries with their positions, and whether more follow.
#[derive(Debug, Clone)]
pub struct History {
    pub entries: Vec<(String, AuditEntry)>,
    pub more: bool,
}

#[derive(Debug, Clone)]
pub struct AuditLog(pub(crate) Repo);

impl AuditLog {
    /// Writes `entries` (each with the key that orders it among entries of the same
    /// millisecond), 25 per request. Writing an entry again rewrites the same item.
    pub async fn put_all<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a (AuditEntry, String)>,
    ) -> Result<(), StoreError> {
        let items = entries
            .into_iter()
            .map(|(e, order_key)| rec::item(e, order_key))
            .collect::<Result<Vec<_>, _>>()?;
        self.0.db.batch_put("put_audit_entries", &self.0.table, items).await
    }

    /// Keeps stream records that can never become an entry (`SET_ASIDE_PK` in the audit
    /// table, one item per record, 25 per request). Writing one again rewrites it.
    pub async fn set_aside<'a>(
        &self,
        records: impl IntoIterator<Item = &'a rec::SetAside>,
    ) -> Result<(), StoreError> {
        let items = records.into_iter().map(rec::set_aside_item).collect::<Result<Vec<_>, _>>()?;
        self.0.db.batch_put("set_aside_stream_records", &self.0.table, items).await
    }

    /// The records set aside so far, oldest first (tests and operators).
    pub async fn set_aside_records(&self) -> Result<Vec<super::Item>, StoreError> {
        let q = self
            .0
            .db
            .query(&self.0.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(rec::SET_ASIDE_PK))
            .consistent_read(true);
        self.0.db.query_all("list_set_aside", q, None).await
    }

    /// Up to `limit` entries of one entity after position `after` (a sort key), oldest
    /// first.
    pub async fn history(
        &self,
        entity_type: EntityType,
        entity_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<History, StoreError> {
        let q = self
            .0
            .db
            .query(&self.0.table)
            .expression_attribute_values(":pk", s(audit_pk(entity_type, entity_id)))
            .limit(i32::try_from(limit + 1).unwrap_or(101))
            .consistent_read(true);
        let q = match after {
            Some(a) => q
                .key_condition_expression("pk = :pk AND sk > :after")
                .expression_attribute_values(":after", s(a)),
            None => q.key_condition_expression("pk = :pk"),
        };
        let page = self.0.db.query_page("list_audit", q, None).await?;
        let mut entries = page.items.iter().map(rec::entry).collect::<Result<Vec<_>, _>>()?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        Ok(History { entries, more })
    }
}
