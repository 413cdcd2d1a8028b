//! The audit table: entries keyed by entity (`E#<type>#<id>`) and by time, so an entity's
//! history reads oldest first. Entry keys derive from the stream record, so a redelivered
//! record finds its entry already there and writes nothing.

use super::keys::{PK, SK};
use super::{classify, s, values, Item, Store, StoreError};
use crate::adapters::clock::format_time;
use crate::domain::audit::{AuditAction, AuditEntry, EntityType};

/// The audit key of an entity.
pub fn audit_pk(entity_type: EntityType, entity_id: &str) -> String {
    format!("E#{}#{entity_id}", entity_type.as_str())
}

impl Store {
    /// Writes one entry unless an entry with its key exists. `order_key` (the stream
    /// record's sequence number) orders entries of the same millisecond. `Ok(false)`: it
    /// was already there (a redelivery).
    pub async fn put_audit_entry(&self, e: &AuditEntry, order_key: &str) -> Result<bool, StoreError> {
        let changes = serde_json::to_string(&e.changes).map_err(|x| StoreError::Internal(x.to_string()))?;
        let mut item = values([
            (PK, s(audit_pk(e.entity_type, &e.entity_id))),
            (SK, s(format!("{}#{order_key}", format_time(e.at)))),
            ("id", s(&e.id)),
            ("entity_type", s(e.entity_type.as_str())),
            ("entity_id", s(&e.entity_id)),
            ("action", s(e.action.as_str())),
            ("actor", s(&e.actor)),
            ("at", s(format_time(e.at))),
            ("changes", s(changes)),
        ]);
        if let Some(w) = &e.warehouse_id {
            item.insert("warehouse_id".into(), s(w));
        }
        let result = self
            .client
            .put_item()
            .table_name(&self.audit_table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.metrics.write(out.consumed_capacity());
                Ok(true)
            }
            Err(err) if err.as_service_error().is_some_and(|x| x.is_conditional_check_failed_exception()) => {
                Ok(false)
            }
            Err(err) => Err(classify("put_audit_entry", err)),
        }
    }

    /// Up to `limit` entries of one entity after position `after` (a sort key), oldest
    /// first, and whether more follow.
    pub async fn list_audit(
        &self,
        entity_type: EntityType,
        entity_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<(String, AuditEntry)>, bool), StoreError> {
        let mut q = self
            .client
            .query()
            .table_name(&self.audit_table)
            .expression_attribute_values(":pk", s(audit_pk(entity_type, entity_id)))
            .limit(i32::try_from(limit + 1).unwrap_or(101))
            .consistent_read(true);
        q = match after {
            Some(a) => q
                .key_condition_expression("pk = :pk AND sk > :after")
                .expression_attribute_values(":after", s(a)),
            None => q.key_condition_expression("pk = :pk"),
        };
        let res = q
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await
            .map_err(|e| classify("list_audit", e))?;
        self.metrics.read(res.consumed_capacity());
        let mut out = Vec::new();
        for raw in res.items.unwrap_or_default() {
            let i = Item(raw);
            let changes =
                serde_json::from_str(i.s("changes")?).map_err(|x| StoreError::Internal(x.to_string()))?;
            out.push((
                i.s(SK)?.to_string(),
                AuditEntry {
                    id: i.s("id")?.to_string(),
                    entity_type: EntityType::parse(i.s("entity_type")?)
                        .ok_or_else(|| StoreError::Internal("bad entity type".into()))?,
                    entity_id: i.s("entity_id")?.to_string(),
                    warehouse_id: i.opt_s("warehouse_id").map(str::to_string),
                    action: AuditAction::parse(i.s("action")?)
                        .ok_or_else(|| StoreError::Internal("bad action".into()))?,
                    actor: i.s("actor")?.to_string(),
                    at: i.time("at")?,
                    changes,
                },
            ));
        }
        let more = out.len() > limit;
        out.truncate(limit);
        Ok((out, more))
    }
}

/// Partition of the stream poller's checkpoints in the audit table (local only).
const CHECKPOINT_PK: &str = "#STREAM-CHECKPOINT";

impl Store {
    /// The local stream poller's position per shard: the last sequence number handled.
    pub async fn stream_checkpoints(&self) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let res = self
            .client
            .query()
            .table_name(&self.audit_table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(CHECKPOINT_PK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("stream_checkpoints", e))?;
        res.items
            .unwrap_or_default()
            .into_iter()
            .map(|raw| {
                let i = Item(raw);
                Ok((i.s(SK)?.to_string(), i.s("sequence_number")?.to_string()))
            })
            .collect()
    }

    pub async fn save_stream_checkpoint(&self, shard: &str, sequence_number: &str) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.audit_table)
            .set_item(Some(values([
                (PK, s(CHECKPOINT_PK)),
                (SK, s(shard)),
                ("sequence_number", s(sequence_number)),
            ])))
            .send()
            .await
            .map_err(|e| classify("save_stream_checkpoint", e))?;
        Ok(())
    }
}
