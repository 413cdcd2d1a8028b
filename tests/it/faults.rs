//! Storage faults that DynamoDB Local cannot produce on demand (throttling, an unreachable
//! endpoint), injected by a proxy between the SDK and DynamoDB Local: the SDK retries with
//! backoff, and a request that still cannot complete is a 503 `unavailable` with
//! `Retry-After` that changed nothing.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use stockhold_tests::{
    app, app_via, free_port, gateway, gateway_for, shop, template_json, token, unique, Reply, TestGateway,
    TEMPLATE_YAML,
};

/// How a planned request fails.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `ThrottlingException`: capacity trouble.
    Throttle,
    /// A cancelled transaction whose every item lost to a concurrent transaction.
    Conflict,
    /// A cancelled transaction whose item at this index failed its condition (no item
    /// returned), the others not checked: a refusal DynamoDB Local gives only for the data
    /// that causes it, here for any item.
    Refuse(usize),
    /// The request reaches DynamoDB only this long after it was sent (whether or not the
    /// client still waits).
    HoldBack(std::time::Duration),
    /// DynamoDB applies the request at once; its answer comes back this long after.
    AnswerLate(std::time::Duration),
    /// A `BatchGetItem` answered as if bucket 1's row had been read after a gather took
    /// this many units out of it into a bucket read before: each item is read at its own
    /// moment, and DynamoDB Local happens to answer from one.
    Tear(i64),
}

/// Which DynamoDB operation to fail, how, and how many more times.
#[derive(Default)]
struct Faults {
    plan: Mutex<Option<(&'static str, u32, Option<Fault>)>>,
    /// Requests for the planned operation seen so far (failed or passed on).
    attempts: AtomicU32,
    /// Held-back requests that have reached DynamoDB since.
    released: tokio::sync::Notify,
    /// Late-answered requests that DynamoDB has answered (the answer is still held).
    answered: tokio::sync::Notify,
    /// Requests for the planned operation under way now, and the most there ever were.
    in_flight: AtomicU32,
    max_in_flight: AtomicU32,
}

/// Counts one request of the planned operation as under way while it lives.
struct InFlight<'a>(&'a Faults);

impl<'a> InFlight<'a> {
    fn start(faults: &'a Faults) -> Self {
        let now = faults.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        faults.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(faults)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Proxy {
    url: String,
    faults: Arc<Faults>,
}

impl Proxy {
    /// Fails the next `times` requests whose `X-Amz-Target` ends with `op` ("" = any).
    fn fail(&self, op: &'static str, times: u32) {
        self.plan(op, times, Fault::Throttle);
    }

    fn plan(&self, op: &'static str, times: u32, fault: Fault) {
        *self.faults.plan.lock().expect("lock") = Some((op, times, Some(fault)));
        self.faults.attempts.store(0, Ordering::SeqCst);
    }

    fn attempts(&self) -> u32 {
        self.faults.attempts.load(Ordering::SeqCst)
    }
}

async fn start_proxy() -> Proxy {
    let upstream = std::env::var("DYNAMODB_ENDPOINT").expect("DYNAMODB_ENDPOINT (run make test)");
    let faults = Arc::new(Faults::default());
    let http = reqwest::Client::new();
    let state = (faults.clone(), http, upstream);
    let app = axum::Router::new().fallback(forward).with_state(Arc::new(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Proxy { url, faults }
}

type ProxyState = Arc<(Arc<Faults>, reqwest::Client, String)>;

async fn forward(
    State(state): State<ProxyState>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let (faults, http, upstream) = &*state;
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let fail = {
        let mut plan = faults.plan.lock().expect("lock");
        match plan.as_mut() {
            Some((op, left, fault)) if target.ends_with(*op) => {
                faults.attempts.fetch_add(1, Ordering::SeqCst);
                if *left > 0 {
                    *left -= 1;
                    *fault
                } else {
                    None
                }
            }
            _ => None,
        }
    };
    if let Some(Fault::Conflict | Fault::Refuse(_)) = fail {
        let items = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|b| b["TransactItems"].as_array().map(Vec::len))
            .unwrap_or(1);
        let reasons: Vec<_> = (0..items)
            .map(|i| match fail {
                Some(Fault::Refuse(at)) if at == i => {
                    json!({"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"})
                }
                Some(Fault::Refuse(_)) => json!({"Code": "None"}),
                _ => json!({"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}),
            })
            .collect();
        let body = json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
            "CancellationReasons": reasons,
        });
        return (StatusCode::BAD_REQUEST, [("content-type", "application/x-amz-json-1.0")], body.to_string())
            .into_response();
    }
    if let Some(Fault::HoldBack(delay)) = fail {
        let (faults, http, upstream) = (faults.clone(), http.clone(), upstream.clone());
        // Its own task, so that the request goes on when the client gives up on it.
        let held = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let resp = relay(&http, &upstream, &headers, body).await;
            faults.released.notify_waiters();
            resp
        });
        return held.await.unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response());
    }
    if let Some(Fault::AnswerLate(delay)) = fail {
        let _counted = InFlight::start(faults);
        let resp = relay(http, upstream, &headers, body).await;
        faults.answered.notify_waiters();
        tokio::time::sleep(delay).await;
        return resp;
    }
    if let Some(Fault::Tear(units)) = fail {
        let resp = relay(http, upstream, &headers, body).await;
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
        let Ok(mut answer) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return (parts, bytes).into_response();
        };
        let tables = answer["Responses"].as_object_mut().into_iter().flat_map(|t| t.values_mut());
        for item in tables.filter_map(|items| items.as_array_mut()).flatten() {
            if item["bucket"]["N"] == "1" && item["entity"]["S"] == "stock" {
                for attr in ["on_hand", "available"] {
                    if let Some(n) = item[attr]["N"].as_str().and_then(|n| n.parse::<i64>().ok()) {
                        item[attr] = json!({"N": (n - units).to_string()});
                    }
                }
            }
        }
        let mut parts = parts;
        parts.headers.remove("content-length");
        parts.headers.remove("x-amz-crc32");
        return (parts, answer.to_string()).into_response();
    }
    if fail == Some(Fault::Throttle) {
        let body = json!({
            "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
            "message": "Rate of requests exceeds the allowed throughput."
        });
        return (StatusCode::BAD_REQUEST, [("content-type", "application/x-amz-json-1.0")], body.to_string())
            .into_response();
    }
    relay(http, upstream, &headers, body).await
}

async fn relay(
    http: &reqwest::Client,
    upstream: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let mut req = http.post(upstream).body(body);
    for (name, value) in headers {
        if name != "host" && name != "content-length" {
            req = req.header(name, value);
        }
    }
    match req.send().await {
        Ok(resp) => {
            let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut out = HeaderMap::new();
            for (name, value) in resp.headers() {
                if name != "content-length" && name != "transfer-encoding" {
                    out.insert(name.clone(), value.clone());
                }
            }
            let bytes = resp.bytes().await.unwrap_or_default();
            (status, out, bytes).into_response()
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

#[tokio::test]
async fn a_throttled_write_is_retried_with_backoff_and_the_reservation_goes_through() {
    let Scene { healthy, product, proxy, gw, buyer } = scene(5, false).await;

    proxy.fail("TransactWriteItems", 2);
    let r = gw.post("/api/reservations", Some(&buyer), json!({"product_id": product, "quantity": 2})).await;

    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(proxy.attempts(), 3, "two throttled attempts, then the one that went through");
    assert_eq!(healthy.stock_of(&product, "main").await, (5, 2, 3));
}

#[tokio::test]
async fn when_every_write_is_throttled_a_reservation_gets_503_with_retry_after_and_changes_nothing() {
    let Scene { healthy, product, proxy, gw, buyer } = scene(5, false).await;
    let key = unique("key");

    proxy.fail("TransactWriteItems", u32::MAX);
    let r = gw.reserve_with_key(&buyer, &key, json!({"product_id": product, "quantity": 2})).await;

    assert_eq!((r.status, r.code()), (503, "unavailable"), "{}", r.body);
    assert_eq!(r.headers["retry-after"], "1");
    assert_eq!(r.body["request_id"], r.headers["x-request-id"].to_str().unwrap_or("?"));
    assert_eq!(proxy.attempts(), 4, "the SDK's four attempts, then give up");
    assert_eq!(healthy.stock_of(&product, "main").await, (5, 0, 5), "nothing changed");

    // The failed attempt left the key free: the same request succeeds once storage is back.
    proxy.fail("TransactWriteItems", 0);
    let r = gw.reserve_with_key(&buyer, &key, json!({"product_id": product, "quantity": 2})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(healthy.stock_of(&product, "main").await, (5, 2, 3));
}

#[tokio::test]
async fn when_concurrent_transactions_keep_winning_a_reservation_gets_409_conflict_and_changes_nothing() {
    let Scene { healthy, product, proxy, gw, buyer } = scene(5, false).await;
    let key = unique("key");

    proxy.plan("TransactWriteItems", u32::MAX, Fault::Conflict);
    let r = gw
        .reserve_with_key(&buyer, &key, json!({"product_id": product, "quantity": 2, "warehouse_id": "main"}))
        .await;

    assert_eq!((r.status, r.code()), (409, "conflict"), "{}", r.body);
    assert!(proxy.attempts() >= 2, "conflicts are retried before giving up");
    assert_eq!(healthy.stock_of(&product, "main").await, (5, 0, 5), "nothing changed");
    // The key was given back: the same request goes through once the contention is over.
    proxy.plan("TransactWriteItems", 0, Fault::Conflict);
    let r = gw
        .reserve_with_key(&buyer, &key, json!({"product_id": product, "quantity": 2, "warehouse_id": "main"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

/// The answer to a hold, as a client compares two: status, code, and a refusal's figures.
fn refusal(r: &Reply) -> (u16, String, serde_json::Value) {
    let figures = ["available", "limit", "remaining"].map(|f| r.body[f].clone());
    (r.status, r.code().to_string(), json!(figures))
}

#[tokio::test]
async fn a_single_hold_and_a_batch_of_one_line_get_the_same_answer_for_every_refusal_of_the_write() {
    let Scene { product, proxy, gw, buyer, .. } = scene(100, false).await;
    let line = json!({"product_id": product, "quantity": 1, "warehouse_id": "main"});
    // The hold's transaction: the stock row, the reservation, the customer's allowance,
    // the hold count (the product has no purchase limit, so a refusal of its allowance
    // names none).
    for at in 0..4 {
        proxy.plan("TransactWriteItems", 1, Fault::Refuse(at));
        let single = gw.post("/api/reservations", Some(&buyer), line.clone()).await;
        proxy.plan("TransactWriteItems", 1, Fault::Refuse(at));
        let batch = gw.post("/api/reservations/batch", Some(&buyer), json!({"items": [line]})).await;
        assert_eq!(refusal(&single), refusal(&batch), "item {at}: {} / {}", single.body, batch.body);
        assert!(single.status < 500, "item {at}: {}", single.body);
    }
}

#[tokio::test]
async fn throttled_reads_and_status_changes_get_503_and_change_nothing() {
    let (healthy, product, buyer) = shop(5).await;
    let hold = healthy.reserve(&buyer, &product, 1).await;
    let order = healthy.order(&buyer, &[&hold]).await;
    assert_eq!(order.status, 201, "{}", order.body);
    let order_id = order.body["id"].as_str().expect("id").to_string();
    let proxy = start_proxy().await;
    let gw = gateway_for(app_via(&proxy.url).await).await;

    proxy.fail("", u32::MAX);
    let r = gw.get(&format!("/api/products/{product}"), None).await;
    assert_eq!((r.status, r.code()), (503, "unavailable"), "{}", r.body);
    let r = gw.get("/api/orders", Some(&buyer)).await;
    assert_eq!((r.status, r.code()), (503, "unavailable"), "{}", r.body);
    let r = gw.set_status(&buyer, &order_id, "cancelled").await;
    assert_eq!((r.status, r.code()), (503, "unavailable"), "{}", r.body);

    let r = healthy.get(&format!("/api/orders/{order_id}"), Some(&buyer)).await;
    assert_eq!(r.body["status"], "pending", "the cancel did not happen");
    assert_eq!(healthy.stock_of(&product, "main").await, (4, 0, 4));
}

#[tokio::test]
async fn when_dynamodb_is_unreachable_requests_get_503_not_500() {
    let gw = gateway_for(app_via(&format!("http://127.0.0.1:{}", free_port())).await).await;
    let r = gw.get("/api/products", None).await;
    assert_eq!((r.status, r.code()), (503, "unavailable"), "{}", r.body);
    assert_eq!(r.headers["retry-after"], "1");
    let r = gw
        .post(
            "/api/reservations",
            Some(&token(&unique("buyer"), false)),
            json!({"product_id": "x", "quantity": 1}),
        )
        .await;
    assert_eq!((r.status, r.code()), (503, "unavailable"), "{}", r.body);
}

/// Captures what the JSON log format writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every line a request logs, down to the store's warning, names the request; the
/// request line has method, route, status, latency and user; no token appears anywhere.
#[tokio::test]
async fn every_log_line_of_a_request_carries_its_request_id_and_never_the_token() {
    let app = app_via(&format!("http://127.0.0.1:{}", free_port())).await;
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = shared::config::json_logs(
        tracing_subscriber::EnvFilter::new("info"),
        tracing_subscriber::fmt::format::FmtSpan::NONE,
        move || sink.clone(),
    );
    let bearer = token("log-user", false);
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {bearer}").parse().expect("header"));
    let claims = serde_json::from_value(json!({"sub": "log-user"})).expect("claims");
    let req = shared::http::ApiRequest {
        method: axum::http::Method::GET,
        path: "/api/orders".into(),
        query: None,
        headers,
        body: Default::default(),
        auth: shared::http::Auth::Claims(claims),
        request_id: "log-test-1".into(),
        deadline: None,
    };
    let _guard = tracing::subscriber::set_default(subscriber);
    let resp =
        shared::http::dispatch(&app, req, shared::http::Serving::Routes(shared::functions::LIST.routes))
            .await;
    drop(_guard);
    assert_eq!(resp.status(), 503);

    let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("every line is JSON")).collect();
    assert!(lines.len() >= 2, "the storage warning and the request line: {text}");
    for line in &lines {
        assert_eq!(line["span"]["request_id"], "log-test-1", "{line}");
    }
    let request = lines.iter().find(|l| l["message"] == "request").expect("request line");
    assert_eq!(
        (&request["method"], &request["route"], &request["status"], &request["user_id"]),
        (&json!("GET"), &json!("/api/orders"), &json!(503), &json!("log-user"))
    );
    assert!(request["latency_ms"].is_number());
    assert!(lines.iter().any(|l| l["level"] == "WARN"), "the store's warning is among them: {text}");
    assert!(!text.contains(&bearer) && !text.contains("Bearer"), "no token in the logs");
}

/// A gateway whose functions reach DynamoDB through `proxy` and have a 4 s `Timeout` (the
/// template's, shortened, but long enough that DynamoDB Local under a full test run
/// applies a transaction well inside it), as the deadline tests need.
async fn gateway_with_short_timeout(proxy: &Proxy) -> TestGateway {
    let base = app().await;
    let template = TEMPLATE_YAML.replacen("    Timeout: 10\n", "    Timeout: 4\n", 1);
    assert_ne!(template, TEMPLATE_YAML, "the global Timeout moved; update this test");
    let template = template_json(&template);
    let names = shared::iam::LocalNames::default()
        .with("Table", base.store.table())
        .with("AuditTable", base.store.audit_table());
    let iam = shared::iam::LocalIam::new(&template, &names, None).expect("template");
    gateway_for(app_via(&proxy.url).await.with_local_iam(Some(Arc::new(iam)))).await
}

const DEADLINE: std::time::Duration = std::time::Duration::from_secs(4);

/// A fault test's stage: a product with `stock` units in "main", read through a healthy
/// gateway, and a buyer calling through `gw`, whose store answers through `proxy`.
struct Scene {
    healthy: TestGateway,
    product: String,
    proxy: Proxy,
    gw: TestGateway,
    buyer: String,
}

/// A `Scene` whose `gw` has the template's timeouts, or with `short_timeout` the deadline
/// tests' (`gateway_with_short_timeout`).
async fn scene(stock: i64, short_timeout: bool) -> Scene {
    let healthy = gateway().await;
    let product = healthy.product(json!({ "main": stock })).await;
    let proxy = start_proxy().await;
    let gw = match short_timeout {
        true => gateway_with_short_timeout(&proxy).await,
        false => gateway_for(app_via(&proxy.url).await).await,
    };
    Scene { healthy, product, proxy, gw, buyer: token(&unique("buyer"), false) }
}

async fn deadline_scene() -> Scene {
    scene(5, true).await
}

/// The reply of `f`, which must arrive before the deadline.
async fn in_time(f: impl std::future::Future<Output = Reply>) -> Reply {
    let started = std::time::Instant::now();
    let r = f.await;
    let took = started.elapsed();
    assert!(took < DEADLINE, "answered after {took:?}");
    eprintln!("answered {} after {took:?} (deadline {DEADLINE:?})", r.status);
    r
}

#[tokio::test]
async fn a_keyed_reservation_whose_commit_answers_late_gets_its_committed_result_before_the_deadline() {
    let Scene { healthy, product, proxy, gw, buyer } = deadline_scene().await;
    let key = unique("key");
    let body = json!({"product_id": product, "quantity": 2, "warehouse_id": "main"});

    proxy.plan("TransactWriteItems", 1, Fault::AnswerLate(std::time::Duration::from_secs(8)));
    let answered = proxy.faults.answered.notified();
    let r = in_time(gw.reserve_with_key(&buyer, &key, body.clone())).await;
    within(answered, "the late-answered write never reached DynamoDB").await;
    // DynamoDB Local applies the write at once when it is not busy: the request then
    // finds it committed and returns its result. When it is busy enough to apply it only
    // after the lease was settled, the write fails on its lease and the answer says
    // nothing changed. Either way the answer is true, and a retry applies it once.
    if r.status == 201 {
        assert_eq!(healthy.stock_of(&product, "main").await, (5, 2, 3));
    } else {
        assert_eq!((r.status, r.code()), (503, "unavailable"), "{}", r.body);
        assert!(r.body["detail"].as_str().unwrap_or("").contains("nothing was changed"), "{}", r.body);
        assert_eq!(healthy.stock_of(&product, "main").await, (5, 0, 5));
    }
    let again = gw.reserve_with_key(&buyer, &key, body).await;
    assert_eq!(again.status, 201, "{}", again.body);
    if r.status == 201 {
        assert_eq!(&again.body["id"], &r.body["id"], "a retry replays it");
    }
    assert_eq!(healthy.stock_of(&product, "main").await, (5, 2, 3), "applied once");
}

#[tokio::test]
async fn a_keyed_reservation_whose_write_is_held_back_gets_503_in_time_and_the_write_never_applies() {
    let Scene { healthy, product, proxy, gw, buyer } = deadline_scene().await;
    let key = unique("key");
    let body = json!({"product_id": product, "quantity": 2, "warehouse_id": "main"});

    proxy.plan("TransactWriteItems", 1, Fault::HoldBack(std::time::Duration::from_secs(5)));
    let released = proxy.faults.released.notified();
    let r = in_time(gw.reserve_with_key(&buyer, &key, body.clone())).await;
    assert_eq!((r.status, r.code()), (503, "unavailable"), "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap_or("").contains("nothing was changed"), "{}", r.body);
    // The lease was given up: the same key works at once...
    let retry = gw.reserve_with_key(&buyer, &key, body).await;
    assert_eq!(retry.status, 201, "{}", retry.body);
    // ...and the held-back transaction, when it finally arrives, applies nothing.
    within(released, "the held-back write was never released").await;
    assert_eq!(healthy.stock_of(&product, "main").await, (5, 2, 3), "one hold, the retry's");
}

#[tokio::test]
async fn a_reservation_without_a_key_whose_write_answers_late_says_its_outcome_is_unknown_in_time() {
    let Scene { healthy, product, proxy, gw, buyer } = deadline_scene().await;

    proxy.plan("TransactWriteItems", 1, Fault::AnswerLate(std::time::Duration::from_secs(8)));
    let body = json!({"product_id": product, "quantity": 1, "warehouse_id": "main"});
    let answered = proxy.faults.answered.notified();
    let r = in_time(gw.post("/api/reservations", Some(&buyer), body)).await;
    assert_eq!((r.status, r.code()), (503, "unavailable"), "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap_or("").contains("outcome is unknown"), "{}", r.body);
    within(answered, "the late-answered write never reached DynamoDB").await;
    assert_eq!(healthy.stock_of(&product, "main").await, (5, 1, 4), "it did apply: hence 'unknown'");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_scheduler_runs_no_more_expiries_at_once_than_expire_may_run_in_aws() {
    let _lock = stockhold_tests::sweep_lock().await;
    let healthy = gateway().await;
    let product = healthy.product(json!({"main": 60})).await;
    let proxy = start_proxy().await;
    let mut app = app_via(&proxy.url).await;
    app.config.reservation_ttl = chrono::Duration::seconds(3);
    let app = gateway::scheduler::with_local_scheduler(
        app,
        std::time::Duration::from_secs(3600),
        shared::jobs::SweepSettings { per_shard: 250, grace: stockhold_tests::NO_GRACE },
    )
    .expect("scheduler");
    let gw = gateway_for(app).await;
    let holds = (0..50).map(|_| {
        let gw = &gw;
        let product = product.clone();
        async move { gw.reserve(&token(&unique("u"), false), &product, 1).await }
    });
    futures::future::join_all(holds).await;
    // From now on each write (the expiries) answers 300 ms late, so they pile up.
    proxy.plan("TransactWriteItems", u32::MAX, Fault::AnswerLate(std::time::Duration::from_millis(300)));

    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while healthy.stock_of(&product, "main").await != (60, 0, 60) {
        assert!(std::time::Instant::now() < give_up, "the holds did not all expire");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let most = proxy.faults.max_in_flight.load(Ordering::SeqCst);
    eprintln!("at most {most} expiries at once");
    assert!((2..=20).contains(&most), "expire's reserved concurrency is 20; {most} ran at once");
}

#[tokio::test]
async fn a_write_the_sdk_gave_up_on_after_sending_it_says_its_outcome_is_unknown() {
    let healthy = gateway().await;
    let product = healthy.product(json!({"main": 5})).await;
    let proxy = start_proxy().await;
    // The SDK's own operation timeout, below any deadline of ours (as one configured in
    // AWS may be): the write reaches DynamoDB and applies; its answer comes too late. The
    // timeout leaves the test's other calls (the lease, its settling) room on a loaded
    // DynamoDB Local; the held answer comes long after it.
    let mut app = app_via(&proxy.url).await;
    let timeout = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
        .operation_timeout(std::time::Duration::from_millis(1500))
        .build();
    let conf = stockhold_tests::raw_client()
        .await
        .config()
        .to_builder()
        .endpoint_url(&proxy.url)
        .timeout_config(timeout)
        .build();
    let db = shared::store::Db::new(aws_sdk_dynamodb::Client::from_conf(conf));
    app.store = shared::store::Store::new(db, app.store.table(), app.store.audit_table());
    let gw = gateway_for(app).await;

    proxy.plan("TransactWriteItems", 1, Fault::AnswerLate(std::time::Duration::from_secs(5)));
    let answered = proxy.faults.answered.notified();
    let buyer = token(&unique("buyer"), false);
    let body = json!({"product_id": product, "quantity": 1, "warehouse_id": "main"});
    let r = gw.post("/api/reservations", Some(&buyer), body).await;
    assert_eq!((r.status, r.code()), (503, "unavailable"), "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap_or("").contains("outcome is unknown"), "{}", r.body);
    within(answered, "the late-answered write never reached DynamoDB").await;
    assert_eq!(healthy.stock_of(&product, "main").await, (5, 1, 4), "it did apply: hence 'unknown'");

    // With an Idempotency-Key the lease tells what happened: the committed hold.
    proxy.plan("TransactWriteItems", 1, Fault::AnswerLate(std::time::Duration::from_secs(5)));
    let answered = proxy.faults.answered.notified();
    let body = json!({"product_id": product, "quantity": 2, "warehouse_id": "main"});
    let r = gw.reserve_with_key(&buyer, &unique("key"), body).await;
    within(answered, "the late-answered write never reached DynamoDB").await;
    match r.status {
        201 => assert_eq!(healthy.stock_of(&product, "main").await, (5, 3, 2)),
        _ => {
            assert_eq!((r.status, r.code()), (503, "unavailable"), "{}", r.body);
            assert!(r.body["detail"].as_str().unwrap_or("").contains("nothing was changed"), "{}", r.body);
        }
    }
}

/// Waits for `event`, failing the test (instead of hanging it) when it does not come.
async fn within(event: impl std::future::Future<Output = ()>, what: &str) {
    tokio::time::timeout(std::time::Duration::from_secs(60), event)
        .await
        .unwrap_or_else(|_| panic!("{what}"));
}

#[tokio::test]
async fn a_count_on_a_bucketed_product_judges_its_rows_as_of_one_instant() {
    let proxy = start_proxy().await;
    let gw = gateway_for(app_via(&proxy.url).await).await;
    let admin = token("counter", true);
    let product = gw.bucketed_product(json!({"main": 40}), 4).await;
    let count = |body: serde_json::Value| {
        let (gw, admin, product) = (&gw, &admin, &product);
        async move { gw.post(&format!("/api/products/{product}/stock"), Some(admin), body).await }
    };
    // Read bucket by bucket, a gather between two reads would make the total 37: the
    // count would answer a wrong `stock_changed`...
    proxy.plan("BatchGetItem", u32::MAX, Fault::Tear(3));
    let r = count(json!({"warehouse_id": "main", "set_on_hand": 41, "expected_on_hand": 40})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // ... or find 37 already there and write nothing.
    let r = count(json!({"warehouse_id": "main", "set_on_hand": 37})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    proxy.plan("BatchGetItem", 0, Fault::Throttle);
    assert_eq!(gw.stock_of(&product, "main").await.0, 37, "both counts applied");
}
