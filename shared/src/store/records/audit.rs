//! Audit entries (in the audit table, keyed by entity and time) and the decoding of the
//! application table's stream records they are made from. Entry keys derive from the
//! stream record, so a redelivered record finds its entry already there.

use super::{from_item, to_attrs, Attrs};
use crate::domain::audit::{diff, AuditAction, AuditEntry, EntityType};
use crate::domain::time::{format_time, parse_time};
use crate::store::keys::{is_bookkeeping, SK};
use crate::store::{Item, StoreError};
use aws_lambda_events::event::dynamodb::EventRecord;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

/// The audit key of an entity.
pub fn audit_pk(entity_type: EntityType, entity_id: &str) -> String {
    format!("E#{}#{entity_id}", entity_type.as_str())
}

#[derive(Debug, Serialize, Deserialize)]
struct AuditRecord {
    pk: String,
    sk: String,
    id: String,
    entity_type: String,
    entity_id: String,
    action: String,
    actor: String,
    at: String,
    /// The field changes as a JSON document.
    changes: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    warehouse_id: Option<String>,
}

/// The entry's item. `order_key` (the stream record's sequence number) orders entries of
/// the same millisecond.
pub fn item(e: &AuditEntry, order_key: &str) -> Result<Attrs, StoreError> {
    to_attrs(&AuditRecord {
        pk: audit_pk(e.entity_type, &e.entity_id),
        sk: format!("{}#{order_key}", format_time(e.at)),
        id: e.id.clone(),
        entity_type: e.entity_type.as_str().into(),
        entity_id: e.entity_id.clone(),
        action: e.action.as_str().into(),
        actor: e.actor.clone(),
        at: format_time(e.at),
        changes: serde_json::to_string(&e.changes).map_err(|x| StoreError::Internal(x.to_string()))?,
        warehouse_id: e.warehouse_id.clone(),
    })
}

/// An entry and its position (sort key) in its entity's history.
pub fn entry(i: &Item) -> Result<(String, AuditEntry), StoreError> {
    let r: AuditRecord = from_item(i)?;
    let bad = |what: &str| StoreError::Internal(format!("bad audit {what}"));
    let position = i.s(SK)?.to_string();
    Ok((
        position,
        AuditEntry {
            entity_type: EntityType::parse(&r.entity_type).ok_or_else(|| bad("entity type"))?,
            action: AuditAction::parse(&r.action).ok_or_else(|| bad("action"))?,
            at: parse_time(&r.at).ok_or_else(|| bad("time"))?,
            changes: serde_json::from_str(&r.changes).map_err(|_| bad("changes"))?,
            id: r.id,
            entity_id: r.entity_id,
            warehouse_id: r.warehouse_id,
            actor: r.actor,
        },
    ))
}

/// Where records that can never become an entry are set aside, in the audit table.
pub const SET_ASIDE_PK: &str = "SET_ASIDE#stream";

/// Most bytes of a set-aside record kept (an item holds at most 400 KB).
const SET_ASIDE_BYTES: usize = 300 * 1024;

/// A stream record that can never become an entry, kept for an operator: the record as
/// it came (cut at 300 KB), why, and when. Its key derives from the record alone
/// (sequence number, else event id, else a digest of it), so a redelivery rewrites it.
#[derive(Debug, Clone, Serialize)]
pub struct SetAside {
    pk: String,
    sk: String,
    event_id: Option<String>,
    sequence_number: Option<String>,
    reason: String,
    record: String,
    set_aside_at: String,
}

impl SetAside {
    pub fn new(raw: &Value, reason: &str, now: DateTime<Utc>) -> Self {
        let text = raw.to_string();
        let mut cut = text.len().min(SET_ASIDE_BYTES);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let sequence_number = raw["dynamodb"]["SequenceNumber"].as_str().map(str::to_string);
        let event_id = raw["eventID"].as_str().map(str::to_string);
        let sk = match (&sequence_number, &event_id) {
            (Some(seq), _) if seq.bytes().all(|b| b.is_ascii_digit()) => format!("{seq:0>40}"),
            (Some(seq), _) => seq.clone(),
            (None, Some(id)) => id.clone(),
            (None, None) => crate::domain::fingerprint::fingerprint(raw),
        };
        Self {
            pk: SET_ASIDE_PK.into(),
            sk,
            event_id,
            sequence_number,
            reason: reason.into(),
            record: text[..cut].to_string(),
            set_aside_at: format_time(now),
        }
    }
}

/// The set-aside record's item.
pub fn set_aside_item(r: &SetAside) -> Result<Attrs, StoreError> {
    to_attrs(r)
}

/// A stream record that cannot become an entry (it would fail again on every retry).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("unknown event name {0:?}")]
    EventName(String),
    #[error("record has no event id")]
    NoEventId,
    #[error("image cannot be read: {0}")]
    Image(String),
    #[error("{0} lacks {1}")]
    Missing(&'static str, &'static str),
}

/// An image as a JSON map (empty when the record has none).
pub(crate) fn image(item: &serde_dynamo::Item) -> Result<Map<String, Value>, RecordError> {
    if item.is_empty() {
        return Ok(Map::new());
    }
    match serde_dynamo::from_item::<_, Value>(item.clone()) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(RecordError::Image("not a map".into())),
        Err(e) => Err(RecordError::Image(e.to_string())),
    }
}

/// The entry a record yields and the key that orders it among entries of the same
/// millisecond (the stream sequence number), or `None` for records of items that are not
/// business entities (SKU claims, idempotency records, hold counts).
pub fn entry_from_record(r: &EventRecord) -> Result<Option<(AuditEntry, String)>, RecordError> {
    let action = match r.event_name.as_str() {
        "INSERT" => AuditAction::Created,
        "MODIFY" => AuditAction::Updated,
        "REMOVE" => AuditAction::Deleted,
        other => return Err(RecordError::EventName(other.to_string())),
    };
    let (mut old, mut new) = (image(&r.change.old_image)?, image(&r.change.new_image)?);
    let current = if action == AuditAction::Deleted { &old } else { &new };
    let Some(entity_type) = current.get("entity").and_then(Value::as_str).and_then(EntityType::parse) else {
        return Ok(None);
    };
    if r.event_id.is_empty() {
        return Err(RecordError::NoEventId);
    }
    let field = |name: &'static str| current.get(name).and_then(Value::as_str).map(str::to_string);
    let (entity_id, warehouse_id) = match entity_type {
        EntityType::Stock => (
            field("product_id").ok_or(RecordError::Missing("stock", "product_id"))?,
            Some(field("warehouse_id").ok_or(RecordError::Missing("stock", "warehouse_id"))?),
        ),
        _ => (field("id").ok_or(RecordError::Missing(entity_type.as_str(), "id"))?, None),
    };
    // A deletion is never a user's write here (TTL and operators), hence `system`.
    let actor = if action == AuditAction::Deleted { None } else { field("last_actor") }
        .unwrap_or_else(|| "system".into());
    let written_at = ["updated_at", "created_at"]
        .iter()
        .filter(|_| action != AuditAction::Deleted)
        .find_map(|k| current.get(*k).and_then(Value::as_str).and_then(parse_time));
    let at: DateTime<Utc> = written_at.unwrap_or(r.change.approximate_creation_date_time);
    let order_key = match &r.change.sequence_number {
        Some(seq) if seq.bytes().all(|b| b.is_ascii_digit()) => format!("{seq:0>40}"),
        _ => r.event_id.clone(),
    };
    // The diff shows business fields only.
    old.retain(|k, _| !is_bookkeeping(k));
    new.retain(|k, _| !is_bookkeeping(k));
    let old_ref = (action != AuditAction::Created).then_some(&old);
    let new_ref = (action != AuditAction::Deleted).then_some(&new);
    let changes = diff(old_ref, new_ref);
    // A write that changed bookkeeping only (a row's terms, a product's stock counter) is
    // no business change.
    if action == AuditAction::Updated && changes.is_empty() {
        return Ok(None);
    }
    let entry = AuditEntry {
        id: r.event_id.clone(),
        entity_type,
        entity_id,
        warehouse_id,
        action,
        actor,
        at,
        changes,
    };
    Ok(Some((entry, order_key)))
}
