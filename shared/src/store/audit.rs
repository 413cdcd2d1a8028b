//! The audit log: entries keyed by entity (`E#<type>#<id>`) and by time, so an entity's
//! history reads oldest first. Entry keys derive from the stream record, so a
//! redelivered record finds its entry already there and writes nothing.

use super::exec::Write;
use super::records::audit::{self as rec, audit_pk};
use super::records::s;
use super::{Repo, StoreError};
use crate::domain::audit::{AuditEntry, EntityType};

/// What writing an entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    Written,
    /// It was already there (a redelivery).
    AlreadyThere,
}

/// One page of an entity's history: entries with their positions, and whether more follow.
#[derive(Debug, Clone)]
pub struct History {
    pub entries: Vec<(String, AuditEntry)>,
    pub more: bool,
}

#[derive(Debug, Clone)]
pub struct AuditLog(pub(crate) Repo);

impl AuditLog {
    /// Writes one entry unless an entry with its key exists.
    pub async fn put(&self, e: &AuditEntry, order_key: &str) -> Result<Recorded, StoreError> {
        let put = self
            .0
            .db
            .put_item(&self.0.table)
            .set_item(Some(rec::item(e, order_key)?))
            .condition_expression("attribute_not_exists(pk)");
        Ok(match self.0.db.put("put_audit_entry", put).await? {
            Write::Applied => Recorded::Written,
            Write::ConditionFailed(_) => Recorded::AlreadyThere,
        })
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
