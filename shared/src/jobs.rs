//! Payloads and entry points of the functions that are not HTTP: the scheduled jobs
//! (`expire`, `sweep`; also run by the local gateway's scheduler) and the `audit`
//! function fed by the table's stream (also run by the local stream poller).

use crate::config::{int_var, ConfigError};
use crate::deadline::run;
use crate::domain::DomainError;
use crate::service::ports::Metric;
use crate::service::{App, ExpireOutcome, SweepReport};
use crate::store::records::audit::entry_from_record;
use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub use aws_lambda_events::event::dynamodb::Event as StreamEvent;

/// The binaries (and template functions) of the jobs and of the stream consumer.
pub const EXPIRE_FN: &str = "expire";
pub const SWEEP_FN: &str = "sweep";
pub const AUDIT_FN: &str = "audit";

/// The sweep schedule's payload: whatever EventBridge Scheduler sends, the sweep needs
/// none of it, so any JSON is accepted.
pub type SweepEvent = serde::de::IgnoredAny;

/// The input of each reservation's schedule (see `adapters::scheduler::expire_input`).
#[derive(Debug, Clone, Deserialize)]
pub struct ExpireEvent {
    pub reservation_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpireResponse {
    pub reservation_id: String,
    pub outcome: ExpireOutcome,
}

/// Runs the expiry of one reservation within the invocation's `deadline`. Errors (storage
/// trouble, no time left) fail the invocation so that EventBridge Scheduler retries it,
/// then sends it to the dead-letter queue.
pub async fn expire(
    app: &App,
    event: ExpireEvent,
    deadline: Option<Instant>,
) -> Result<ExpireResponse, DomainError> {
    // Boxed: the job futures nest deep enough that laying them out inline overflows the
    // compiler's query depth in the job binaries.
    let outcome = run(deadline, Box::pin(app.expire_reservation(&event.reservation_id))).await;
    app.count_store_retries();
    let outcome = outcome??;
    Ok(ExpireResponse { reservation_id: event.reservation_id, outcome })
}

/// `SWEEP_BATCH_PER_SHARD` (default 250, 1..=10000): how many overdue holds one sweep
/// run ends per index shard. A run that stops at the limit says `more`; the next run
/// (a minute later) continues.
pub fn sweep_batch_from_env() -> Result<usize, ConfigError> {
    Ok(usize::try_from(int_var("SWEEP_BATCH_PER_SHARD", 250, 1, 10_000)?).unwrap_or(250))
}

/// One sweep run within the invocation's `deadline`: it starts no hold it could not
/// finish before it, and says `more` for those it left.
pub async fn sweep(
    app: &App,
    per_shard: usize,
    deadline: Option<Instant>,
) -> Result<SweepReport, DomainError> {
    let report = run(deadline, Box::pin(app.sweep(per_shard))).await;
    app.count_store_retries();
    report?
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

fn failure(r: &EventRecord) -> DynamoDbBatchItemFailure {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = r.change.sequence_number.clone().or_else(|| Some(r.event_id.clone()));
    failure
}

/// Time one entry's write may take; none is started with less than twice this left.
const ENTRY_TIME: std::time::Duration = std::time::Duration::from_millis(200);

async fn write_entries(app: &App, event: &StreamEvent) -> DynamoDbEventResponse {
    let mut failures = Vec::new();
    let mut written = 0;
    for r in &event.records {
        if !crate::deadline::allows(ENTRY_TIME) {
            failures.push(failure(r));
            continue;
        }
        let result = match entry_from_record(r) {
            Ok(None) => Ok(()),
            Ok(Some((entry, order_key))) => {
                let recorded = app.record_audit(&entry, &order_key).await;
                written += u64::from(recorded.is_ok());
                recorded.map(|_| ()).map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = result {
            tracing::warn!(event_id = %r.event_id, sequence_number = ?r.change.sequence_number, error, "audit record failed");
            failures.push(failure(r));
        }
    }
    app.metrics.count(Metric::AuditWritten, written);
    if !failures.is_empty() {
        app.metrics.count(Metric::AuditFailed, failures.len() as u64);
    }
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failures;
    response
}
