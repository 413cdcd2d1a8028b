//! The audit function's work: each DynamoDB stream record of a business entity becomes
//! one audit entry. Used by the `audit` Lambda (stream event source mapping) and by the
//! local gateway's stream poller, which hands over batches in the same event shape.

use crate::domain::audit::{diff, AuditAction, AuditEntry, EntityType};
use crate::service::App;
use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use thiserror::Error;

pub use aws_lambda_events::event::dynamodb::Event as StreamEvent;

/// The binary (and template function) fed by the stream.
pub const AUDIT_FN: &str = "audit";

/// A record that cannot become an entry (it would fail again on every retry).
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

fn image(item: &serde_dynamo::Item) -> Result<Map<String, Value>, RecordError> {
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
/// business entities (SKU claims, idempotency records).
pub fn entry_from_record(r: &EventRecord) -> Result<Option<(AuditEntry, String)>, RecordError> {
    let action = match r.event_name.as_str() {
        "INSERT" => AuditAction::Created,
        "MODIFY" => AuditAction::Updated,
        "REMOVE" => AuditAction::Deleted,
        other => return Err(RecordError::EventName(other.to_string())),
    };
    let (old, new) = (image(&r.change.old_image)?, image(&r.change.new_image)?);
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
        .find_map(|k| current.get(*k).and_then(Value::as_str).and_then(crate::adapters::clock::parse_time));
    let at: DateTime<Utc> = written_at.unwrap_or(r.change.approximate_creation_date_time);
    let order_key = match &r.change.sequence_number {
        Some(seq) if seq.bytes().all(|b| b.is_ascii_digit()) => format!("{seq:0>40}"),
        _ => r.event_id.clone(),
    };
    let old_ref = (action != AuditAction::Created).then_some(&old);
    let new_ref = (action != AuditAction::Deleted).then_some(&new);
    let entry = AuditEntry {
        id: r.event_id.clone(),
        entity_type,
        entity_id,
        warehouse_id,
        action,
        actor,
        at,
        changes: diff(old_ref, new_ref),
    };
    Ok(Some((entry, order_key)))
}

/// Writes the entries of a batch. Records that fail (unreadable, or storage trouble) are
/// reported by sequence number so that only they are retried (`ReportBatchItemFailures`);
/// a redelivered record finds its entry already written and writes nothing.
///
/// Near the invocation's `deadline` the records not yet written are reported as failures
/// (so they are retried) instead of being cut off mid-write.
pub async fn handle_batch(
    app: &App,
    event: &StreamEvent,
    deadline: Option<tokio::time::Instant>,
) -> DynamoDbEventResponse {
    crate::deadline::run(deadline, Box::pin(write_entries(app, event))).await.unwrap_or_else(|_| {
        // Only reached if a single write outlasted the whole margin: retry everything.
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = event.records.iter().map(failure).collect();
        response
    })
}

fn failure(r: &aws_lambda_events::event::dynamodb::EventRecord) -> DynamoDbBatchItemFailure {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = r.change.sequence_number.clone().or_else(|| Some(r.event_id.clone()));
    failure
}

/// Time one entry's write may take; none is started with less than twice this left.
const ENTRY_TIME: std::time::Duration = std::time::Duration::from_millis(200);

async fn write_entries(app: &App, event: &StreamEvent) -> DynamoDbEventResponse {
    let mut failures = Vec::new();
    for r in &event.records {
        if !crate::deadline::allows(ENTRY_TIME) {
            failures.push(failure(r));
            continue;
        }
        let result = match entry_from_record(r) {
            Ok(None) => Ok(()),
            Ok(Some((entry, order_key))) => {
                app.store.put_audit_entry(&entry, &order_key).await.map(|_| ()).map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = result {
            tracing::warn!(event_id = %r.event_id, sequence_number = ?r.change.sequence_number, error, "audit record failed");
            failures.push(failure(r));
        }
    }
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failures;
    response
}
