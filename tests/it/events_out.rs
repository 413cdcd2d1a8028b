//! Events out on the bus: the `publish` function puts every event of the replay feed on
//! an EventBridge bus (moto's), where a shop's rule gets each with its `detail` as the
//! feed has it; a request the bus refuses in part is put again, and a batch delivered
//! again (a crash before the stream position was saved) publishes the same `event_id`s.

use serde_json::{json, Value};
use shared::jobs::{publish_batch, StreamEvent};
use shared::service::ports::{EventBus, Put};
use shared::store::schema::TABLE;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use stockhold_tests::*;

/// A bus of this test's own on moto's EventBridge, with a rule that sends every
/// stockhold event to a queue, as a shop's own rule would.
struct BusToQueue {
    bus: String,
    endpoint: String,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl BusToQueue {
    async fn new() -> Self {
        let endpoint = std::env::var("SCHEDULER_ENDPOINT")
            .expect("SCHEDULER_ENDPOINT is not set: run with `make test`, which starts moto_server");
        let sdk = shared::config::Config::from_env().expect("config");
        let sdk = sdk.sdk_config().await;
        let events = aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(&sdk).endpoint_url(&endpoint).build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk).endpoint_url(&endpoint).build(),
        );
        let bus = unique("bus");
        events.create_event_bus().name(&bus).send().await.expect("create bus");
        let queue_url = sqs
            .create_queue()
            .queue_name(unique("events"))
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url");
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue arn")
            .attributes
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
            .expect("QueueArn");
        events
            .put_rule()
            .name("everything")
            .event_bus_name(&bus)
            .event_pattern(r#"{"source": ["stockhold"]}"#)
            .send()
            .await
            .expect("rule");
        events
            .put_targets()
            .rule("everything")
            .event_bus_name(&bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder().id("queue").arn(arn).build().expect("target"),
            )
            .send()
            .await
            .expect("target");
        Self { bus, endpoint, sqs, queue_url }
    }

    /// Points a configuration at this bus.
    fn configure(&self, c: &mut shared::config::Config) {
        c.event_bus_name = Some(self.bus.clone());
        c.eventbridge_endpoint = Some(self.endpoint.clone());
    }

    /// What the rule delivered: the envelopes, waiting (bounded, 20 s) until there are
    /// `n`, then one more empty read to see that nothing else came.
    async fn received(&self, n: usize) -> Vec<Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut got = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() && (got.len() >= n || std::time::Instant::now() > deadline) {
                return got;
            }
            for m in messages {
                got.push(serde_json::from_str(m.body().unwrap_or("null")).expect("an envelope"));
                if let Some(receipt) = m.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(receipt)
                        .send()
                        .await
                        .ok();
                }
            }
        }
    }
}

/// Every event of the feed (from its start), waiting (bounded, 20 s) until there are `n`.
async fn feed(gw: &TestGateway, n: usize) -> Vec<Value> {
    let admin = token("feed-reader", true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/events?limit=100&after={c}"),
                None => "/api/events?limit=100".to_string(),
            };
            let r = gw.get(&path, Some(&admin)).await;
            assert_eq!(r.status, 200, "{}", r.body);
            let items = r.body["items"].as_array().cloned().unwrap_or_default();
            let done = items.is_empty();
            all.extend(items);
            cursor = r.body["next_cursor"].as_str().map(str::to_string);
            if done {
                break;
            }
        }
        if all.len() >= n || std::time::Instant::now() > deadline {
            return all;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// A product, a hold of it and the hold's release: ProductCreated, StockChanged (the
/// first stock, the hold, the release), ReservationCreated, ReservationReleased.
async fn six_events(gw: &TestGateway) {
    let product = gw.product(json!({"main": 5})).await;
    let buyer = token("bus-buyer", false);
    let r = gw.reserve(&buyer, &product, 2).await;
    assert_eq!(gw.send("DELETE", &format!("/api/reservations/{r}"), Some(&buyer), None).await.status, 200);
}

fn by_id(events: &[Value], id: impl Fn(&Value) -> &Value) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in events {
        out.entry(id(e).as_str().unwrap_or_default().to_string()).or_default().push(e.clone());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_a_rule_on_the_bus_once_as_the_feed_has_it() {
    let bus = BusToQueue::new().await;
    let (app, config) = app_on_own_table_with(&TABLE, |c| bus.configure(c)).await;
    start_audit_poller(&app).await;
    let publisher = config.event_bus(&app, "publish").await.expect("the publish function's bus");
    gateway::stream::spawn_publisher(
        app.clone(),
        gateway::stream::Platform::connect(&config).await,
        Arc::new(publisher),
    )
    .expect("the publish function is in the template");
    let gw = gateway_for(app).await;
    six_events(&gw).await;

    let delivered = bus.received(6).await;
    let feed = feed(&gw, 6).await;
    assert_eq!(feed.len(), 6, "{feed:#?}");
    let delivered_by_id = by_id(&delivered, |e| &e["detail"]["event_id"]);
    assert_eq!(delivered.len(), 6, "each event once: {delivered:#?}");
    for (id, from_feed) in by_id(&feed, |e| &e["event_id"]) {
        let envelope = &delivered_by_id.get(&id).unwrap_or_else(|| panic!("{id} never reached the rule"))[0];
        assert_eq!(envelope["detail"], from_feed[0], "the detail is the feed's");
        assert_eq!(envelope["source"], "stockhold");
        assert_eq!(envelope["detail-type"], from_feed[0]["type"]);
        for field in ["version", "id", "time", "region", "resources"] {
            assert!(envelope.get(field).is_some(), "{field} in {envelope}");
        }
    }
}

/// A bus that refuses each event the first time it is put (as EventBridge does under
/// throttling: `FailedEntryCount` with per-entry codes), passing the rest on, and counts
/// the puts; or refuses everything.
#[derive(Debug)]
struct Flaky {
    inner: shared::adapters::eventbridge::EventBridgeBus,
    seen: Mutex<BTreeSet<String>>,
    requests: Mutex<Vec<usize>>,
    refuse_all: bool,
}

impl EventBus for Flaky {
    fn put<'a>(&'a self, events: &'a [shared::domain::event::Outgoing]) -> Put<'a> {
        Box::pin(async move {
            self.requests.lock().expect("lock").push(events.len());
            let first: Vec<bool> =
                events.iter().map(|e| self.seen.lock().expect("lock").insert(e.event_id.clone())).collect();
            let taken: Vec<_> = events
                .iter()
                .zip(&first)
                .filter(|(_, f)| !**f && !self.refuse_all)
                .map(|(e, _)| e.clone())
                .collect();
            let mut answers =
                if taken.is_empty() { Vec::new() } else { self.inner.put(&taken).await? }.into_iter();
            Ok(first
                .iter()
                .map(|f| {
                    if *f || self.refuse_all {
                        Err("ThrottlingException: refused".into())
                    } else {
                        answers.next().unwrap_or(Ok(()))
                    }
                })
                .collect())
        })
    }
}

/// The audit table's stream as Lambda would deliver it to the publish function: every
/// record of every shard, from the start.
async fn audit_table_stream(app: &shared::service::App) -> StreamEvent {
    let c = shared::config::Config::from_env().expect("config");
    let sdk = c.sdk_config().await;
    let endpoint = std::env::var("DYNAMODB_ENDPOINT").expect("DYNAMODB_ENDPOINT");
    let db = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk).endpoint_url(&endpoint).build(),
    );
    let streams = aws_sdk_dynamodbstreams::Client::from_conf(
        aws_sdk_dynamodbstreams::config::Builder::from(&sdk).endpoint_url(&endpoint).build(),
    );
    let arn = db
        .describe_table()
        .table_name(app.store.audit_table())
        .send()
        .await
        .expect("describe")
        .table
        .and_then(|t| t.latest_stream_arn)
        .expect("the audit table has a stream");
    let shards = streams.describe_stream().stream_arn(&arn).send().await.expect("describe stream");
    let mut records = Vec::new();
    for shard in shards.stream_description.and_then(|d| d.shards).unwrap_or_default() {
        let mut it = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id.unwrap_or_default())
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("iterator")
            .shard_iterator;
        while let Some(i) = it {
            let page = streams.get_records().shard_iterator(i).send().await.expect("records");
            let got = page.records.unwrap_or_default();
            if got.is_empty() {
                break;
            }
            records.extend(got);
            it = page.next_shard_iterator;
        }
    }
    serde_json::from_value(gateway::stream::lambda_event(&arn, &records)).expect("a stream event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_events_are_put_again_and_a_batch_delivered_again_repeats_only_event_ids_consumers_drop() {
    let bus = BusToQueue::new().await;
    let (app, config) = app_on_own_table_with(&TABLE, |c| bus.configure(c)).await;
    start_audit_poller(&app).await;
    let gw = gateway_for(app.clone()).await;
    six_events(&gw).await;
    let feed = feed(&gw, 6).await;
    assert_eq!(feed.len(), 6);
    let batch = audit_table_stream(&app).await;
    assert!(batch.records.len() > 6, "entries and feed items alike: {}", batch.records.len());

    let publish = as_function(&app, "publish");
    let flaky = |refuse_all| {
        let config = config.clone();
        let app = app.clone();
        async move {
            Flaky {
                inner: config.event_bus(&app, "publish").await.expect("bus"),
                seen: Mutex::default(),
                requests: Mutex::default(),
                refuse_all,
            }
        }
    };
    // Each event refused once: put again within the invocation, and nothing is retried.
    let once = flaky(false).await;
    let response = publish_batch(&publish, &once, &batch, None).await;
    assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
    assert_eq!(
        *once.requests.lock().expect("lock"),
        [6, 6],
        "one request of the six, then its refused six again"
    );
    let first = bus.received(6).await;
    let ids = |events: &[Value]| -> Vec<String> {
        let mut ids: Vec<String> =
            events.iter().map(|e| e["detail"]["event_id"].as_str().unwrap_or_default().to_string()).collect();
        ids.sort();
        ids
    };
    let mut feed_ids: Vec<String> =
        feed.iter().map(|e| e["event_id"].as_str().unwrap_or_default().to_string()).collect();
    feed_ids.sort();
    assert_eq!(ids(&first), feed_ids, "each event once");

    // The same batch again (the function died after PutEvents, before the stream position
    // moved on): the same events with the same event_ids.
    let again = flaky(false).await;
    assert!(publish_batch(&publish, &again, &batch, None).await.batch_item_failures.is_empty());
    assert_eq!(ids(&bus.received(6).await), feed_ids, "a redelivery repeats event_ids, never new ones");

    // A bus that takes nothing: every feed record is reported for retry, none other.
    let never = flaky(true).await;
    let response = publish_batch(&publish, &never, &batch, None).await;
    let failed: BTreeSet<String> =
        response.batch_item_failures.iter().filter_map(|f| f.item_identifier.clone()).collect();
    let feed_records: BTreeSet<String> = batch
        .records
        .iter()
        .filter(|r| {
            r["eventName"] == "INSERT"
                && r["dynamodb"]["NewImage"]["pk"]["S"].as_str().is_some_and(|pk| pk.starts_with("F#"))
        })
        .filter_map(|r| r["dynamodb"]["SequenceNumber"].as_str().map(str::to_string))
        .collect();
    assert_eq!(failed, feed_records);
    assert_eq!(
        never.requests.lock().expect("lock").len(),
        3,
        "three attempts, then the event source retries"
    );
    assert!(bus.received(0).await.is_empty(), "nothing reached the rule");
}
