//! Events out under the spread shape (holds over many products, as `bench spread`): how
//! long a change takes to reach a webhook (from the change's `occurred_at`, stamped by the
//! writer, to the receiver's answer), how many `PutEvents` requests the publish function
//! makes per 1,000 events, and what the hold's own path costs with every consumer of the
//! stream running (it must gain no request: events come from the stream). The bus is
//! moto's; the webhook is the local stack's delivery (the feed, one event at a time, in
//! order) to a receiver in this process.

use super::{reserve_units, show, stats};
use serde_json::{json, Value};
use shared::domain::event::Outgoing;
use shared::service::ports::{EventBus, Put};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stockhold_tests::*;

/// The publish function's bus, counting its requests and the events they carried.
#[derive(Debug)]
struct Counted {
    bus: shared::adapters::eventbridge::EventBridgeBus,
    requests: AtomicU64,
    events: AtomicU64,
    /// Per event put: from its change to the request (ms).
    lag: Mutex<Vec<f64>>,
}

impl EventBus for Counted {
    fn put<'a>(&'a self, events: &'a [Outgoing]) -> Put<'a> {
        self.requests.fetch_add(1, SeqCst);
        self.events.fetch_add(events.len() as u64, SeqCst);
        let now = chrono::Utc::now();
        if let Ok(mut lag) = self.lag.lock() {
            lag.extend(
                events.iter().filter_map(|e| Some((now - e.time).num_microseconds()? as f64 / 1000.0)),
            );
        }
        self.bus.put(events)
    }
}

/// Each delivery the receiver took: the event's `occurred_at` and when it came.
type Taken = Arc<Mutex<Vec<(String, chrono::DateTime<chrono::Utc>)>>>;

async fn receiver() -> (String, Taken) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("a port");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let taken: Taken = Arc::default();
    let got = taken.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let got = got.clone();
            async move {
                let now = chrono::Utc::now();
                let e: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let at = e["detail"]["occurred_at"].as_str().unwrap_or_default().to_string();
                got.lock().expect("lock").push((at, now));
                axum::http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (url, taken)
}

/// Waits (bounded, 120 s) until `count()` reaches `n`.
async fn until(n: u64, count: impl Fn() -> u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while count() < n {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

pub async fn events_out(n: usize, products: usize, c: usize) -> Value {
    let Ok(endpoint) = std::env::var("SCHEDULER_ENDPOINT") else {
        println!("events out: skipped (no moto_server: run under `make bench`)");
        return json!({"skipped": "no moto_server"});
    };
    let sdk = shared::config::Config::from_env().expect("config").sdk_config().await;
    let eventbridge = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&sdk).endpoint_url(&endpoint).build(),
    );
    let bus_name = unique("bench-bus");
    eventbridge.create_event_bus().name(&bus_name).send().await.expect("create bus");
    let (app, config) = app_on_own_table_with(&shared::store::schema::TABLE, |c| {
        c.event_bus_name = Some(bus_name.clone());
        c.eventbridge_endpoint = Some(endpoint.clone());
    })
    .await;
    let bus = Arc::new(Counted {
        bus: config.event_bus(&app, "publish").await.expect("the publish function's bus"),
        requests: AtomicU64::new(0),
        events: AtomicU64::new(0),
        lag: Mutex::default(),
    });
    let stream_side = app_beside(&app).await;
    start_audit_poller(&stream_side).await;
    let platform = || gateway::stream::Platform::connect(&config);
    gateway::stream::spawn_publisher(stream_side.clone(), platform().await, bus.clone())
        .expect("the publish function is in the template");
    let (url, taken) = receiver().await;
    let webhook = gateway::webhook::Webhook {
        url,
        api_key: Some("bench".into()),
        retry: gateway::webhook::WEBHOOK_RETRY,
    };
    gateway::webhook::spawn_webhook(&stream_side, platform().await, webhook).expect("webhook");
    let gw = gateway_for(app.clone()).await;
    let mut ids = Vec::new();
    for _ in 0..products {
        ids.push(gw.product(json!({ "main": n })).await);
    }
    // Each product: ProductCreated and its first StockChanged.
    let setup = 2 * products as u64;
    let delivered = || taken.lock().expect("lock").len() as u64;
    until(setup, &delivered).await;
    until(setup, || bus.events.load(SeqCst)).await;
    let (skip, puts0, put_events0) =
        (delivered() as usize, bus.requests.load(SeqCst), bus.events.load(SeqCst));
    let request0 = gw.app.store.metrics().snapshot();
    let lag0 = bus.lag.lock().expect("lock").len();

    let run = ulid::Ulid::new().to_string();
    let started = Instant::now();
    let results =
        reserve_units(&gw, n, c, |i| (format!("events-{run}-{i}"), ids[i % products].clone())).await;
    let wall = started.elapsed().as_secs_f64();
    let request_path = gw.app.store.metrics().snapshot() - request0;
    let ok = results.iter().filter(|r| r.0 == 201).count() as u64;
    // Each hold: ReservationCreated and StockChanged.
    let expected = 2 * ok;
    let all_hooked = until(skip as u64 + expected, &delivered).await;
    let hooked_after = started.elapsed().as_secs_f64();
    let all_put = until(put_events0 + expected, || bus.events.load(SeqCst)).await;
    let (puts, put_events) = (bus.requests.load(SeqCst) - puts0, bus.events.load(SeqCst) - put_events0);
    let latencies: Vec<f64> = taken.lock().expect("lock")[skip..]
        .iter()
        .filter_map(|(at, came)| {
            let at = chrono::DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&chrono::Utc);
            Some((*came - at).num_microseconds()? as f64 / 1000.0)
        })
        .collect();
    let latency = stats(latencies);
    let to_bus = stats(bus.lag.lock().expect("lock")[lag0..].to_vec());
    let per_hold = request_path.requests as f64 / ok.max(1) as f64;
    let per_thousand = puts as f64 * 1000.0 / put_events.max(1) as f64;
    println!(
        "events out: {n} holds over {products} products, concurrency {c} ({ok} ok, {:.0}/s): {expected} events; at the webhook after {hooked_after:.1} s{}",
        n as f64 / wall,
        if all_hooked && all_put { "" } else { " (NOT ALL ARRIVED within 120 s)" }
    );
    println!("  change to webhook (occurred_at to the receiver): {}", show(&latency));
    println!("  change to PutEvents (occurred_at to the publish function's request): {}", show(&to_bus));
    println!(
        "  PutEvents: {puts} requests for {put_events} events, {per_thousand:.0} per 1,000 events; hold path {per_hold:.2} DynamoDB requests per hold"
    );
    json!({
        "holds": n, "products": products, "concurrency": c, "ok": ok, "events": expected,
        "all_arrived": all_hooked && all_put, "webhook_complete_after_s": hooked_after,
        "change_to_webhook": latency, "change_to_put_events": to_bus,
        "put_events": {"requests": puts, "events": put_events, "per_1000_events": per_thousand},
        "hold_path_requests_per_hold": per_hold,
    })
}
