//! Events out on the bus: the `publish` function puts every event of the replay feed on
//! an EventBridge bus (moto's), where a shop's rule gets each with its `detail` as the
//! feed has it; a request the bus refuses in part is put again, and a batch delivered
//! again (a crash before the stream position was saved) publishes the same `event_id`s.
//! The local webhook delivery gets each event with the same envelope, keeps trying while
//! its receiver is down, and resumes after a restart.

use serde_json::{json, Value};
use shared::adapters::clock::ManualClock;
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

/// A webhook receiver on a loopback port of its own: every request it is sent (its
/// headers and body, and whether it took it), answering `status`; not listening at all
/// until `listen` (a refused connection) and again after `hang_up`.
struct Receiver {
    port: u16,
    status: Arc<std::sync::atomic::AtomicU16>,
    got: Arc<Mutex<Vec<Delivery>>>,
    server: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[derive(Debug, Clone)]
struct Delivery {
    headers: axum::http::HeaderMap,
    body: Value,
    taken: bool,
}

impl Receiver {
    fn new(status: u16) -> Self {
        Self {
            port: free_port(),
            status: Arc::new(status.into()),
            got: Arc::default(),
            server: Mutex::default(),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/stockhold", self.port)
    }

    fn answer(&self, status: u16) {
        self.status.store(status, std::sync::atomic::Ordering::SeqCst);
    }

    async fn listen(&self) {
        let listener =
            tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.expect("the receiver's port");
        let (status, got) = (self.status.clone(), self.got.clone());
        let app = axum::Router::new().route(
            "/hooks/stockhold",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (status, got) = (status.clone(), got.clone());
                async move {
                    let code = status.load(std::sync::atomic::Ordering::SeqCst);
                    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    got.lock().expect("lock").push(Delivery { headers, body, taken: code < 300 });
                    axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::OK)
                }
            }),
        );
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        *self.server.lock().expect("lock") = Some(server);
    }

    /// The deliveries so far.
    fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().expect("lock").clone()
    }

    /// The deliveries it took, waiting (bounded, `within`) until there are `n`, then a
    /// moment (twice the local poll) to see that nothing else comes.
    async fn taken(&self, n: usize, within: std::time::Duration) -> Vec<Delivery> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let taken: Vec<Delivery> = self.deliveries().into_iter().filter(|d| d.taken).collect();
            if taken.len() >= n || std::time::Instant::now() > deadline {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                return self.deliveries().into_iter().filter(|d| d.taken).collect();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(server) = self.server.lock().ok().and_then(|mut s| s.take()) {
            server.abort();
        }
    }
}

/// The local webhook delivery to `receiver`, as `make dev` starts it for `WEBHOOK_URL`,
/// with waits of at most `max_wait` between attempts.
async fn start_webhook(
    app: &shared::service::App,
    config: &shared::config::Config,
    receiver: &Receiver,
    max_wait: std::time::Duration,
) -> gateway::stream::Poller {
    let mut retry = gateway::webhook::WEBHOOK_RETRY;
    retry.first_wait = retry.first_wait.min(max_wait);
    retry.max_wait = max_wait;
    let webhook =
        gateway::webhook::Webhook { url: receiver.url(), api_key: Some("shop-secret".into()), retry };
    gateway::webhook::spawn_webhook(app, gateway::stream::Platform::connect(config).await, webhook)
        .expect("webhook")
}

/// Every kind of event there is so far: a product (threshold 1) created and renamed, a
/// hold of 2 of its 3 (low), extended and released, a hold turned into an order, the
/// order confirmed, a hold of the last 2 (out of stock) that expires (back in stock).
/// 21 events.
async fn every_kind(gw: &TestGateway, clock: &ManualClock) -> usize {
    let admin = token("admin-1", true);
    let alice = token("alice", false);
    let body = json!({"sku": unique("ALL"), "name": "Every kind", "price_cents": 100,
                      "stock": {"main": 3}, "low_stock_threshold": 1});
    let created = gw.post("/api/products", Some(&admin), body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let product = created.body["id"].as_str().expect("id").to_string();
    let path = format!("/api/products/{product}");
    let renamed = gw.send("PATCH", &path, Some(&admin), Some(json!({"name": "Renamed"}))).await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let r1 = gw.reserve(&alice, &product, 2).await;
    clock.advance(chrono::Duration::seconds(60));
    let extended = gw.send("POST", &format!("/api/reservations/{r1}/extend"), Some(&alice), None).await;
    assert_eq!(extended.status, 200, "{}", extended.body);
    assert_eq!(gw.send("DELETE", &format!("/api/reservations/{r1}"), Some(&alice), None).await.status, 200);
    let r2 = gw.reserve(&alice, &product, 1).await;
    let order = gw.order(&alice, &[&r2]).await;
    assert_eq!(order.status, 201, "{}", order.body);
    let order_id = order.body["id"].as_str().expect("order id");
    assert_eq!(gw.set_status(&admin, order_id, "confirmed").await.status, 200);
    let r3 = gw.reserve(&alice, &product, 2).await;
    clock.advance(chrono::Duration::seconds(601));
    assert_eq!(
        as_function(&gw.app, "expire").expire_reservation(&r3).await,
        Ok(shared::service::ExpireOutcome::Expired)
    );
    21
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_event_reaches_the_webhook_and_a_queue_on_the_bus_once_with_the_envelope() {
    let bus = BusToQueue::new().await;
    let (app, config) = app_on_own_table_with(&TABLE, |c| bus.configure(c)).await;
    let clock = ManualClock::new(chrono::Utc::now());
    let app = with_clock(app, Arc::new(clock.clone()));
    start_audit_poller(&app).await;
    let publisher = config.event_bus(&app, "publish").await.expect("the publish function's bus");
    gateway::stream::spawn_publisher(
        app.clone(),
        gateway::stream::Platform::connect(&config).await,
        Arc::new(publisher),
    )
    .expect("the publish function is in the template");
    let receiver = Receiver::new(200);
    receiver.listen().await;
    start_webhook(&app, &config, &receiver, std::time::Duration::from_secs(1)).await;
    let gw = gateway_for(app).await;
    let n = every_kind(&gw, &clock).await;

    let hooked = receiver.taken(n, std::time::Duration::from_secs(20)).await;
    let queued = bus.received(n).await;
    assert_eq!(hooked.len(), n, "each event once at the webhook: {hooked:#?}");
    assert_eq!(queued.len(), n, "each event once in the queue: {queued:#?}");
    let queued_by_id = by_id(&queued, |e| &e["detail"]["event_id"]);
    let mut kinds = BTreeSet::new();
    for d in &hooked {
        assert_eq!(d.headers["x-api-key"], "shop-secret");
        assert_eq!(d.headers["content-type"], "application/json");
        let e = &d.body;
        let id = e["detail"]["event_id"].as_str().expect("event_id");
        let from_bus = &queued_by_id.get(id).unwrap_or_else(|| panic!("{id} never reached the queue"))[0];
        // The webhook's envelope is EventBridge's: the queue's fields and the same detail.
        for field in ["version", "source", "detail-type", "detail", "resources", "region"] {
            assert_eq!(e[field], from_bus[field], "{field}: {e} against {from_bus}");
        }
        assert_eq!(e["source"], "stockhold");
        assert_eq!(e["detail-type"], e["detail"]["type"]);
        assert!(e["id"].as_str().is_some_and(|i| i.len() == 36), "{e}");
        let time = e["time"].as_str().expect("time");
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok() && time.ends_with('Z'), "{time}");
        kinds.insert(e["detail-type"].as_str().unwrap_or_default().to_string());
    }
    let expected: BTreeSet<String> = [
        "ProductCreated",
        "ProductChanged",
        "StockChanged",
        "StockLow",
        "OutOfStock",
        "BackInStock",
        "ReservationCreated",
        "ReservationExtended",
        "ReservationReleased",
        "ReservationExpired",
        "ReservationConverted",
        "OrderCreated",
        "OrderStatusChanged",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(kinds, expected);
}

/// Each entity's sequences in the order they were taken, the threshold events aside
/// (each shares the sequence of the `StockChanged` beside it).
fn sequences_taken(taken: &[Delivery]) -> BTreeMap<(String, String), Vec<u64>> {
    let mut by: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for d in taken {
        let e = &d.body["detail"];
        if ["StockLow", "OutOfStock", "BackInStock"].contains(&e["type"].as_str().unwrap_or_default()) {
            continue;
        }
        let key = (
            e["entity_type"].as_str().unwrap_or_default().into(),
            e["entity_id"].as_str().unwrap_or_default().into(),
        );
        by.entry(key).or_default().push(e["sequence"].as_u64().unwrap_or_default());
    }
    by
}

/// The receiver down for 30 s, first refusing connections, then answering 500, with a
/// restart of the gateway while it refuses: every event arrives once it is back, in each
/// entity's order, none lost; what came more than once came with the same `event_id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_thirty_seconds_and_a_restart_lose_no_event_and_repeat_only_event_ids() {
    let (app, config) = app_on_own_table_with(&TABLE, |_| {}).await;
    let clock = ManualClock::new(chrono::Utc::now());
    let app = with_clock(app, Arc::new(clock.clone()));
    start_audit_poller(&app).await;
    let receiver = Receiver::new(500);
    let max_wait = std::time::Duration::from_secs(2);
    let first = start_webhook(&app, &config, &receiver, max_wait).await;
    let down = std::time::Instant::now();
    let gw = gateway_for(app.clone()).await;
    let n = every_kind(&gw, &clock).await;

    // Refused for 10 s, then the gateway restarts: the new delivery resumes from the
    // saved position (nothing was taken, so from the start).
    tokio::time::sleep(std::time::Duration::from_secs(10).saturating_sub(down.elapsed())).await;
    let refused = first.stats.failed_attempts.lock().expect("lock").len();
    assert!(refused >= 3, "connections refused and retried: {refused}");
    first.stop();
    let second = start_webhook(&app, &config, &receiver, max_wait).await;
    // Listening from 15 s, answering 500 until 30 s.
    tokio::time::sleep(std::time::Duration::from_secs(15).saturating_sub(down.elapsed())).await;
    receiver.listen().await;
    tokio::time::sleep(std::time::Duration::from_secs(30).saturating_sub(down.elapsed())).await;
    let answered_500 = receiver.deliveries();
    assert!(answered_500.len() >= 3, "500s retried: {}", answered_500.len());
    assert!(answered_500.iter().all(|d| !d.taken));
    receiver.answer(200);

    // Back up: within one wait, every event.
    let taken = receiver.taken(n, std::time::Duration::from_secs(20)).await;
    let ids: Vec<&str> = taken.iter().filter_map(|d| d.body["detail"]["event_id"].as_str()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), n, "each event taken once: {ids:?}");
    assert_eq!(unique.len(), n);
    clock.advance(chrono::Duration::seconds(10));
    let feed: BTreeSet<String> =
        feed(&gw, n).await.iter().filter_map(|e| e["event_id"].as_str().map(str::to_string)).collect();
    assert_eq!(unique, feed.iter().map(String::as_str).collect(), "none lost");
    // What was refused was these events again, with the same ids.
    for d in &answered_500 {
        let id = d.body["detail"]["event_id"].as_str().unwrap_or_default();
        assert!(unique.contains(id), "{id} was not one of the events");
        let taken_copy = taken.iter().find(|t| t.body["detail"]["event_id"] == id).expect("taken later");
        assert_eq!(d.body["id"], taken_copy.body["id"], "the envelope id is kept across retries");
    }
    for (entity, seqs) in sequences_taken(&taken) {
        let k = seqs.len() as u64;
        assert_eq!(seqs, (1..=k).collect::<Vec<_>>(), "{entity:?} in order");
    }
    assert!(second.stats.skipped.lock().expect("lock").is_empty());
}
