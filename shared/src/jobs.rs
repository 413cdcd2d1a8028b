//! Payloads and entry points of the functions that are not HTTP: the scheduled jobs
//! (`expire`, `sweep`, `reconcile`; also run by the local gateway's scheduler), the `audit`
//! function fed by the table's stream and the `publish` function fed by the audit table's
//! (both also run by the local stream poller).

use crate::config::{int_var, ConfigError};
use crate::deadline::run;
use crate::domain::audit::AuditEntry;
use crate::domain::event::{Changed, FeedEntry};
use crate::domain::ids::{Id, ProductId};
use crate::domain::movement::Observed;
use crate::domain::DomainError;
use crate::service::ports::Metric;
use crate::service::{App, ExpireOutcome, ReconcileReport, ReconcileRun, Recorded, SweepReport};
use crate::store::records::audit::{entry_from_record, SetAside};
use crate::store::records::event::changed_from_record;
use crate::store::records::movement::observed_from_record;
use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::streams::DynamoDbBatchItemFailure;
/// What a stream consumer answers (`ReportBatchItemFailures`): the records to retry.
pub use aws_lambda_events::event::streams::DynamoDbEventResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

/// A DynamoDB stream batch as Lambda's event source mapping delivers it, each record kept
/// as raw JSON until it is decoded on its own (`handle_batch`): a record of any shape,
/// however odd, must not fail the others or the invocation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StreamEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<Value>,
}

/// The binaries (and template functions) of the jobs and of the stream consumer.
pub const EXPIRE_FN: &str = "expire";
pub const SWEEP_FN: &str = "sweep";
pub const AUDIT_FN: &str = "audit";
pub const RECONCILE_FN: &str = "reconcile";
pub const PUBLISH_FN: &str = "publish";

/// The sweep schedule's payload: whatever EventBridge Scheduler sends, the sweep needs
/// none of it, so any JSON is accepted.
pub type SweepEvent = serde::de::IgnoredAny;

/// The input of a schedule (see `adapters::scheduler::expire_input`): the reservations it
/// ends, `reservation_ids`; a schedule made before batches shared one names a single
/// `reservation_id`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExpireEvent {
    #[serde(default)]
    pub reservation_id: Option<String>,
    #[serde(default)]
    pub reservation_ids: Vec<String>,
}

impl ExpireEvent {
    /// The event of a schedule that ends `ids`.
    pub fn of(ids: Vec<String>) -> Self {
        Self { reservation_id: None, reservation_ids: ids }
    }

    fn ids(&self) -> impl Iterator<Item = &String> {
        self.reservation_id.iter().chain(&self.reservation_ids)
    }
}

/// What a run did to each reservation it names, in order.
#[derive(Debug, Clone, Serialize)]
pub struct ExpireResponse {
    pub reservations: Vec<Expired>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Expired {
    pub reservation_id: String,
    pub outcome: ExpireOutcome,
}

/// Runs the expiry of the reservations a schedule names within the invocation's
/// `deadline`, one after another (each is idempotent). Errors (storage trouble, no time
/// left) fail the invocation so that Lambda retries it (its holds already ended find
/// themselves not active), then records it on its on-failure queue.
pub async fn expire(
    app: &App,
    event: ExpireEvent,
    deadline: Option<Instant>,
) -> Result<ExpireResponse, DomainError> {
    let all = async {
        let mut reservations = Vec::new();
        for id in event.ids() {
            let outcome = app.expire_reservation(id).await?;
            reservations.push(Expired { reservation_id: id.clone(), outcome });
        }
        Ok::<_, DomainError>(reservations)
    };
    // Boxed: the job futures nest deep enough that laying them out inline overflows the
    // compiler's query depth in the job binaries.
    let reservations = run(deadline, Box::pin(all)).await;
    app.count_store_retries();
    Ok(ExpireResponse { reservations: reservations?? })
}

/// How the sweep runs.
#[derive(Debug, Clone, Copy)]
pub struct SweepSettings {
    /// How many overdue holds one run ends per index shard (`SWEEP_BATCH_PER_SHARD`,
    /// default 250, 1..=10000). A run that stops at the limit says `more`; the next run
    /// (a minute later) continues.
    pub per_shard: usize,
    /// How long past its end a hold is left to its own schedule before the sweep takes it
    /// (`SWEEP_GRACE_SECONDS`, default 0, 0..=3600). With per-hold schedules the sweep is
    /// only the safety net: a grace keeps it from racing the schedules for every hold of
    /// an expiry storm (each lost race is a failed conditional write, and a write unit).
    pub grace: chrono::Duration,
}

impl SweepSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            per_shard: usize::try_from(int_var("SWEEP_BATCH_PER_SHARD", 250, 1, 10_000)?).unwrap_or(250),
            grace: chrono::Duration::seconds(int_var("SWEEP_GRACE_SECONDS", 0, 0, 3600)?),
        })
    }
}

/// One sweep run within the invocation's `deadline`: it starts no hold it could not
/// finish before it, and says `more` for those it left.
pub async fn sweep(
    app: &App,
    settings: SweepSettings,
    deadline: Option<Instant>,
) -> Result<SweepReport, DomainError> {
    let report = run(deadline, Box::pin(app.sweep(settings.per_shard, settings.grace))).await;
    app.count_store_retries();
    report?
}

/// The reconcile schedule's payload: `{}` checks every product; an operator may start
/// `after` a product id (exclusive) and check at most `limit` products.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReconcileEvent {
    #[serde(default)]
    pub after: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// How the reconciliation runs.
#[derive(Debug, Clone, Copy)]
pub struct ReconcileSettings {
    /// How long a product that disagrees is given before it is checked again
    /// (`RECONCILE_SETTLE_SECONDS`, default 5, 0..=60): longer than a write takes to
    /// reach the ledger and the holds index (2 s on the local stack, under a second in
    /// AWS), so that only a lasting disagreement is reported.
    pub settle: std::time::Duration,
}

impl ReconcileSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let seconds = int_var("RECONCILE_SETTLE_SECONDS", 5, 0, 60)?;
        Ok(Self { settle: std::time::Duration::from_secs(seconds.unsigned_abs()) })
    }
}

/// One reconciliation run within the invocation's `deadline`: it starts no page it could
/// not finish (a page is at most 50 products, and one settle wait), and says `more` with
/// the `last` product checked when it stops early; the next run starts over.
pub async fn reconcile(
    app: &App,
    event: ReconcileEvent,
    settings: ReconcileSettings,
    deadline: Option<Instant>,
) -> Result<ReconcileReport, DomainError> {
    // A page's reads take well under a second; the settle wait is the long part.
    let page_time = settings.settle + std::time::Duration::from_secs(10);
    let stop = deadline.map(|d| d.checked_sub(page_time).unwrap_or_else(Instant::now));
    let run_ = ReconcileRun { after: event.after, limit: event.limit, settle: settings.settle, stop };
    let report = run(deadline, Box::pin(app.reconcile_products(run_))).await;
    app.count_store_retries();
    Ok(report??)
}

/// Writes the entries of a batch. A record that cannot become an entry, now or ever (it
/// does not decode, or its item lacks what an entry needs), is logged, counted
/// (`AuditRecordsSetAside`), set aside in the audit table for an operator
/// (`store::audit::AuditLog::set_aside`) and skipped. Records whose write fails (storage
/// trouble) are reported by sequence number so that only they are retried
/// (`ReportBatchItemFailures`); a redelivered record finds its entry already written and
/// writes nothing.
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

/// The answer that asks for a batch again from `raw` on (what a consumer that must keep
/// order reports when it stops at a record).
pub fn retry_from(raw: &Value) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = vec![failure(raw)];
    response
}

/// The identifier Lambda takes back for a record: its sequence number, else its event id.
fn failure(raw: &Value) -> DynamoDbBatchItemFailure {
    let mut failure = DynamoDbBatchItemFailure::default();
    failure.item_identifier = sequence_number(raw).or_else(|| raw["eventID"].as_str().map(str::to_string));
    failure
}

fn sequence_number(raw: &Value) -> Option<String> {
    raw["dynamodb"]["SequenceNumber"].as_str().map(str::to_string)
}

/// Time one batch write may take; none is started with less than twice this left.
const BATCH_TIME: std::time::Duration = std::time::Duration::from_millis(300);

/// Decodes every record on its own, then writes the entries 25 to a request
/// (`BatchWriteItem`) instead of one request each: an entry's key and content follow from
/// its record, so a record delivered again rewrites the same entry. Records that can
/// never become an entry are set aside in the same way. A record whose batch failed or
/// found no time left is reported for retry.
async fn write_entries(app: &App, event: &StreamEvent) -> DynamoDbEventResponse {
    let mut failures = Vec::new();
    let mut entries = Vec::new();
    let mut set_aside = Vec::new();
    let mut writes = Vec::new();
    let mut changes = Vec::new();
    for raw in &event.records {
        // Decoded once: the record is read as a movement, as an entry and as an event.
        let record = serde_json::from_value::<EventRecord>(raw.clone()).map_err(|e| e.to_string());
        // A stock row's write is also a movement (or several); a record that cannot be
        // read as one is set aside below with its entry, or on its own.
        let observed = record
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|r| observed_from_record(r).map_err(|e| e.to_string()));
        match observed {
            Ok(Some(w)) => writes.push((raw, w)),
            Ok(None) => {}
            Err(reason) => {
                tracing::error!(
                    event_id = raw["eventID"].as_str().unwrap_or("-"),
                    reason,
                    "stock record without a movement: the ledger records the gap as unknown"
                );
            }
        }
        let decoded = record
            .as_ref()
            .map_err(|e| format!("the record does not decode: {e}"))
            .and_then(|r| entry_from_record(r).map_err(|e| e.to_string()));
        match decoded {
            Ok(None) => {}
            Ok(Some(entry)) => {
                // Only a record that is an entry can be an event (same entities, and a
                // change of bookkeeping alone is neither).
                changes.push(record.as_ref().ok().map(|r| changed_from_record(r).map_err(|e| e.to_string())));
                entries.push((raw, entry));
            }
            Err(reason) => {
                tracing::error!(
                    event_id = raw["eventID"].as_str().unwrap_or("-"),
                    sequence_number = sequence_number(raw).as_deref().unwrap_or("-"),
                    reason,
                    "stream record set aside: it can never become an audit entry"
                );
                set_aside.push((raw, SetAside::new(raw, &reason, app.clock.now())));
            }
        }
    }
    let (with_events, alone) = entity_events(app, &entries, changes, &mut failures).await;
    let mut written = in_batches(&alone, &mut failures, "audit batch failed", |batch| async move {
        app.record_audit(batch.iter().map(|(_, e)| *e)).await.map_err(|e| e.to_string())
    })
    .await;
    written +=
        in_batches(&with_events, &mut failures, "audit entries with events failed", |batch| async move {
            let pairs: Vec<_> = batch.iter().map(|(_, (entry, event))| (*entry, event)).collect();
            app.store
                .feed
                .put_with_entries(&pairs, app.clock.now())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await;
    let moved = record_movements(app, &writes, &mut failures, &mut set_aside).await;
    let aside = in_batches(&set_aside, &mut failures, "setting records aside failed", |batch| async move {
        app.store.audit.set_aside(batch.iter().map(|(_, s)| s)).await.map_err(|e| e.to_string())
    })
    .await;
    app.metrics.count(Metric::AuditWritten, written);
    app.metrics.count(Metric::MovementsWritten, moved);
    app.metrics.count(Metric::AuditSetAside, aside);
    if !failures.is_empty() {
        app.metrics.count(Metric::AuditFailed, failures.len() as u64);
    }
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failures;
    response
}

/// The stock events of one write (`App::record_movements`): `StockChanged` per movement,
/// and the threshold event it makes.
pub fn stock_events(
    w: &Observed,
    made: &[crate::domain::movement::Movement],
    settings: Option<&crate::domain::product::StockSettings>,
) -> Vec<FeedEntry> {
    crate::http::events::stock_events(w, made, settings)
}

/// Attempts of a request the bus refused (wholly or in part) within one invocation, and
/// the wait before the first retry (doubled each time); then its records are reported
/// for the event source to retry.
const BUS_ATTEMPTS: u32 = 3;
const BUS_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// The `publish` function: puts the events of a batch of the audit table's stream (feed
/// items, as the template's filter passes them) on the bus, in stream order, 10 to a
/// request. A request's refused events are put again (the same `event_id`, so a consumer
/// that got one twice drops it), a few times with growing waits while the invocation has
/// time, then their records are reported for retry (`ReportBatchItemFailures`); a record
/// that is no event is skipped, and one that can never be published (unreadable, or too
/// large for the bus) is logged and counted (the feed keeps it).
pub async fn publish_batch(
    app: &App,
    bus: &dyn crate::service::ports::EventBus,
    event: &StreamEvent,
    deadline: Option<tokio::time::Instant>,
) -> DynamoDbEventResponse {
    crate::deadline::run(deadline, Box::pin(publish(app, bus, event))).await.unwrap_or_else(|_| {
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = event.records.iter().map(failure).collect();
        response
    })
}

/// Each record of a batch of the audit table's stream with the event it publishes: `None`
/// for records that are no feed item's creation, `Err` (why) for a feed item that does not
/// decode. What the publisher and the local webhook delivery read.
pub fn feed_events(
    event: &StreamEvent,
) -> impl Iterator<Item = (&Value, Result<Option<crate::domain::event::Outgoing>, String>)> {
    use crate::store::records::event::outgoing_from_record;
    event.records.iter().map(|raw| {
        let decoded = serde_json::from_value::<EventRecord>(raw.clone())
            .map_err(|e| format!("the record does not decode: {e}"))
            .and_then(|r| outgoing_from_record(&r).map_err(|e| e.to_string()));
        (raw, decoded)
    })
}

async fn publish(
    app: &App,
    bus: &dyn crate::service::ports::EventBus,
    event: &StreamEvent,
) -> DynamoDbEventResponse {
    use crate::domain::event::bus_requests;
    let mut outgoing = Vec::new();
    let mut aside = 0u64;
    for (raw, decoded) in feed_events(event) {
        match decoded {
            Ok(Some(e)) => outgoing.push((raw, e)),
            Ok(None) => {}
            Err(reason) => {
                aside += 1;
                tracing::error!(
                    sequence_number = sequence_number(raw).as_deref().unwrap_or("-"),
                    reason,
                    "a feed record that can never be published; the replay feed keeps it"
                );
            }
        }
    }
    let (requests, too_large) = bus_requests(outgoing);
    for (raw, e) in &too_large {
        aside += 1;
        tracing::error!(
            sequence_number = sequence_number(raw).as_deref().unwrap_or("-"),
            event_id = e.event_id,
            bytes = e.size(),
            "an event too large for the bus; the replay feed keeps it"
        );
    }
    let (mut published, mut failures) = (0u64, Vec::new());
    for request in requests {
        let mut pending = request;
        let mut wait = BUS_BACKOFF;
        for attempt in 1..=BUS_ATTEMPTS {
            if !crate::deadline::allows(BATCH_TIME + wait) && attempt > 1 {
                break;
            }
            if attempt > 1 {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            let events: Vec<_> = pending.iter().map(|(_, e)| e.clone()).collect();
            let answers = match bus.put(&events).await {
                Ok(answers) => answers,
                Err(error) => {
                    tracing::warn!(%error, events = events.len(), attempt, "putting events failed");
                    continue;
                }
            };
            let mut refused = Vec::new();
            // An event without an answer counts as refused: nothing is dropped unseen.
            let mut answers = answers.into_iter();
            for (raw, e) in pending {
                match answers.next().unwrap_or_else(|| Err("no answer".into())) {
                    Ok(()) => published += 1,
                    Err(error) => {
                        tracing::warn!(event_id = e.event_id, error, attempt, "the bus refused an event");
                        refused.push((raw, e));
                    }
                }
            }
            pending = refused;
            if pending.is_empty() {
                break;
            }
        }
        failures.extend(pending.iter().map(|(raw, _)| failure(raw)));
    }
    app.metrics.count(Metric::EventsPublished, published);
    app.metrics.count(Metric::EventsSetAside, aside);
    if !failures.is_empty() {
        app.metrics.count(Metric::EventsFailed, failures.len() as u64);
    }
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = failures;
    response
}

/// An entry with the event of its change, and an entry alone.
type WithEvent<'a> = (&'a Value, (&'a (AuditEntry, String), FeedEntry));
type Alone<'a> = (&'a Value, &'a (AuditEntry, String));

/// Splits a batch's entries into those whose change is an event (a product's, a
/// reservation's, an order's; written with their event, `Feed::put_with_entries`) and
/// the rest. A product's event carries the product with its stock, read now; a record
/// whose product cannot be read joins `failures` (retried). A record whose entity does
/// not decode is logged and its entry written alone.
async fn entity_events<'a>(
    app: &App,
    entries: &'a [(&'a Value, (AuditEntry, String))],
    changes: Vec<Option<Result<Option<Changed>, String>>>,
    failures: &mut Vec<DynamoDbBatchItemFailure>,
) -> (Vec<WithEvent<'a>>, Vec<Alone<'a>>) {
    let (mut with_events, mut alone) = (Vec::new(), Vec::new());
    for ((raw, entry), changed) in entries.iter().zip(changes) {
        let mut changed = match changed {
            Some(Ok(Some(c))) => c,
            Some(Ok(None)) | None => {
                alone.push((*raw, entry));
                continue;
            }
            Some(Err(reason)) => {
                tracing::error!(
                    event_id = raw["eventID"].as_str().unwrap_or("-"),
                    reason,
                    "an entity's record does not decode: its entry is written without an event"
                );
                alone.push((*raw, entry));
                continue;
            }
        };
        if let Changed::Product(c) = &mut changed {
            if let Ok(id) = ProductId::parse(&c.after.id) {
                match app.get_product(&id).await {
                    Ok(now) => c.after.stock = now.stock,
                    Err(DomainError::NotFound(_)) => {}
                    Err(error) => {
                        tracing::warn!(%error, product_id = c.after.id, "reading a product for its event failed");
                        failures.push(failure(raw));
                        continue;
                    }
                }
            }
        }
        match crate::http::events::entity_event(&entry.0, &changed, &entry.1) {
            Some(e) => with_events.push((*raw, (entry, e))),
            None => alone.push((*raw, entry)),
        }
    }
    (with_events, alone)
}

/// Records the movements of a batch's stock writes (`App::record_movements`); every record
/// of a row whose movements could not be recorded joins `failures`, so the row's writes
/// come again, in order; every record of a row whose ledger head is unreadable joins
/// `set_aside` (a retry cannot mend it; the other rows go on). How many movements were
/// written.
async fn record_movements<'a>(
    app: &App,
    writes: &[(&'a Value, Observed)],
    failures: &mut Vec<DynamoDbBatchItemFailure>,
    set_aside: &mut Vec<(&'a Value, SetAside)>,
) -> u64 {
    if writes.is_empty() {
        return 0;
    }
    let all: Vec<Observed> = writes.iter().map(|(_, w)| w.clone()).collect();
    let recorded = if crate::deadline::allows(BATCH_TIME) {
        app.record_movements(&all, &stock_events).await
    } else {
        Err(crate::store::StoreError::Unavailable)
    };
    let recorded = recorded.unwrap_or_else(|error| {
        tracing::warn!(%error, records = writes.len(), "recording movements failed");
        Recorded { failed: all.iter().map(|w| w.row.clone()).collect(), ..Recorded::default() }
    });
    let known: std::collections::HashSet<Option<String>> =
        failures.iter().map(|f| f.item_identifier.clone()).collect();
    for (raw, w) in writes {
        let f = failure(raw);
        if recorded.failed.contains(&w.row) && !known.contains(&f.item_identifier) {
            failures.push(f);
        } else if recorded.set_aside.contains(&w.row)
            && !set_aside.iter().any(|(r, _)| std::ptr::eq(*r, *raw))
        {
            let reason = "the stock row's ledger head does not decode";
            set_aside.push((*raw, SetAside::new(raw, reason, app.clock.now())));
        }
    }
    recorded.written
}

/// Writes `items` (each with the record it came from) 25 to a request with `write`, each
/// request only while the invocation has time for it; the records of a request that
/// failed or found no time left join `failures`. How many were written.
async fn in_batches<'a, T, F, Fut>(
    items: &'a [(&'a Value, T)],
    failures: &mut Vec<DynamoDbBatchItemFailure>,
    what: &'static str,
    write: F,
) -> u64
where
    F: Fn(&'a [(&'a Value, T)]) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut written = 0;
    for batch in items.chunks(crate::store::exec::BATCH_WRITE_ITEMS) {
        let result = if crate::deadline::allows(BATCH_TIME) {
            write(batch).await
        } else {
            Err("no time left in the invocation".to_string())
        };
        match result {
            Ok(()) => written += batch.len() as u64,
            Err(error) => {
                tracing::warn!(records = batch.len(), error, "{what}");
                failures.extend(batch.iter().map(|(r, _)| failure(r)));
            }
        }
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_names_its_reservations_in_either_form_it_was_made_with() {
        let now: ExpireEvent = serde_json::from_str(r#"{"reservation_ids": ["a", "b"]}"#).expect("event");
        assert_eq!(now.ids().collect::<Vec<_>>(), ["a", "b"]);
        let before: ExpireEvent = serde_json::from_str(r#"{"reservation_id": "a"}"#).expect("event");
        assert_eq!(before.ids().collect::<Vec<_>>(), ["a"]);
    }
}
