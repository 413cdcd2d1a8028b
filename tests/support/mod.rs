//! Test support: the shared DynamoDB Local table (one per test process, unique ids per
//! test), an in-process local gateway on an ephemeral port, and token minting.

pub mod browser;

use chrono::{DateTime, Utc};
use gateway::{auth::Verifier, serve, Gateway};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};
use shared::adapters::clock::SystemClock;
use shared::config::Config;
use shared::service::ports::{Clock, Scheduled};
use shared::service::App;
use shared::store::schema::{TableDef, AUDIT_TABLE, TABLE};
use std::sync::{Arc, OnceLock};
use tokio::sync::OnceCell;

pub const SECRET: &str = "test-secret";

/// A sweep that takes every hold past its end (no time left to the holds' schedules).
pub const NO_GRACE: chrono::Duration = chrono::Duration::zero();

/// `template.yaml` as written, for tests that enforce a changed copy of it.
pub const TEMPLATE_YAML: &str = include_str!("../../template.yaml");

/// A (changed) template in the JSON form the local IAM reads, converted as the build
/// converts `template.yaml`.
pub fn template_json(yaml: &str) -> String {
    template_json::to_json_text(yaml).expect("the template parses")
}

fn table_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| format!("it-{}", ulid::Ulid::new().to_string().to_lowercase()))
}

fn config() -> Config {
    let endpoint = std::env::var("DYNAMODB_ENDPOINT")
        .expect("DYNAMODB_ENDPOINT is not set: run the tests with `make test`, which starts DynamoDB Local");
    let mut c = Config::from_env().expect("config");
    c.store.endpoint = Some(endpoint);
    c.store.table = table_name().to_string();
    c.store.audit_table = format!("{}-audit", table_name());
    c
}

/// Warnings and errors of the code under test go to the test's captured output, shown
/// when it fails (`RUST_LOG` overrides the level).
fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    });
}

/// The application table without its stream. DynamoDB Local does work on every write to a
/// streamed table that grows with the stream records it holds (`getStreamDescription` in
/// its SQLite layer: measured, 850 order writes/s on a fresh emulator, 180/s after a few
/// thousand earlier writes), and a stream that nobody reads only slows every later write.
/// Only the audit tests read a stream, each on a table of its own.
pub const TABLE_WITHOUT_STREAM: TableDef = TableDef { stream: None, ..TABLE };

/// A DynamoDB client of the test harness itself (creating tables, planting items no
/// service would write): the platform's, held to no function's policy.
pub async fn raw_client() -> aws_sdk_dynamodb::Client {
    let c = config();
    let sdk = c.sdk_config().await;
    let mut conf = aws_sdk_dynamodb::config::Builder::from(&sdk);
    conf.set_endpoint_url(c.store.endpoint.clone());
    aws_sdk_dynamodb::Client::from_conf(conf.build())
}

/// Writes `item` (attribute name, string value; `raw` for other kinds) into the
/// application table behind the service's back: the rows no request can make.
pub async fn put_raw(
    app: &App,
    item: &[(&str, &str)],
    raw: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let strings = item.iter().map(|(k, v)| (k.to_string(), AttributeValue::S(v.to_string())));
    let others = raw.iter().map(|(k, v)| (k.to_string(), v.clone()));
    let item = strings.chain(others).collect();
    raw_client()
        .await
        .put_item()
        .table_name(app.store.table())
        .set_item(Some(item))
        .send()
        .await
        .expect("put");
}

/// A DynamoDB client as the function built as `binary` has it on the local stack: every
/// call held to that function's policy in `template.yaml`.
pub async fn function_client(app: &App, binary: &str) -> aws_sdk_dynamodb::Client {
    let iam = app.local_iam().expect("the local stack enforces IAM");
    let http = iam.client_for(binary, shared::iam::Service::DynamoDb).expect("function in the template");
    let conf = raw_client().await.config().to_builder().http_client(http).build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// `app` on another clock.
pub fn with_clock(mut app: App, clock: Arc<dyn Clock>) -> App {
    app.clock = clock;
    app
}

/// An application on the shared test table, with the given clock.
pub async fn app_with_clock(clock: Arc<dyn Clock>) -> App {
    init_logs();
    static CREATED: OnceCell<()> = OnceCell::const_new();
    let app = config().build_app(clock).await.expect("app");
    CREATED
        .get_or_init(|| async {
            let client = raw_client().await;
            TABLE_WITHOUT_STREAM.create(&client, app.store.table()).await.expect("create test table");
            AUDIT_TABLE.create(&client, app.store.audit_table()).await.expect("create audit table");
        })
        .await;
    app
}

/// An application on the shared test table that reaches DynamoDB through `endpoint` (a
/// fault-injecting proxy, or nothing at all).
pub async fn app_via(endpoint: &str) -> App {
    app().await;
    let mut c = config();
    c.store.endpoint = Some(endpoint.to_string());
    c.build_app(Arc::new(SystemClock)).await.expect("app")
}

/// `app` as the function built as `binary` runs it: held to that function's IAM policy in
/// `template.yaml`, as every direct service call in a test should be.
pub fn as_function(app: &App, binary: &str) -> App {
    app.for_function(binary).unwrap_or_else(|e| panic!("{binary}: {e}"))
}

pub async fn app() -> App {
    app_with_clock(Arc::new(SystemClock)).await
}

/// A running local gateway; stops when dropped.
pub struct TestGateway {
    pub url: String,
    pub http: reqwest::Client,
    pub app: App,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn gateway_for(app: App) -> TestGateway {
    gateway_with(app, |gw| gw).await
}

/// A gateway for `app`, set up further by `configure` (e.g. its allowed origins).
pub async fn gateway_with(app: App, configure: impl FnOnce(Gateway) -> Gateway) -> TestGateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let gw = configure(
        Gateway::new(&app, Verifier::new(SECRET).expect("verifier"))
            .expect("every route's function is in the template"),
    );
    tokio::spawn(async move {
        let _ = serve(listener, gw, async move {
            let _ = stopped.await;
        })
        .await;
    });
    TestGateway { url, http: reqwest::Client::new(), app, _stop: stop }
}

pub async fn gateway() -> TestGateway {
    gateway_for(app().await).await
}

/// A unique name for this test's things.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

pub fn token_with(claims: Value, secret: &str) -> String {
    encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes()).expect("key"))
        .expect("token")
}

/// A valid token for `sub`, an admin when `admin`.
pub fn token(sub: &str, admin: bool) -> String {
    let exp = chrono::Utc::now().timestamp() + 3600;
    let groups: Vec<&str> = if admin { vec!["admin"] } else { vec![] };
    token_with(json!({"sub": sub, "groups": groups, "exp": exp}), SECRET)
}

/// A response's status and JSON body (Null when the body is not JSON).
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// The ids of the replies that created something (201), in order: who won a race.
pub fn created_ids(replies: &[Reply]) -> Vec<String> {
    replies
        .iter()
        .filter(|r| r.status == 201)
        .map(|r| r.body["id"].as_str().unwrap_or("").to_string())
        .collect()
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

impl TestGateway {
    pub async fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = self.http.request(method.parse().expect("method"), format!("{}{}", self.url, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        into_reply(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send("GET", path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send("POST", path, token, Some(body)).await
    }

    /// Creates a product with `stock` as an admin and returns its id.
    pub async fn product(&self, stock: Value) -> String {
        self.bucketed_product(stock, 1).await
    }

    /// Creates a product with `stock` split over `k` buckets (`stock_buckets`; 1 is a
    /// plain product) as an admin and returns its id.
    pub async fn bucketed_product(&self, stock: Value, k: usize) -> String {
        let admin = token("admin-setup", true);
        let mut body =
            json!({"sku": unique("SKU"), "name": "Test item", "price_cents": 1999, "stock": stock});
        if k > 1 {
            body["stock_buckets"] = json!(k);
        }
        let r = self.post("/api/products", Some(&admin), body).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["stock_buckets"], k, "{}", r.body);
        r.body["id"].as_str().expect("id").to_string()
    }

    pub async fn stock_of(&self, product_id: &str, warehouse: &str) -> (i64, i64, i64) {
        let r = self.get(&format!("/api/products/{product_id}"), None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let row = r.body["stock"]
            .as_array()
            .expect("stock")
            .iter()
            .find(|s| s["warehouse_id"] == warehouse)
            .cloned()
            .unwrap_or(Value::Null);
        let n = |k: &str| row[k].as_i64().unwrap_or(-1);
        (n("on_hand"), n("reserved"), n("available"))
    }
}

pub async fn into_reply(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply { status, headers, body }
}

/// Tests that run the sweep (or a gateway whose scheduler sweeps) hold this lock and work
/// in the past (`past_clock`), so that their sweeps never reach another test's holds, and
/// two sweeping tests never see each other's holds mid-test.
pub async fn sweep_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// A manual clock a day in the past: holds made with it are due long before any hold made
/// by a test on the real clock.
/// Where a test that lets holds run out starts: the sweep lock (such tests take turns,
/// `sweep_lock`), a clock a day ago that moves only when the test moves it
/// (`clock.advance`), a gateway over an application on that clock, and a product with
/// `units` in `main`.
pub type Past =
    (tokio::sync::MutexGuard<'static, ()>, shared::adapters::clock::ManualClock, TestGateway, String);

pub async fn in_the_past(units: i64) -> Past {
    in_the_past_holding(units, None).await
}

/// `in_the_past`, where one user may hold up to `max_active_holds` at once.
pub async fn in_the_past_holding(units: i64, max_active_holds: Option<i64>) -> Past {
    let lock = sweep_lock().await;
    let clock = past_clock();
    let mut app = app_with_clock(Arc::new(clock.clone())).await;
    if let Some(cap) = max_active_holds {
        app.config.max_active_holds = cap;
    }
    let gw = gateway_for(app).await;
    let product = gw.product(json!({"main": units})).await;
    (lock, clock, gw, product)
}

/// An order of one line (`quantity` units at `unit_price_cents`) made at `created`, to
/// load into the store directly: order lists at sizes no test could order one by one.
pub fn one_line_order(
    user: &str,
    status: shared::domain::order::OrderStatus,
    (quantity, unit_price_cents): (i64, i64),
    created: DateTime<Utc>,
) -> shared::domain::order::Order {
    use shared::domain::order::{Order, OrderItem};
    let item = OrderItem {
        product_id: "01LOADEDPRODUCT".into(),
        sku: "LOADED-SKU".into(),
        name: "Loaded item".into(),
        warehouse_id: "main".into(),
        reservation_id: "01LOADEDRESERVATION".into(),
        quantity,
        returned: 0,
        unit_price_cents,
        bucket: 0,
    };
    let id = shared::domain::ids::new_id(created);
    Order {
        id,
        user_id: user.to_string(),
        status,
        currency: "USD".into(),
        items: vec![item],
        created_at: created,
        updated_at: created,
        last_return: None,
    }
}

/// A gateway, a product with `units` in `main`, and a customer's token of a new user:
/// where most tests of one buyer start.
pub async fn shop(units: i64) -> (TestGateway, String, String) {
    let (gw, product, _, token) = shop_with_buyer(units).await;
    (gw, product, token)
}

/// `shop`, with the buyer's user id too: (gateway, product, user id, token).
pub async fn shop_with_buyer(units: i64) -> (TestGateway, String, String, String) {
    let gw = gateway().await;
    let product = gw.product(json!({"main": units})).await;
    let user = unique("buyer");
    let token = token(&user, false);
    (gw, product, user, token)
}

/// The audit function's stream fixture (`events/audit-stream-batch.json`), to alter.
pub fn audit_stream_fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/audit-stream-batch.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
}

/// `id` as the typed id the service takes (what the edge parses a request's id into).
pub fn id<T: shared::domain::ids::Id>(id: &str) -> T {
    T::parse(id).unwrap_or_else(|e| panic!("{id:?} {e}"))
}

pub fn past_clock() -> shared::adapters::clock::ManualClock {
    shared::adapters::clock::ManualClock::new(chrono::Utc::now() - chrono::Duration::days(1))
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

impl TestGateway {
    /// Reserves `q` units for the token's user and returns the reservation id.
    pub async fn reserve(&self, token: &str, product: &str, q: i64) -> String {
        let r =
            self.post("/api/reservations", Some(token), json!({"product_id": product, "quantity": q})).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().expect("id").to_string()
    }

    /// `POST /api/reservations` with an `Idempotency-Key`.
    pub async fn reserve_with_key(&self, token: &str, key: &str, body: Value) -> Reply {
        let resp = self
            .http
            .post(format!("{}/api/reservations", self.url))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await
            .expect("send");
        into_reply(resp).await
    }

    pub async fn order(&self, token: &str, reservation_ids: &[&str]) -> Reply {
        self.post("/api/orders", Some(token), json!({ "reservation_ids": reservation_ids })).await
    }

    pub async fn set_status(&self, token: &str, order: &str, status: &str) -> Reply {
        self.send("PATCH", &format!("/api/orders/{order}"), Some(token), Some(json!({ "status": status })))
            .await
    }
}

/// An application on a table of its own (with its stream, as deployed), for tests that
/// must see every item of the table (an admin's list of all orders) or its stream.
pub async fn app_on_fresh_table() -> App {
    app_on_own_table(&TABLE).await
}

/// An application on a table of its own created from `def`.
pub async fn app_on_own_table(def: &TableDef) -> App {
    app_on_own_table_with(def, |_| {}).await.0
}

/// An application on fresh tables of its own, its configuration set further by
/// `configure` (e.g. the event bus it publishes on); with that configuration.
pub async fn app_on_own_table_with(def: &TableDef, configure: impl FnOnce(&mut Config)) -> (App, Config) {
    init_logs();
    let mut c = config();
    c.store.table = unique("own");
    c.store.audit_table = format!("{}-audit", c.store.table);
    configure(&mut c);
    let app = c.build_app(Arc::new(SystemClock)).await.expect("app");
    let client = raw_client().await;
    def.create(&client, app.store.table()).await.expect("create table");
    AUDIT_TABLE.create(&client, app.store.audit_table()).await.expect("create audit table");
    (app, c)
}

/// A second application on `app`'s tables with a store of its own (so its DynamoDB
/// requests are counted apart from `app`'s).
pub async fn app_beside(app: &App) -> App {
    let mut c = config();
    c.store.table = app.store.table().to_string();
    c.store.audit_table = app.store.audit_table().to_string();
    c.build_app(Arc::new(SystemClock)).await.expect("app")
}

/// Starts the local stream poller (the audit function's event source) for `app`'s table.
pub async fn start_audit_poller(app: &App) -> Arc<gateway::stream::PollerStats> {
    gateway::stream::spawn_stream_poller(app.clone(), gateway::stream::Platform::connect(&config()).await)
        .expect("the audit function is in the template")
        .stats
}

/// All audit entries of one entity through `GET /api/audit`, waiting (bounded, 15 s) until
/// there are `n` (entries come from the stream, a moment after the change).
pub async fn audit_entries(gw: &TestGateway, kind: &str, id: &str, n: usize) -> Vec<Value> {
    let admin = token("auditor", true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let r =
            gw.get(&format!("/api/audit?entity_type={kind}&entity_id={id}&limit=100"), Some(&admin)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let items = r.body["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= n || std::time::Instant::now() > deadline {
            return items;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The events of one entity in the replay feed (`GET /api/events`), waiting (bounded,
/// 20 s) until there are `n`: events reach the feed from the stream, a moment after the
/// change.
pub async fn events_of(gw: &TestGateway, kind: &str, id: &str, n: usize) -> Vec<Value> {
    let admin = token("auditor", true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = gw.get(&format!("/api/events?entity_type={kind}&entity_id={id}"), Some(&admin)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let items = r.body["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= n || std::time::Instant::now() > deadline {
            return items;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Writes orders as they are, without conditions or stock effects (seeding list tests
/// and benchmarks): `BatchWriteItem` of the items the store would write.
pub async fn import_orders(app: &App, orders: &[shared::domain::order::Order]) {
    let items = orders.iter().map(|o| shared::store::records::order::item(o, "import").expect("order item"));
    // The store's own batch writer, on a client outside any function's policy (this is
    // seeding, not a function's work).
    shared::store::Db::new(raw_client().await)
        .batch_put("import_orders", app.store.table(), items.collect())
        .await
        .expect("import");
}

/// Schedules by (name, time), with the reservations each ends.
pub type LiveSchedules = std::collections::BTreeMap<(String, chrono::DateTime<chrono::Utc>), Vec<String>>;

/// Keeps the schedules it is asked for by name and time, with the reservations each ends,
/// as EventBridge Scheduler keeps them by name; it yields between steps so that racing
/// callers interleave. For tests that look at which schedules a flow leaves.
#[derive(Debug, Default)]
pub struct RecordingScheduler {
    /// (name, time) -> reservation ids, of the schedules that exist now.
    pub live: std::sync::Mutex<LiveSchedules>,
    /// `CreateSchedule` calls made.
    pub creates: std::sync::atomic::AtomicUsize,
}

impl shared::service::ports::ExpiryScheduler for RecordingScheduler {
    fn schedule_many<'a>(&'a self, name: &'a str, ids: &'a [String], at: DateTime<Utc>) -> Scheduled<'a> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            self.creates.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.live.lock().expect("lock").entry((name.to_string(), at)).or_insert_with(|| ids.to_vec());
            Ok(())
        })
    }
    fn cancel<'a>(&'a self, name: &'a str, at: DateTime<Utc>) -> Scheduled<'a> {
        Box::pin(async move {
            tokio::task::yield_now().await;
            self.live.lock().expect("lock").remove(&(name.to_string(), at));
            Ok(())
        })
    }
}

/// Every movement of a product through `GET /api/products/{id}/movements` (`query` added
/// to the first page's), following cursors, waiting (bounded, 15 s) until there are `n`
/// (movements come from the stream, a moment after the change).
pub async fn movements(gw: &TestGateway, product: &str, query: &str, n: usize) -> Vec<Value> {
    let admin = token("auditor", true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let mut all = Vec::new();
        let mut next = format!("/api/products/{product}/movements?limit=100{query}");
        loop {
            let r = gw.get(&next, Some(&admin)).await;
            assert_eq!(r.status, 200, "{}", r.body);
            all.extend(r.body["items"].as_array().cloned().unwrap_or_default());
            match r.body["next_cursor"].as_str() {
                Some(c) => next = format!("/api/products/{product}/movements?limit=100{query}&cursor={c}"),
                None => break,
            }
        }
        if all.len() >= n || std::time::Instant::now() > deadline {
            return all;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Writes a ledger head for `row` that does not decode (its `seq` is text) into the audit
/// table, behind the service's back.
pub async fn put_unreadable_ledger_head(app: &App, row: &shared::domain::movement::RowKey) {
    use aws_sdk_dynamodb::types::AttributeValue::S;
    raw_client()
        .await
        .put_item()
        .table_name(app.store.audit_table())
        .item("pk", S(shared::store::records::movement::row_pk(row)))
        .item("sk", S(shared::store::records::movement::HEAD_SK.into()))
        .item("seq", S("not a number".into()))
        .send()
        .await
        .expect("put");
}
