//! Local stand-in for the Lambda event source mappings on DynamoDB streams: polls every
//! shard of a table's stream (aws-sdk-dynamodbstreams against DynamoDB Local), turns each
//! batch into the exact JSON event Lambda delivers, and hands it to the function the
//! template maps to that stream: the table's to `jobs::handle_batch` (the `audit`
//! function), the audit table's to `jobs::publish_batch` (the `publish` function). Each
//! consumer keeps its position per shard in a table of its own (`<table>-stream-
//! checkpoints`, `<audit table>-stream-checkpoints-publish`; in AWS the event source
//! mapping keeps it), so a restart of `make dev` resumes where it stopped (entries are
//! keyed by stream record, and events carry their `event_id`, so a batch handled twice
//! writes nothing twice and publishes nothing a consumer cannot drop).

use aws_sdk_dynamodbstreams::config::http::HttpResponse;
use aws_sdk_dynamodbstreams::error::SdkError;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine;
use futures::future::BoxFuture;
use serde_json::{json, Map, Value};
use shared::iam::IamError;
use shared::jobs::{handle_batch, publish_batch, DynamoDbEventResponse, StreamEvent, AUDIT_FN, PUBLISH_FN};
use shared::service::ports::EventBus;
use shared::service::App;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// How often an idle stream is polled (entries must appear within 2 s of a change).
const POLL_EVERY: Duration = Duration::from_millis(200);
/// Retries of a failing record when the template names none (Lambda's own default is
/// unbounded; a bound keeps a poisoned record from stopping the local audit for good).
const DEFAULT_RETRIES: u32 = 5;
/// Wait before retrying a failed batch of a function: doubled per attempt of the same
/// record, capped.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const BATCH: i32 = 100;

/// How a consumer retries the record a batch failed on: `retries` times after the first
/// attempt, waiting `first_wait` before the first retry, doubled per retry up to
/// `max_wait`; then the record is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub retries: u32,
    pub first_wait: Duration,
    pub max_wait: Duration,
}

impl Retry {
    /// The wait after the `attempt`-th failed attempt (1-based).
    pub fn wait(&self, attempt: u32) -> Duration {
        self.first_wait.saturating_mul(1 << attempt.saturating_sub(1).min(16)).min(self.max_wait)
    }

    /// The waits between all attempts, in order: how long a record is retried at most.
    pub fn schedule(&self) -> impl Iterator<Item = Duration> + '_ {
        (1..=self.retries).map(|a| self.wait(a))
    }
}

/// What the poller did with failing records, for tests and logs.
#[derive(Debug, Default)]
pub struct PollerStats {
    /// (sequence number, when) of every failed attempt of a record.
    pub failed_attempts: std::sync::Mutex<Vec<(String, std::time::Instant)>>,
    /// Records given up on after every retry (in AWS: sent to the on-failure queue).
    pub skipped: std::sync::Mutex<Vec<String>>,
}

/// The poller's own connections, for the same endpoint and credentials as the store: the
/// platform's calls (finding the stream, reading it, keeping its position), which are not
/// any function's and go through no function's IAM policy.
#[derive(Debug, Clone)]
pub struct Platform {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
}

impl Platform {
    pub async fn connect(config: &shared::config::Config) -> Self {
        let sdk = config.sdk_config().await;
        let mut streams = aws_sdk_dynamodbstreams::config::Builder::from(&sdk);
        streams.set_endpoint_url(config.store.endpoint.clone());
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(&sdk);
        dynamodb.set_endpoint_url(config.store.endpoint.clone());
        Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
            streams: aws_sdk_dynamodbstreams::Client::from_conf(streams.build()),
        }
    }
}

/// Where the poller keeps its position per shard: a small table of its own next to the
/// application table (created on first use).
struct Checkpoints<'a> {
    client: &'a aws_sdk_dynamodb::Client,
    table: String,
}

impl Checkpoints<'_> {
    async fn open<'a>(client: &'a aws_sdk_dynamodb::Client, table: &str) -> Result<Checkpoints<'a>, String> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        let table = table.to_string();
        let created = client
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("shard")
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("shard")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => {}
            Err(e) => return Err(format!("create {table}: {e}")),
        }
        Ok(Checkpoints { client, table })
    }

    /// The last sequence number handled, per shard.
    async fn load(&self) -> Result<HashMap<String, String>, String> {
        let mut out = HashMap::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| format!("read checkpoints: {e}"))?;
            for item in page.items() {
                if let (Some(shard), Some(seq)) = (
                    item.get("shard").and_then(|v| v.as_s().ok()),
                    item.get("sequence_number").and_then(|v| v.as_s().ok()),
                ) {
                    out.insert(shard.clone(), seq.clone());
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    async fn save(&self, shard: &str, sequence_number: &str) -> Result<(), String> {
        use aws_sdk_dynamodb::types::AttributeValue::S;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("shard", S(shard.into()))
            .item("sequence_number", S(sequence_number.into()))
            .send()
            .await
            .map_err(|e| format!("save checkpoint: {e}"))?;
        Ok(())
    }
}

/// What a consumer does with one batch: the function's handler, with its deadline.
pub(crate) type Handler = Arc<dyn Fn(StreamEvent) -> BoxFuture<'static, DynamoDbEventResponse> + Send + Sync>;

/// One event source mapping: the stream it reads, where it keeps its position, and the
/// function it invokes (or, for the webhook, the delivery it plays).
pub(crate) struct Consumer {
    pub(crate) table: String,
    pub(crate) checkpoints: String,
    pub(crate) function: &'static str,
    pub(crate) retry: Retry,
    pub(crate) handle: Handler,
}

/// A running consumer: what it did with failing records, and a way to stop it (a crash
/// of the process, for tests: the next one resumes from the saved position).
pub struct Poller {
    pub stats: Arc<PollerStats>,
    task: tokio::task::AbortHandle,
}

impl Poller {
    pub fn stop(&self) {
        self.task.abort();
    }
}

/// The retries the template gives the stream mapping of `function` (`MaximumRetryAttempts`).
fn retry_of(app: &App, function: &str) -> Result<Retry, IamError> {
    let retries = match app.local_iam() {
        Some(iam) => iam
            .template()
            .function(function)?
            .events
            .iter()
            .find(|e| e.kind == "DynamoDB")
            .and_then(|e| e.maximum_retry_attempts)
            .map_or(DEFAULT_RETRIES, |n| u32::try_from(n).unwrap_or(u32::MAX)),
        None => DEFAULT_RETRIES,
    };
    Ok(Retry { retries, first_wait: FIRST_BACKOFF, max_wait: MAX_BACKOFF })
}

/// Starts polling the stream of `app`'s table on the current runtime. The poller's own
/// calls (finding the stream, its checkpoints) are the platform's; each batch is handled
/// by the `audit` function, held to that function's IAM policy. A batch whose first
/// failing record keeps failing is retried with growing waits, at most as often as the
/// template's `MaximumRetryAttempts` says, counted per record; then that record is skipped.
pub fn spawn_stream_poller(app: App, platform: Platform) -> Result<Poller, IamError> {
    let audit = app.for_function(AUDIT_FN)?;
    let handle: Handler = Arc::new(move |event: StreamEvent| {
        let audit = audit.clone();
        Box::pin(async move { handle_batch(&audit, &event, audit.local_deadline(AUDIT_FN)).await })
    });
    let consumer = Consumer {
        table: app.store.table().to_string(),
        checkpoints: format!("{}-stream-checkpoints", app.store.table()),
        function: AUDIT_FN,
        retry: retry_of(&app, AUDIT_FN)?,
        handle,
    };
    Ok(spawn(platform, consumer))
}

/// Starts polling the audit table's stream for the `publish` function (held to its IAM
/// policy), which puts each event on `bus`; retries as `spawn_stream_poller`'s.
pub fn spawn_publisher(app: App, platform: Platform, bus: Arc<dyn EventBus>) -> Result<Poller, IamError> {
    let publish = app.for_function(PUBLISH_FN)?;
    let handle: Handler = Arc::new(move |event: StreamEvent| {
        let (publish, bus) = (publish.clone(), bus.clone());
        Box::pin(async move {
            publish_batch(&publish, bus.as_ref(), &event, publish.local_deadline(PUBLISH_FN)).await
        })
    });
    let consumer = Consumer {
        table: app.store.audit_table().to_string(),
        checkpoints: format!("{}-stream-checkpoints-publish", app.store.audit_table()),
        function: PUBLISH_FN,
        retry: retry_of(&app, PUBLISH_FN)?,
        handle,
    };
    Ok(spawn(platform, consumer))
}

pub(crate) fn spawn(platform: Platform, consumer: Consumer) -> Poller {
    let stats = Arc::new(PollerStats::default());
    let shared_stats = stats.clone();
    let task = tokio::spawn(async move {
        loop {
            if let Err(e) = poll(&consumer, &platform, &shared_stats).await {
                tracing::warn!(function = consumer.function, error = %e, "stream poller failed; restarting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    Poller { stats, task: task.abort_handle() }
}

struct ShardState {
    iterator: Option<String>,
    last: Option<String>,
    /// The record the last batch failed on first, and its failed attempts so far.
    failing: Option<(String, u32)>,
    /// No read of this shard before then (backing off after a failed batch).
    retry_at: Option<tokio::time::Instant>,
    closed_and_done: bool,
}

async fn poll(consumer: &Consumer, platform: &Platform, stats: &PollerStats) -> Result<(), String> {
    let retries = consumer.retry.retries;
    let streams = &platform.streams;
    let table = platform
        .dynamodb
        .describe_table()
        .table_name(&consumer.table)
        .send()
        .await
        .map_err(|e| format!("describe_table: {e}"))?;
    let arn = table.table.and_then(|t| t.latest_stream_arn).ok_or("the table has no stream")?;
    let mut shards: HashMap<String, ShardState> = HashMap::new();
    let store = Checkpoints::open(&platform.dynamodb, &consumer.checkpoints).await?;
    let checkpoints = store.load().await?;
    loop {
        // New shards appear as DynamoDB rolls them; pick them up every round.
        let mut start = None;
        loop {
            let d = streams
                .describe_stream()
                .stream_arn(&arn)
                .set_exclusive_start_shard_id(start)
                .send()
                .await
                .map_err(|e| format!("describe_stream: {e}"))?;
            let desc = d.stream_description.ok_or("no stream description")?;
            for shard in desc.shards.unwrap_or_default() {
                let Some(id) = shard.shard_id else { continue };
                shards.entry(id.clone()).or_insert_with(|| ShardState {
                    iterator: None,
                    last: checkpoints.get(&id).cloned(),
                    failing: None,
                    retry_at: None,
                    closed_and_done: false,
                });
            }
            start = desc.last_evaluated_shard_id;
            if start.is_none() {
                break;
            }
        }
        let mut busy = false;
        let now = tokio::time::Instant::now();
        for (id, state) in shards.iter_mut().filter(|(_, s)| !s.closed_and_done) {
            if state.retry_at.is_some_and(|at| at > now) {
                continue;
            }
            if state.iterator.is_none() {
                let req = streams.get_shard_iterator().stream_arn(&arn).shard_id(id.as_str());
                let req = match &state.last {
                    Some(seq) => {
                        req.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(seq)
                    }
                    None => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
                };
                state.iterator =
                    req.send().await.map_err(|e| format!("get_shard_iterator: {e}"))?.shard_iterator;
                if state.iterator.is_none() {
                    state.closed_and_done = true;
                    continue;
                }
            }
            let Some(iterator) = state.iterator.clone() else { continue };
            let sent = streams.get_records().shard_iterator(iterator).limit(BATCH).send().await;
            let page = match sent {
                Ok(out) => Page {
                    records: out.records.unwrap_or_default().iter().map(|r| lambda_record(&arn, r)).collect(),
                    next: out.next_shard_iterator,
                },
                // An iterator taken at the horizon of a shard that was still empty can
                // point behind DynamoDB Local's trim point once records arrive: take a
                // new one (from the checkpoint, else the horizon) instead of restarting.
                Err(e) if e.as_service_error().is_some_and(|s| s.is_trimmed_data_access_exception()) => {
                    tracing::debug!(shard = %id, "shard iterator behind the trim point; taking a new one");
                    state.iterator = None;
                    continue;
                }
                // An answer the SDK cannot decode (DynamoDB Local writes an empty map as
                // `{}`, which has no type) is read as the JSON it is, so that the odd record
                // reaches the audit function, which sets it aside, instead of stopping the
                // poller at it for good.
                Err(e) => match raw_page(&arn, &e) {
                    Some(page) => {
                        tracing::warn!(shard = %id, error = %aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e), "GetRecords answer not decodable by the SDK; read as JSON");
                        page
                    }
                    None => {
                        return Err(format!(
                            "get_records: {}",
                            aws_sdk_dynamodbstreams::error::DisplayErrorContext(&e)
                        ))
                    }
                },
            };
            let records = page.records;
            if records.is_empty() {
                state.iterator = page.next;
                state.closed_and_done = state.iterator.is_none();
                continue;
            }
            busy = true;
            let event = StreamEvent { records };
            let response = (consumer.handle)(event.clone()).await;
            let failed: Vec<&str> =
                response.batch_item_failures.iter().filter_map(|f| f.item_identifier.as_deref()).collect();
            let seqs: Vec<&str> =
                event.records.iter().filter_map(|r| r["dynamodb"]["SequenceNumber"].as_str()).collect();
            // Like Lambda: everything before the first failure is done; retry from there,
            // after a wait that grows with that record's failed attempts.
            let first_failed = seqs.iter().position(|s| failed.contains(s));
            state.retry_at = None;
            let done_upto = match first_failed {
                None => {
                    state.failing = None;
                    seqs.len()
                }
                Some(i) => {
                    let seq = seqs[i].to_string();
                    let attempts = match &state.failing {
                        Some((s, n)) if *s == seq => n + 1,
                        _ => 1,
                    };
                    if let Ok(mut log) = stats.failed_attempts.lock() {
                        log.push((seq.clone(), std::time::Instant::now()));
                    }
                    if attempts > retries {
                        tracing::error!(function = consumer.function, sequence_number = %seq, attempts, "skipping a record that kept failing");
                        if let Ok(mut skipped) = stats.skipped.lock() {
                            skipped.push(seq);
                        }
                        state.failing = None;
                        // The records after it in this batch were handled; only it is lost.
                        seqs.len()
                    } else {
                        let wait = consumer.retry.wait(attempts);
                        tracing::warn!(function = consumer.function, sequence_number = %seq, attempts, wait_ms = wait.as_millis() as u64, "batch failed; retrying");
                        state.retry_at = Some(tokio::time::Instant::now() + wait);
                        state.failing = Some((seq, attempts));
                        i
                    }
                }
            };
            if done_upto > 0 {
                let last = seqs[done_upto - 1].to_string();
                store.save(id, &last).await?;
                state.last = Some(last);
            }
            if done_upto < seqs.len() {
                // Re-read from after the last good record.
                state.iterator = None;
            } else {
                state.iterator = page.next;
                state.closed_and_done = state.iterator.is_none();
            }
        }
        if !busy {
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

/// One page of a shard: its records as Lambda's event source mapping would deliver them,
/// and where the next page starts.
struct Page {
    records: Vec<Value>,
    next: Option<String>,
}

/// The page in a `GetRecords` answer the SDK could not decode, read as plain JSON (the
/// wire form of a stream record is the form Lambda delivers, less `eventSourceARN`).
/// `None` when the failure was not an undecodable answer (or it is not JSON either).
fn raw_page<E>(arn: &str, e: &SdkError<E, HttpResponse>) -> Option<Page> {
    // The SDK reports a success it cannot decode as an unhandled service error (status
    // 200) or as a response error, both with the answer attached.
    let raw = match e {
        SdkError::ServiceError(failed) if failed.raw().status().is_success() => failed.raw(),
        SdkError::ResponseError(failed) => failed.raw(),
        _ => return None,
    };
    let body: Value = serde_json::from_slice(raw.body().bytes()?).ok()?;
    let records = body.get("Records")?.as_array()?.iter().map(|r| {
        let mut r = r.clone();
        if let Some(o) = r.as_object_mut() {
            o.insert("eventSourceARN".into(), json!(arn));
        }
        r
    });
    Some(Page { records: records.collect(), next: body["NextShardIterator"].as_str().map(str::to_string) })
}

/// The event Lambda's DynamoDB event source mapping would deliver for `records`.
pub fn lambda_event(stream_arn: &str, records: &[Record]) -> Value {
    json!({ "Records": records.iter().map(|r| lambda_record(stream_arn, r)).collect::<Vec<_>>() })
}

/// One record as Lambda's event source mapping delivers it.
fn lambda_record(stream_arn: &str, r: &Record) -> Value {
    let d = r.dynamodb.as_ref();
    let image = |m: Option<&HashMap<String, AttributeValue>>| m.map(map_json);
    let mut change = Map::new();
    if let Some(t) = d.and_then(|d| d.approximate_creation_date_time) {
        change.insert("ApproximateCreationDateTime".into(), json!(t.as_secs_f64()));
    }
    for (k, v) in [
        ("Keys", image(d.and_then(|d| d.keys.as_ref()))),
        ("NewImage", image(d.and_then(|d| d.new_image.as_ref()))),
        ("OldImage", image(d.and_then(|d| d.old_image.as_ref()))),
    ] {
        if let Some(v) = v {
            change.insert(k.into(), v);
        }
    }
    change.insert("SequenceNumber".into(), json!(d.and_then(|d| d.sequence_number.clone())));
    change.insert("SizeBytes".into(), json!(d.and_then(|d| d.size_bytes).unwrap_or(0)));
    change.insert("StreamViewType".into(), json!("NEW_AND_OLD_IMAGES"));
    json!({
        "eventID": r.event_id,
        "eventName": r.event_name.as_ref().map(|n| n.as_str().to_string()),
        "eventVersion": r.event_version.clone().unwrap_or_else(|| "1.1".into()),
        "eventSource": "aws:dynamodb",
        "awsRegion": r.aws_region.clone().unwrap_or_else(|| "us-east-1".into()),
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    })
}

fn map_json(m: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), attr_json(v))).collect())
}

/// DynamoDB JSON (`{"S": "..."}`, `{"N": "..."}`, ...), as stream events carry it.
fn attr_json(v: &AttributeValue) -> Value {
    let b64 = |b: &aws_sdk_dynamodbstreams::primitives::Blob| {
        base64::engine::general_purpose::STANDARD.encode(b.as_ref())
    };
    match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::M(m) => json!({ "M": map_json(m) }),
        AttributeValue::L(l) => json!({ "L": l.iter().map(attr_json).collect::<Vec<_>>() }),
        AttributeValue::Ss(ss) => json!({ "SS": ss }),
        AttributeValue::Ns(ns) => json!({ "NS": ns }),
        AttributeValue::B(b) => json!({ "B": b64(b) }),
        AttributeValue::Bs(bs) => json!({ "BS": bs.iter().map(b64).collect::<Vec<_>>() }),
        _ => Value::Null,
    }
}
