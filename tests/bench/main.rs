//! Benchmarks that print figures (never asserted), run against DynamoDB Local through the
//! in-process local gateway. `make bench` runs `bench all`; `make bench-reserve`,
//! `make bench-expiry` and `make bench-orders` run one each. BENCHMARKS.md explains every
//! figure. Subcommands:
//!
//! - `bench all`: every benchmark below with its default sizes, writing
//!   `target/bench/<name>.json`.
//! - `bench flash [BUYERS] [UNITS] [C] [BUCKETS]`: a flash sale (default 2,000 buyers, 200
//!   units, 64 concurrent) beside the bare transaction at the same concurrency.
//! - `bench walk [USERS] [C]`: reserve, order and confirm per user, step latencies.
//! - `bench lists`: order list pages at 1,000 and 50,000 orders.
//! - `bench cold [RUNS]`: each function binary's start to first response.
//! - `bench cost`: DynamoDB requests and capacity units per operation.
//! - `bench ledger [N ...]`: the ledger's stream side per change, the hold path with the
//!   ledger on, and movements pages, `as_of` and reconciliation at N movements of one row
//!   (default 1,000 and 100,000).
//! - `bench events [N] [PRODUCTS] [C]`: events out under the spread shape: change to
//!   webhook latency, `PutEvents` requests per 1,000 events, the hold path's requests
//!   (needs moto_server: `make bench` starts it).
//! - `bench reserve [N] [CONCURRENCY]`: POST /api/reservations latency (p50/p90/p99/max)
//!   and throughput, N requests (default 300) at each concurrency (default 1 and 16).
//! - `bench expiry [N] [TTL]`: N holds (default 100) with a TTL of TTL seconds (default 2)
//!   left to expire through the local scheduler; prints the delay from `expires_at` to the
//!   units being back on sale (the expiring transaction's time, stamped on the hold).
//! - `bench orders [SINGLE] [SPREAD] [USERS]`: loads SINGLE orders (default 10,000) for one
//!   user and SPREAD (default 50,000) across USERS (default 500) users into a table of its
//!   own, then walks 25 pages (limit 20) of each query shape and prints page latency
//!   p50/p99, Query calls per page, items read per item returned and read units per page.

mod events;
mod fair;
mod hot;
mod ledger;
mod storm;
mod tls;
mod virtual_time;

use futures::stream::{self, StreamExt};
use serde_json::json;
use shared::adapters::clock::SystemClock;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockhold_tests::*;

/// The sweep's grace period in template.yaml (`SWEEP_GRACE_SECONDS` of `sweep`).
const SWEEP_GRACE_SECONDS: usize = 120;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    format!(
        "p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        percentile(&ms, 50.0),
        percentile(&ms, 90.0),
        percentile(&ms, 99.0),
        ms.last().copied().unwrap_or(f64::NAN)
    )
}

fn arg(args: &[String], i: usize, default: usize) -> usize {
    args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    println!(
        "machine: {} cores; DynamoDB Local at {}",
        num_cpus(),
        std::env::var("DYNAMODB_ENDPOINT").unwrap_or_default()
    );
    match args.first().map(String::as_str) {
        Some("reserve") => {
            reserve(arg(&args, 1, 300), &args.get(2).cloned().unwrap_or_else(|| "1,16".into())).await
        }
        Some("expiry") => save("expiry", expiry_json(arg(&args, 1, 100), arg(&args, 2, 2) as u64).await),
        Some("orders") => save("order_list_scale", orders(arg(&args, 1, 10_000), arg(&args, 2, 50_000), arg(&args, 3, 500)).await),
        Some("flash") => save(
            "flash_sale",
            flash_sale(arg(&args, 1, 2000), arg(&args, 2, 200), arg(&args, 3, 64), arg(&args, 4, 1)).await,
        ),
        Some("walk") => save("walk", walk(arg(&args, 1, 200), arg(&args, 2, 16)).await),
        Some("lists") => save("order_lists", lists().await),
        Some("cold") => save("cold_start", cold_start(arg(&args, 1, 10), args.get(2).map(Into::into)).await),
        Some("cost") => save("cost", cost().await),
        Some("warm") => save(
            "warm",
            warm(arg(&args, 1, 300), args.iter().skip(2).map(Into::into).collect()).await,
        ),
        Some("spread") => save("spread", spread(arg(&args, 1, 1000), arg(&args, 2, 50), arg(&args, 3, 32)).await),
        Some("storm") => save(
            "expiry_storm",
            storm::storm(
                arg(&args, 1, 1000),
                arg(&args, 2, 50),
                arg(&args, 3, 32),
                chrono::Duration::seconds(arg(&args, 4, SWEEP_GRACE_SECONDS) as i64),
                Duration::from_secs(arg(&args, 5, 1) as u64),
            )
            .await,
        ),
        Some("hot") => save("hot_sku", hot::hot_sku(arg(&args, 1, 50_000) as i64, arg(&args, 2, 400))),
        Some("curve") => save("curve", curve(arg(&args, 1, 2000), arg(&args, 2, 200)).await),
        Some("batch") => save("batch_holds", batch_holds(arg(&args, 1, 600), arg(&args, 2, 64)).await),
        Some("events") => save(
            "events_out",
            events::events_out(arg(&args, 1, 1000), arg(&args, 2, 50), arg(&args, 3, 32)).await,
        ),
        Some("ledger") => {
            let sizes: Vec<u64> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
            let sizes = if sizes.is_empty() { vec![1_000, 100_000] } else { sizes };
            save("ledger", ledger::ledger(&sizes).await)
        }
        Some("all") => {
            save("curve", curve(2000, 200).await);
            save("flash_sale_buckets", flash_sale(2000, 200, 64, 8).await);
            save("walk", walk(200, 16).await);
            save("batch_holds", batch_holds(600, 64).await);
            save("spread", spread(1000, 50, 32).await);
            save("expiry", expiry_json(200, 2).await);
            save(
                "expiry_storm",
                storm::storm(1000, 50, 32, chrono::Duration::seconds(SWEEP_GRACE_SECONDS as i64), Duration::from_secs(1))
                    .await,
            );
            save("cost", cost().await);
            save("cold_start", cold_start(10, None).await);
            save("order_lists", lists().await);
            save("hot_sku", hot::hot_sku(50_000, 400));
            save("ledger", ledger::ledger(&[1_000, 100_000]).await);
            save("events_out", events::events_out(1000, 50, 32).await);
            save("events_out_light", events::events_out(100, 50, 1).await);
        }
        _ => eprintln!(
            "usage: bench all | flash [BUYERS] [UNITS] [C] [BUCKETS] | walk [USERS] [C] | batch [CARTS] [C] | spread [N] [PRODUCTS] [C] | events [N] [PRODUCTS] [C] | lists | cold [RUNS] [DIR] | warm [N] DIR.. | cost | reserve [N] [C,..] | expiry [N] [TTL] | orders [SINGLE] [SPREAD] [USERS]"
        ),
    }
}

/// `n` holds of one unit, `c` at a time, over HTTP: `buyer(i)` names the `i`th buyer and
/// the product they hold. The status and latency (ms) of each.
async fn reserve_units(
    gw: &TestGateway,
    n: usize,
    c: usize,
    buyer: impl Fn(usize) -> (String, String),
) -> Vec<(u16, f64)> {
    stream::iter((0..n).map(buyer))
        .map(|(user, product)| async move {
            let t = token(&user, false);
            let sent = Instant::now();
            let r =
                gw.post("/api/reservations", Some(&t), json!({"product_id": product, "quantity": 1})).await;
            (r.status, sent.elapsed().as_secs_f64() * 1000.0)
        })
        .buffer_unordered(c)
        .collect()
        .await
}

/// `make dev`'s shape: `n` buyers reserve one unit each of `products` products (stock
/// for all), `c` at a time, through the gateway while the stream poller writes the audit
/// log from the table's stream, as it does under `make dev`. The poller's store is its
/// own, so the DynamoDB requests of the request path and of the audit path are counted
/// apart; the audit path is measured until every entry is in. Beside it, the bare
/// engine's rate for the reservation's transaction at the same concurrency.
async fn spread(n: usize, products: usize, c: usize) -> serde_json::Value {
    let app = app_on_own_table(&shared::store::schema::TABLE).await;
    let gw = gateway_for(app.clone()).await;
    let mut ids = Vec::new();
    for _ in 0..products {
        ids.push(gw.product(json!({ "main": n })).await);
    }
    let poller = app_beside(&app).await;
    start_audit_poller(&poller).await;
    let client = raw_client().await;
    let audit_table = app.store.audit_table().to_string();
    let count_entries = || {
        let (client, table) = (client.clone(), audit_table.clone());
        async move {
            let mut total = 0i64;
            let mut start = None;
            loop {
                let out = client
                    .scan()
                    .table_name(&table)
                    .select(aws_sdk_dynamodb::types::Select::Count)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .expect("count");
                total += i64::from(out.count);
                start = out.last_evaluated_key;
                if start.is_none() {
                    return total;
                }
            }
        }
    };
    // The audit log catches up with the product creations first.
    let settled = |at_least: i64| {
        let count_entries = &count_entries;
        async move {
            let (mut last, mut still) = (-1, 0);
            loop {
                let now = count_entries().await;
                still = if now == last && now >= at_least { still + 1 } else { 0 };
                if still >= 8 {
                    return now;
                }
                last = now;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    let entries_before = settled(products as i64).await;
    let (req0, audit0) = (gw.app.store.metrics().snapshot(), poller.store.metrics().snapshot());
    let run = ulid::Ulid::new().to_string();
    let started = Instant::now();
    let results =
        reserve_units(&gw, n, c, |i| (format!("spread-{run}-{i}"), ids[i % products].clone())).await;
    let wall = started.elapsed().as_secs_f64();
    let request_path = gw.app.store.metrics().snapshot() - req0;
    let ok = results.iter().filter(|r| r.0 == 201).count();
    let entries = settled(entries_before + ok as i64).await - entries_before;
    let drained = started.elapsed().as_secs_f64();
    let audit_path = poller.store.metrics().snapshot() - audit0;
    let bare = bare_transactions(&app, n, c).await;
    let per = |x: u64| x as f64 / ok.max(1) as f64;
    let latency = stats(results.iter().map(|r| r.1).collect());
    println!(
        "spread: {n} reservations over {products} products, concurrency {c}, audit poller running: {:.0} reservations/s ({ok} ok) over {wall:.1} s; audit log complete after {drained:.1} s",
        n as f64 / wall
    );
    println!("  latency: {}", show(&latency));
    println!(
        "  DynamoDB requests per reservation: request path {:.2}, audit path {:.2} ({:.2} entries per reservation; one PutItem each before batching), total {:.2}",
        per(request_path.requests),
        per(audit_path.requests),
        entries as f64 / ok.max(1) as f64,
        per(request_path.requests + audit_path.requests)
    );
    println!(
        "  bare reservation transaction at concurrency {c}: {:.0}/s, {}",
        bare["per_second"].as_f64().unwrap_or(f64::NAN),
        show(&bare)
    );
    json!({
        "reservations": n, "products": products, "concurrency": c, "ok": ok,
        "reservations_per_second": n as f64 / wall, "latency": latency, "audit_complete_after_s": drained,
        "requests_per_reservation": {"request_path": per(request_path.requests), "audit_path": per(audit_path.requests),
            "audit_entries": entries as f64 / ok.max(1) as f64},
        "bare_transaction": bare,
    })
}

/// `carts` buyers each hold a three-line cart (three products, one unit each, stock for
/// every cart), `c` at a time: throughput, latency, DynamoDB requests and write units per
/// cart.
async fn batch_holds(carts: usize, c: usize) -> serde_json::Value {
    let gw = gateway().await;
    // Stock for every cart and the five warm-up carts.
    let units = carts as i64 + 5;
    let products = [
        gw.product(json!({"main": units})).await,
        gw.product(json!({"main": units})).await,
        gw.product(json!({"main": units})).await,
    ];
    let cart = json!({"items": products.iter().map(|p| json!({"product_id": p, "quantity": 1})).collect::<Vec<_>>()});
    // Warm the instance's product terms and DynamoDB Local.
    for i in 0..5 {
        gw.post("/api/reservations/batch", Some(&token(&format!("warm-{i}"), false)), cart.clone()).await;
    }
    let tokens: Vec<String> =
        (0..carts).map(|i| token(&format!("cart-{i}-{}", ulid::Ulid::new()), false)).collect();
    let before = gw.app.store.metrics().snapshot();
    let started = Instant::now();
    let results: Vec<(u16, f64)> = stream::iter(&tokens)
        .map(|t| {
            let (gw, cart) = (&gw, cart.clone());
            async move {
                let sent = Instant::now();
                let r = gw.post("/api/reservations/batch", Some(t), cart).await;
                (r.status, sent.elapsed().as_secs_f64() * 1000.0)
            }
        })
        .buffer_unordered(c)
        .collect()
        .await;
    let secs = started.elapsed().as_secs_f64();
    let cost = gw.app.store.metrics().snapshot() - before;
    let held = results.iter().filter(|(s, _)| *s == 201).count();
    let ms: Vec<f64> = results.iter().map(|(_, ms)| *ms).collect();
    let latency = stats(ms);
    println!(
        "batch holds: {carts} three-line carts, concurrency {c}: {:.0} carts/s over {secs:.1} s",
        carts as f64 / secs
    );
    println!("  held {held}, other {}", carts - held);
    println!(
        "  DynamoDB requests per cart {:.2}, write units per cart {:.1}",
        cost.requests as f64 / carts as f64,
        cost.write_units / carts as f64
    );
    println!("  latency: {}", show(&latency));
    json!({"carts": carts, "concurrency": c, "carts_per_second": carts as f64 / secs, "held": held,
           "requests_per_cart": cost.requests as f64 / carts as f64, "write_units_per_cart": cost.write_units / carts as f64,
           "latency": latency})
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(1)
}

async fn reserve(n: usize, concurrencies: &str) {
    let gw = gateway().await;
    for c in concurrencies.split(',').filter_map(|c| c.parse::<usize>().ok()) {
        let product = gw.product(json!({"main": 1_000_000})).await;
        // Warm the connection pools and the JIT of DynamoDB Local.
        for _ in 0..10 {
            gw.post(
                "/api/reservations",
                Some(&token("warmup", false)),
                json!({"product_id": product, "quantity": 1}),
            )
            .await;
        }
        let started = Instant::now();
        let results = reserve_units(&gw, n, c, |i| (format!("bench-{i}"), product.clone())).await;
        let wall = started.elapsed().as_secs_f64();
        let ok: Vec<f64> = results.iter().filter(|(s, _)| *s == 201).map(|(_, ms)| *ms).collect();
        println!(
            "POST /api/reservations  n={n} concurrency={c}: {} ok, {} other; {:.0} req/s; {}",
            ok.len(),
            results.len() - ok.len(),
            n as f64 / wall,
            summary(ok)
        );
    }
}

async fn expiry(n: usize, ttl: u64) -> Vec<f64> {
    let _lock = sweep_lock().await;
    let mut app = app_with_clock(Arc::new(SystemClock)).await;
    app.config.reservation_ttl = chrono::Duration::seconds(i64::try_from(ttl).unwrap_or(2));
    let app = gateway::scheduler::with_local_scheduler(
        app,
        Duration::from_secs(3600),
        shared::jobs::SweepSettings { per_shard: 250, grace: stockhold_tests::NO_GRACE },
    )
    .expect("scheduler");
    let gw = gateway_for(app).await;
    let product = gw.product(json!({"main": n})).await;
    let mut ids = Vec::new();
    for i in 0..n {
        let r = gw
            .post(
                "/api/reservations",
                Some(&token(&format!("exp-{i}"), false)),
                json!({"product_id": product, "quantity": 1}),
            )
            .await;
        ids.push(r.body["id"].as_str().unwrap_or_default().to_string());
    }
    let admin = token("root", true);
    // Wait (bounded) for every hold to be expired, then read when each went back on sale.
    let give_up = Instant::now() + Duration::from_secs(ttl + 60);
    loop {
        let (_, reserved, _) = gw.stock_of(&product, "main").await;
        if reserved == 0 || Instant::now() > give_up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut delays = Vec::new();
    for id in &ids {
        let r = gw.get(&format!("/api/reservations/{id}"), Some(&admin)).await;
        let at = |k: &str| chrono::DateTime::parse_from_rfc3339(r.body[k].as_str().unwrap_or_default()).ok();
        if let (Some(expires), Some(updated)) = (at("expires_at"), at("updated_at")) {
            delays.push((updated - expires).num_milliseconds() as f64);
        }
    }
    println!(
        "expiry via local scheduler  n={n} ttl={ttl}s: {} measured; delay from expires_at to units back: {}",
        delays.len(),
        summary(delays.clone())
    );
    delays
}

fn bench_order(user: &str, i: usize, base: chrono::DateTime<chrono::Utc>) -> shared::domain::order::Order {
    use shared::domain::order::OrderStatus;
    // Deterministic spread of statuses, totals and times (a cheap LCG, no extra crate).
    let r = (i as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) >> 33;
    let created = base + chrono::Duration::seconds(i64::try_from(r % 5_000_000).unwrap_or(0));
    let status = OrderStatus::ALL[usize::try_from(r % 6).unwrap_or(0)];
    let price = i64::try_from(100 + r % 100_000).unwrap_or(100);
    let quantity = i64::try_from(1 + r % 3).unwrap_or(1);
    one_line_order(user, status, (quantity, price), created)
}

async fn load(app: &shared::service::App, orders: Vec<shared::domain::order::Order>) {
    let started = Instant::now();
    let total = orders.len();
    let chunks: Vec<Vec<_>> = orders.chunks(250).map(<[_]>::to_vec).collect();
    stream::iter(chunks)
        .for_each_concurrent(4, |chunk| async move {
            import_orders(app, &chunk).await;
        })
        .await;
    let secs = started.elapsed().as_secs_f64();
    println!("loaded {total} orders in {secs:.1} s ({:.0} items/s)", total as f64 / secs);
}

async fn orders(single: usize, spread: usize, users: usize) -> serde_json::Value {
    let app = app_on_own_table(&TABLE_WITHOUT_STREAM).await;
    let base = chrono::Utc::now() - chrono::Duration::days(90);
    let mut all: Vec<_> = (0..single).map(|i| bench_order(HEAVY, i, base)).collect();
    all.extend(
        (0..spread).map(|i| bench_order(&format!("bench-user-{}", i % users.max(1)), single + i, base)),
    );
    load(&app, all).await;
    measure_shapes(&app, base).await
}

const HEAVY: &str = "bench-heavy-user";

/// Walks 25 pages (limit 20) of each query shape and prints, per shape: page latency
/// p50/p99, Query calls per page, items read per item returned, read units per page.
async fn measure_shapes(
    app: &shared::service::App,
    base: chrono::DateTime<chrono::Utc>,
) -> serde_json::Value {
    use shared::domain::caller::Caller;
    use shared::domain::order_query::OrderQuery;
    let mid = shared::domain::time::format_time(base + chrono::Duration::days(20));
    let late = shared::domain::time::format_time(base + chrono::Duration::days(40));
    let user = Caller { user_id: HEAVY.into(), is_admin: false };
    let admin = Caller { user_id: "bench-admin".into(), is_admin: true };
    /// A named query shape: who asks, and with which parameters.
    type Shape<'a> = (&'a str, &'a Caller, Vec<(&'a str, String)>);
    let shapes: Vec<Shape> = vec![
        ("user: newest", &user, vec![("sort", "newest".into())]),
        ("user: oldest", &user, vec![("sort", "oldest".into())]),
        ("user: highest_value", &user, vec![("sort", "highest_value".into())]),
        ("user: lowest_value", &user, vec![("sort", "lowest_value".into())]),
        ("user: status=pending, newest", &user, vec![("status", "pending".into())]),
        (
            "user: status=pending,shipped + created range",
            &user,
            vec![
                ("status", "pending,shipped".into()),
                ("created_from", mid.clone()),
                ("created_to", late.clone()),
            ],
        ),
        (
            "user: total range, highest_value",
            &user,
            vec![
                ("sort", "highest_value".into()),
                ("min_total_cents", "20000".into()),
                ("max_total_cents", "60000".into()),
            ],
        ),
        (
            "user: total range, newest (filter)",
            &user,
            vec![("min_total_cents", "20000".into()), ("max_total_cents", "30000".into())],
        ),
        (
            "user: created range, lowest_value (filter)",
            &user,
            vec![
                ("sort", "lowest_value".into()),
                ("created_from", mid.clone()),
                ("created_to", late.clone()),
            ],
        ),
        ("admin: all, newest", &admin, vec![("sort", "newest".into())]),
        ("admin: all, highest_value", &admin, vec![("sort", "highest_value".into())]),
        ("admin: status=pending, newest", &admin, vec![("status", "pending".into())]),
        // The heavy user: the only one with orders at both sizes.
        ("admin: user_id, newest", &admin, vec![("user_id", HEAVY.into())]),
    ];
    println!(
        "{:<46} {:>9} {:>9} {:>9} {:>12} {:>10}",
        "query (limit 20, 25 pages)", "p50 ms", "p99 ms", "queries", "read/ret", "RCU/page"
    );
    let mut out = Vec::new();
    for (name, caller, params) in shapes {
        let params: std::collections::BTreeMap<String, String> =
            params.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let query = OrderQuery::from_params(&params).expect("query");
        let (mut ms, mut queries, mut read, mut returned, mut rcu, mut pages) =
            (Vec::new(), 0u64, 0u64, 0u64, 0.0, 0u64);
        let mut cursor: Option<String> = None;
        for _ in 0..25 {
            // Pages are read one at a time, so the store's counters around one are its cost.
            let before = app.store.metrics().snapshot();
            let t = Instant::now();
            let page = app.list_orders(caller, query.clone(), 20, cursor.as_deref()).await.expect("page");
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            let cost = app.store.metrics().snapshot() - before;
            queries += cost.requests;
            read += cost.scanned;
            returned += page.items.len() as u64;
            rcu += cost.read_units;
            pages += 1;
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        ms.sort_by(f64::total_cmp);
        let row = json!({
            "shape": name, "p50_ms": percentile(&ms, 50.0), "p99_ms": percentile(&ms, 99.0),
            "queries_per_page": queries as f64 / pages as f64,
            "items_read_per_item_returned": read as f64 / returned.max(1) as f64,
            "read_units_per_page": rcu / pages as f64,
        });
        println!(
            "{:<46} {:>9.1} {:>9.1} {:>9.1} {:>12.2} {:>10.1}",
            name,
            percentile(&ms, 50.0),
            percentile(&ms, 99.0),
            queries as f64 / pages as f64,
            read as f64 / returned.max(1) as f64,
            rcu / pages as f64
        );
        out.push(row);
    }
    serde_json::Value::Array(out)
}

/// The list shapes at 1,000 orders, then at 50,000 (10,000 of them the heavy user's),
/// and the ratio of their p50s.
async fn lists() -> serde_json::Value {
    let app = app_on_own_table(&TABLE_WITHOUT_STREAM).await;
    let base = chrono::Utc::now() - chrono::Duration::days(90);
    load(&app, (0..1_000).map(|i| bench_order(HEAVY, i, base)).collect()).await;
    println!("order list at 1,000 orders:");
    let small = measure_shapes(&app, base).await;
    let mut more: Vec<_> = (1_000..10_000).map(|i| bench_order(HEAVY, i, base)).collect();
    more.extend((0..40_000).map(|i| bench_order(&format!("bench-user-{}", i % 500), 10_000 + i, base)));
    load(&app, more).await;
    println!("order list at 50,000 orders:");
    let large = measure_shapes(&app, base).await;
    let ratios: Vec<serde_json::Value> = small
        .as_array()
        .into_iter()
        .flatten()
        .zip(large.as_array().into_iter().flatten())
        .map(|(s, l)| {
            let r = l["p50_ms"].as_f64().unwrap_or(f64::NAN) / s["p50_ms"].as_f64().unwrap_or(f64::NAN);
            println!("  p50 at 50k / at 1k  {:<46} {r:.2}", s["shape"].as_str().unwrap_or(""));
            json!({"shape": s["shape"], "p50_ratio_50k_over_1k": r})
        })
        .collect();
    json!({"at_1k": small, "at_50k": large, "ratios": ratios})
}

/// Writes `target/bench/<name>.json` with the machine's core count and the git revision.
fn save(name: &str, results: serde_json::Value) {
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let doc = json!({"benchmark": name, "cores": num_cpus(), "git_revision": rev, "at": chrono::Utc::now().to_rfc3339(), "results": results});
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(dir.join(format!("{name}.json")), serde_json::to_vec_pretty(&doc).unwrap_or_default())
    });
    if let Err(e) = written {
        eprintln!("could not write {name}.json: {e}");
    }
}

fn stats(mut ms: Vec<f64>) -> serde_json::Value {
    ms.sort_by(f64::total_cmp);
    json!({"n": ms.len(), "p50_ms": percentile(&ms, 50.0), "p95_ms": percentile(&ms, 95.0), "p99_ms": percentile(&ms, 99.0), "max_ms": ms.last().copied().unwrap_or(f64::NAN)})
}

fn show(v: &serde_json::Value) -> String {
    format!(
        "p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  (n={})",
        v["p50_ms"].as_f64().unwrap_or(f64::NAN),
        v["p95_ms"].as_f64().unwrap_or(f64::NAN),
        v["p99_ms"].as_f64().unwrap_or(f64::NAN),
        v["n"]
    )
}

/// N distinct buyers race for S units through the local gateway over HTTP, C at a time;
/// then the bare `TransactWriteItems` a reservation needs, issued directly with the SDK
/// at the same concurrency, as the baseline. With `buckets` > 1 the product's stock is
/// split over that many buckets (hot-item mode), and the figure to watch is DynamoDB
/// requests per request: the reads and gathers the buckets cost.
async fn flash_sale(buyers: usize, units: usize, c: usize, buckets: usize) -> serde_json::Value {
    if buckets == 1 {
        return fair_flash_sale(buyers, units, c, 1).await;
    }
    let gw = gateway().await;
    // A short sale first, so that no cold connection or first-use cost lands in the figures.
    fair::service_sale(&gw, 20, 10, 4, 1, 1).await;
    let (sale, (on_hand, reserved, available)) = fair::service_sale(&gw, buyers, units, c, 1, buckets).await;
    let sold = sale.ok.len();
    println!(
        "flash sale: {buyers} buyers, {units} units in {buckets} bucket(s), concurrency {c}: {:.0} req/s over {:.1} s",
        sale.per_second(),
        sale.wall_s
    );
    let per_request = sale.requests as f64 / buyers as f64;
    println!(
        "  DynamoDB requests per HTTP request {per_request:.2}, write units per unit sold {:.1}",
        sale.write_units / sold.max(1) as f64
    );
    println!(
        "  sold {sold}, rejected {}, other {}, oversold {}",
        sale.refused.len(),
        sale.other,
        sold.saturating_sub(units)
    );
    println!("  final stock on_hand/reserved/available = {on_hand}/{reserved}/{available}");
    println!("  successes:  {}", show(&stats(sale.ok.clone())));
    println!("  rejections: {}", show(&stats(sale.refused.clone())));
    json!({
        "buyers": buyers, "units": units, "concurrency": c, "stock_buckets": buckets,
        "dynamodb_requests_per_request": per_request, "write_units": sale.write_units, "read_units": sale.read_units,
        "final_stock": {"on_hand": on_hand, "reserved": reserved, "available": available},
        "sale": sale.json(units),
    })
}

/// The flash sale on both sides, the same sale (`fair`): `buyers` buyers, one unit of
/// each of `lines` products (`units` each), `c` at a time. The bare engine first, then
/// the service, then the bare engine making the service's calls, each after a warm-up;
/// then (one line only) the old bare figure (stock for every buyer, successes only, two
/// items), kept as a row for comparison with earlier runs.
async fn fair_flash_sale(buyers: usize, units: usize, c: usize, lines: usize) -> serde_json::Value {
    let gw = gateway().await;
    let table = gw.app.store.table().to_string();
    fair::bare_sale(&table, 20, 10, 4, lines, fair::Bare::Transact).await;
    fair::service_sale(&gw, 20, 10, 4, lines, 1).await;
    println!("flash sale, fair: {buyers} buyers, {lines} line(s) of one unit, {units} units per product, concurrency {c}");
    let bare = fair::bare_sale(&table, buyers, units, c, lines, fair::Bare::Transact).await;
    let (service, (on_hand, reserved, available)) = fair::service_sale(&gw, buyers, units, c, lines, 1).await;
    let read_first = fair::bare_sale(&table, buyers, units, c, lines, fair::Bare::ReadFirst).await;
    let mut out = fair::report(&service, &bare, &read_first, units);
    println!("  service final stock on_hand/reserved/available = {on_hand}/{reserved}/{available}");
    if lines == 1 {
        let old = bare_transactions(&gw.app, buyers, c).await;
        println!(
            "  old bare row (2-item transaction, stock for every buyer, successes only): {}",
            show(&old)
        );
        out["old_bare_transaction"] = old;
    }
    out["buyers"] = json!(buyers);
    out["units"] = json!(units);
    out["concurrency"] = json!(c);
    out["lines"] = json!(lines);
    out["final_stock"] = json!({"on_hand": on_hand, "reserved": reserved, "available": available});
    out
}

/// The fair sale at concurrency 1, 16, 64 and 256, and as a 5-line cart at 64: one
/// compact table at the end, service over bare for each shape.
async fn curve(buyers: usize, units: usize) -> serde_json::Value {
    let mut rows = Vec::new();
    for (c, lines) in [(1, 1), (16, 1), (64, 1), (256, 1), (64, 5)] {
        let r = fair_flash_sale(buyers, units, c, lines).await;
        rows.push(r);
    }
    println!("curve: {buyers} buyers, {units} units per product (service / bare; bare+read in brackets)");
    println!(
        "  {:>5} {:>5} | {:>9} {:>9} {:>7} | {:>17} | {:>17} | {:>8}",
        "c", "lines", "service/s", "bare/s", "ratio", "success p50 ratio", "refusal p50 ratio", "oversold"
    );
    for r in &rows {
        let f = |side: &str, k: &str| r[side][k].as_f64().unwrap_or(f64::NAN);
        let q = |side: &str, o: &str| r[side][o]["p50_ms"].as_f64().unwrap_or(f64::NAN);
        println!(
            "  {:>5} {:>5} | {:>9.0} {:>9.0} {:>7.2} | {:>6.2} ({:>6.2})   | {:>6.2} ({:>6.2})   | {:>8}",
            r["concurrency"].as_u64().unwrap_or(0),
            r["lines"].as_u64().unwrap_or(0),
            f("service", "requests_per_second"),
            f("bare", "requests_per_second"),
            f("service", "requests_per_second") / f("bare", "requests_per_second"),
            q("service", "successes") / q("bare", "successes"),
            q("service", "successes") / q("bare_read_first", "successes"),
            q("service", "refusals") / q("bare", "refusals"),
            q("service", "refusals") / q("bare_read_first", "refusals"),
            r["service"]["oversold"].as_u64().unwrap_or(0),
        );
    }
    json!(rows)
}

/// The transaction a reservation commits (stock row update with its condition, and the
/// reservation put), straight through the SDK, `n` times, `c` at a time.
async fn bare_transactions(app: &shared::service::App, n: usize, c: usize) -> serde_json::Value {
    use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
    use shared::store::keys;
    let s = |v: &str| AttributeValue::S(v.to_string());
    let product = format!("bare-{}", ulid::Ulid::new());
    let client = raw_client().await;
    let table = app.store.table().to_string();
    client
        .put_item()
        .table_name(&table)
        .item("pk", s(&keys::product_pk(&product)))
        .item("sk", s(&keys::stock_sk("main")))
        .item("available", AttributeValue::N(n.to_string()))
        .item("reserved", AttributeValue::N("0".into()))
        .send()
        .await
        .expect("seed");
    let started = Instant::now();
    let ms: Vec<f64> = stream::iter(0..n)
        .map(|i| {
            let (client, table, product) = (client.clone(), table.clone(), product.clone());
            async move {
                let update = Update::builder()
                    .table_name(&table)
                    .key("pk", s(&keys::product_pk(&product)))
                    .key("sk", s(&keys::stock_sk("main")))
                    .update_expression("SET available = available - :q, reserved = reserved + :q")
                    .condition_expression("available >= :q")
                    .expression_attribute_values(":q", AttributeValue::N("1".into()))
                    .build()
                    .expect("update");
                let put = Put::builder()
                    .table_name(&table)
                    .item("pk", s(&keys::reservation_pk(&format!("{product}-{i}"))))
                    .item("sk", s(keys::RESERVATION_SK))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .expect("put");
                let sent = Instant::now();
                let r = client
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().update(update).build())
                    .transact_items(TransactWriteItem::builder().put(put).build())
                    .send()
                    .await;
                r.is_ok().then(|| sent.elapsed().as_secs_f64() * 1000.0)
            }
        })
        .buffer_unordered(c)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    let mut out = stats(ms);
    out["per_second"] = json!(n as f64 / started.elapsed().as_secs_f64());
    out
}

/// Many users each reserve, convert to an order, and have it confirmed.
async fn walk(users: usize, c: usize) -> serde_json::Value {
    let gw = gateway().await;
    let product = gw.product(json!({"main": users * 2})).await;
    let admin = token("walk-admin", true);
    let run = ulid::Ulid::new().to_string();
    let started = Instant::now();
    let steps: Vec<(f64, f64, f64)> = stream::iter(0..users)
        .map(|i| {
            let (gw, product, admin, run) = (&gw, product.clone(), admin.clone(), run.clone());
            async move {
                let t = token(&format!("walk-{run}-{i}"), false);
                let t0 = Instant::now();
                let r = gw
                    .post("/api/reservations", Some(&t), json!({"product_id": product, "quantity": 1}))
                    .await;
                let t1 = Instant::now();
                let rid = r.body["id"].as_str().unwrap_or_default().to_string();
                let o = gw.order(&t, &[&rid]).await;
                let t2 = Instant::now();
                let oid = o.body["id"].as_str().unwrap_or_default().to_string();
                gw.set_status(&admin, &oid, "confirmed").await;
                let t3 = Instant::now();
                let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
                (ms(t0, t1), ms(t1, t2), ms(t2, t3))
            }
        })
        .buffer_unordered(c)
        .collect()
        .await;
    let wall = started.elapsed().as_secs_f64();
    let reserve = stats(steps.iter().map(|s| s.0).collect());
    let order = stats(steps.iter().map(|s| s.1).collect());
    let confirm = stats(steps.iter().map(|s| s.2).collect());
    println!(
        "reserve -> order -> confirm: {users} users, concurrency {c}: {:.0} requests/s",
        (3 * users) as f64 / wall
    );
    println!("  reserve: {}\n  order:   {}\n  confirm: {}", show(&reserve), show(&order), show(&confirm));
    json!({"users": users, "concurrency": c, "requests_per_second": (3 * users) as f64 / wall, "reserve": reserve, "order": order, "confirm": confirm})
}

async fn expiry_json(n: usize, ttl: u64) -> serde_json::Value {
    let delays = expiry(n, ttl).await;
    json!({"holds": n, "ttl_seconds": ttl, "delay": stats(delays)})
}

/// DynamoDB requests and capacity units of one operation, from the store's counters.
async fn cost() -> serde_json::Value {
    let gw = gateway().await;
    let m = || gw.app.store.metrics().snapshot();
    let product = gw.product(json!({"main": 1000, "east": 10})).await;
    let user = format!("cost-{}", ulid::Ulid::new());
    let t = token(&user, false);
    let mut rows = Vec::new();
    let mut measure = |name: &str,
                       before: shared::store::metrics::MetricsSnapshot,
                       after: shared::store::metrics::MetricsSnapshot| {
        let d = after - before;
        rows.push(json!({"operation": name, "requests": d.requests, "read_units": d.read_units, "write_units": d.write_units}));
    };
    // Each row is an instance's steady state: a first hold of a product on an instance
    // reads the product's terms once (one GetItem), and is left out.
    let named = json!({"product_id": product, "quantity": 1, "warehouse_id": "main"});
    gw.post("/api/reservations", Some(&t), named.clone()).await;
    let b = m();
    let r1 = gw.post("/api/reservations", Some(&t), named).await;
    measure("reserve (warehouse named)", b, m());
    let b = m();
    gw.post("/api/reservations", Some(&t), json!({"product_id": product, "quantity": 1})).await;
    measure("reserve (warehouse picked of 2)", b, m());
    // One warehouse: once an instance knows the product's terms, no read before the hold.
    let sole = gw.product(json!({"main": 1000})).await;
    let body = json!({"product_id": sole, "quantity": 1});
    gw.post("/api/reservations", Some(&t), body.clone()).await;
    let b = m();
    gw.post("/api/reservations", Some(&t), body).await;
    measure("reserve (warehouse picked, product has 1)", b, m());
    let hot = gw.bucketed_product(json!({"main": 1000}), 8).await;
    let warm = json!({"product_id": hot, "quantity": 1, "warehouse_id": "main"});
    gw.post("/api/reservations", Some(&t), warm).await;
    let b = m();
    gw.post("/api/reservations", Some(&t), json!({"product_id": hot, "quantity": 1, "warehouse_id": "main"}))
        .await;
    measure("reserve (8 buckets, home has units)", b, m());
    let b = m();
    let resp = gw
        .http
        .post(format!("{}/api/reservations", gw.url))
        .bearer_auth(&t)
        .header("idempotency-key", ulid::Ulid::new().to_string())
        .json(&json!({"product_id": product, "quantity": 1, "warehouse_id": "main"}))
        .send()
        .await
        .expect("send");
    let _ = into_reply(resp).await;
    measure("reserve (with Idempotency-Key)", b, m());
    let rid = r1.body["id"].as_str().unwrap_or_default().to_string();
    let b = m();
    let o = gw.order(&t, &[&rid]).await;
    measure("order of 1 reservation", b, m());
    let b = m();
    gw.set_status(&token("cost-admin", true), o.body["id"].as_str().unwrap_or_default(), "confirmed").await;
    measure("order status change", b, m());
    let b = m();
    gw.get("/api/orders?limit=20", Some(&t)).await;
    measure("order list page (customer)", b, m());
    // A return of a delivered order's line, restocked.
    let admin = token("cost-admin", true);
    let oid = o.body["id"].as_str().unwrap_or_default().to_string();
    for status in ["processing", "shipped", "delivered"] {
        gw.set_status(&admin, &oid, status).await;
    }
    let back = json!({"items": [{"product_id": product, "quantity": 1, "restock": true}]});
    let b = m();
    gw.post(&format!("/api/orders/{oid}/returns"), Some(&admin), back).await;
    measure("return (1 line, restocked)", b, m());
    let b = m();
    gw.get(&format!("/api/orders/{oid}/returns"), Some(&t)).await;
    measure("order's returns", b, m());
    // A transfer to a warehouse the product has, then received.
    let move_one =
        json!({"product_id": product, "from_warehouse_id": "main", "to_warehouse_id": "east", "quantity": 1});
    let b = m();
    let sent = gw.post("/api/transfers", Some(&admin), move_one).await;
    measure("transfer create", b, m());
    let tid = sent.body["id"].as_str().unwrap_or_default().to_string();
    let b = m();
    gw.send("POST", &format!("/api/transfers/{tid}/receive"), Some(&admin), None).await;
    measure("transfer receive", b, m());
    let b = m();
    gw.get(&format!("/api/transfers?product_id={product}&limit=20"), Some(&admin)).await;
    measure("transfer list page (product)", b, m());
    let cart = json!({"items": [{"product_id": product, "quantity": 1, "warehouse_id": "main"},
                                {"product_id": hot, "quantity": 1, "warehouse_id": "main"}]});
    let b = m();
    let held = gw.post("/api/reservations/batch", Some(&t), cart).await;
    measure("batch hold (2 lines)", b, m());
    let line = held.body["reservations"][0]["id"].as_str().unwrap_or_default().to_string();
    let b = m();
    gw.send("POST", &format!("/api/reservations/{line}/extend"), Some(&t), None).await;
    measure("extension", b, m());
    let b = m();
    gw.send(
        "PATCH",
        &format!("/api/products/{product}"),
        Some(&token("cost-admin", true)),
        Some(json!({"price_cents": 1234})),
    )
    .await;
    measure("product update (price)", b, m());
    let b = m();
    gw.send(
        "PATCH",
        &format!("/api/products/{product}"),
        Some(&token("cost-admin", true)),
        Some(json!({"max_per_customer": 50})),
    )
    .await;
    measure("product update (limit: 2 rows retagged)", b, m());
    let b = m();
    gw.get(&format!("/api/products/{product}"), None).await;
    measure("product read", b, m());
    let b = m();
    gw.get(&format!("/api/products/{hot}"), None).await;
    measure("product read (8 buckets)", b, m());
    println!(
        "{:<36} {:>9} {:>11} {:>12}",
        "operation (DynamoDB Local)", "requests", "read units", "write units"
    );
    for r in &rows {
        println!(
            "{:<36} {:>9} {:>11.1} {:>12.1}",
            r["operation"].as_str().unwrap_or(""),
            r["requests"],
            r["read_units"].as_f64().unwrap_or(0.0),
            r["write_units"].as_f64().unwrap_or(0.0)
        );
    }
    let reserve = &rows[0];
    let per_million = reserve["write_units"].as_f64().unwrap_or(0.0) * 0.625
        + reserve["read_units"].as_f64().unwrap_or(0.0) * 0.125;
    println!("DynamoDB cost per million reservations (warehouse named, on demand $0.625/M WRU, $0.125/M RRU; index writes not reported by DynamoDB Local): ${per_million:.2}");
    json!({"operations": rows, "usd_per_million_reservations_dynamodb": per_million})
}

/// A minimal Lambda Runtime API (the `next` / `response` / `error` endpoints): hands one
/// event to the function process and reports when its response arrives.
mod runtime_api {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, HeaderValue, StatusCode};
    use axum::routing::{get, post};
    use axum::Router;
    use std::sync::Arc;
    use std::time::Instant;
    use tokio::sync::{mpsc, Mutex};

    pub struct Emulator {
        pub port: u16,
        event: Arc<Mutex<Option<String>>>,
        done: Mutex<mpsc::UnboundedReceiver<(Instant, bool)>>,
    }

    #[derive(Clone)]
    struct Shared {
        event: Arc<Mutex<Option<String>>>,
        done: mpsc::UnboundedSender<(Instant, bool)>,
    }

    async fn next(State(s): State<Shared>) -> (StatusCode, HeaderMap, String) {
        loop {
            if let Some(body) = s.event.lock().await.take() {
                let mut h = HeaderMap::new();
                h.insert("lambda-runtime-aws-request-id", HeaderValue::from_static("bench-request"));
                let deadline = (chrono::Utc::now().timestamp_millis() + 30_000).to_string();
                h.insert(
                    "lambda-runtime-deadline-ms",
                    HeaderValue::from_str(&deadline).unwrap_or(HeaderValue::from_static("0")),
                );
                h.insert(
                    "lambda-runtime-invoked-function-arn",
                    HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:bench"),
                );
                h.insert(
                    "lambda-runtime-trace-id",
                    HeaderValue::from_static("Root=1-00000000-000000000000000000000000"),
                );
                return (StatusCode::OK, h, body);
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// A response counts as a success unless it is an HTTP 5xx: an HTTP function that
    /// could not reach DynamoDB still responds (with 503), and must not pass for a
    /// cold start that worked.
    async fn response(State(s): State<Shared>, Path(_id): Path<String>, body: String) -> StatusCode {
        let failed = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["statusCode"].as_u64())
            .is_some_and(|status| status >= 500);
        let _ = s.done.send((Instant::now(), !failed));
        StatusCode::ACCEPTED
    }

    async fn error(State(s): State<Shared>) -> StatusCode {
        let _ = s.done.send((Instant::now(), false));
        StatusCode::ACCEPTED
    }

    impl Emulator {
        pub async fn start() -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let port = listener.local_addr().expect("addr").port();
            let (tx, rx) = mpsc::unbounded_channel();
            let event = Arc::new(Mutex::new(None));
            let shared = Shared { event: event.clone(), done: tx };
            let app = Router::new()
                .route("/2018-06-01/runtime/invocation/next", get(next))
                .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
                .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
                .route("/2018-06-01/runtime/init/error", post(error))
                .with_state(shared);
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            Self { port, event, done: Mutex::new(rx) }
        }

        /// Queues the event the next `next` call returns.
        pub async fn offer(&self, event: String) {
            *self.event.lock().await = Some(event);
        }

        /// When the response (true) or an error (false) arrived.
        pub async fn outcome(&self) -> Option<(Instant, bool)> {
            let mut rx = self.done.lock().await;
            tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv()).await.ok().flatten()
        }
    }
}

/// Starts the function binary `bin` as Lambda would, against `emulator`, with DynamoDB at
/// `endpoint` (trusting the certificate in `ca` for HTTPS).
fn spawn_function(
    bin: &std::path::Path,
    function: &str,
    emulator: &runtime_api::Emulator,
    endpoint: &str,
    ca: Option<&std::path::Path>,
    app: &shared::service::App,
) -> std::process::Child {
    let mut command = std::process::Command::new(bin);
    command
        .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{}", emulator.port))
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("DYNAMODB_ENDPOINT", endpoint)
        .env("TABLE_NAME", app.store.table())
        .env("AUDIT_TABLE_NAME", app.store.audit_table())
        .env("LOG_FORMAT", "text")
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(ca) = ca {
        command.env("SSL_CERT_FILE", ca);
    }
    command.spawn().expect("start function")
}

/// Seconds the process `pid` has run on a CPU, summed over its threads, to the
/// nanosecond (`/proc/<pid>/task/*/schedstat`; `/proc/<pid>/stat` counts in 10 ms ticks,
/// too coarse for a fraction of a millisecond per request).
fn cpu_on_record(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return f64::NAN };
    let ns: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()))
        .sum();
    ns as f64 / 1e9
}

/// For each build (a directory of function binaries) and function: one instance kept
/// warm, `n` invocations one after another over HTTPS (as in AWS): wall time per
/// invocation (p50/p99) and the instance's CPU time per invocation after the first. The
/// builds are taken in turn, twice, so that a drift of the machine shows as a difference
/// between rounds rather than between builds.
async fn warm(n: usize, dirs: Vec<std::path::PathBuf>) -> serde_json::Value {
    let app = app().await;
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let emulator = runtime_api::Emulator::start().await;
    let plain = std::env::var("DYNAMODB_ENDPOINT").unwrap_or_default();
    let upstream = plain.trim_start_matches("http://").trim_end_matches('/').to_string();
    let tls_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench/tls");
    let (endpoint, ca) = match tls::start(&tls_dir, upstream).await {
        Ok(t) => (t.url.clone(), Some(t.ca_file.clone())),
        Err(e) => {
            println!("(no TLS endpoint: {e}; plain HTTP instead)");
            (plain.clone(), None)
        }
    };
    let cases = [("reserve", "apigw/get-reservation.json"), ("expire", "expire.json")];
    println!(
        "warm instances: {n} invocations each, one at a time, DynamoDB over {}",
        if ca.is_some() { "HTTPS" } else { "HTTP" }
    );
    println!(
        "{:<8} {:<40} {:>9} | {:>9} {:>9} | {:>12}",
        "function", "build", "MB", "p50 ms", "p99 ms", "CPU ms/req"
    );
    let mut rows = Vec::new();
    for round in 1..=2 {
        for (function, fixture) in cases {
            let event = std::fs::read_to_string(events.join(fixture)).expect("fixture");
            for dir in &dirs {
                let bin = dir.join(function);
                let Ok(meta) = std::fs::metadata(&bin) else {
                    println!("{function:<8} {:<40} (binary missing)", dir.display());
                    continue;
                };
                let mut child = spawn_function(&bin, function, &emulator, &endpoint, ca.as_deref(), &app);
                let mut times = Vec::with_capacity(n);
                let mut ok = true;
                let mut cpu_after_first = 0.0;
                for i in 0..=n {
                    emulator.offer(event.clone()).await;
                    let sent = Instant::now();
                    match emulator.outcome().await {
                        Some((at, success)) => {
                            ok &= success;
                            if i > 0 {
                                times.push((at - sent).as_secs_f64() * 1000.0);
                            }
                        }
                        None => ok = false,
                    }
                    if i == 0 {
                        cpu_after_first = cpu_on_record(child.id());
                    }
                }
                let cpu_ms = (cpu_on_record(child.id()) - cpu_after_first) * 1000.0 / n.max(1) as f64;
                let _ = child.kill();
                let _ = child.wait();
                times.sort_by(f64::total_cmp);
                let mb = meta.len() as f64 / 1e6;
                let (p50, p99) = (percentile(&times, 50.0), percentile(&times, 99.0));
                println!(
                    "{function:<8} {:<40} {mb:>9.2} | {p50:>9.2} {p99:>9.2} | {cpu_ms:>12.3}{}",
                    dir.display(),
                    if ok { "" } else { " (some failed)" }
                );
                rows.push(
                    json!({"round": round, "function": function, "build": dir.display().to_string(), "mb": mb,
                    "p50_ms": p50, "p99_ms": p99, "cpu_ms_per_request": cpu_ms, "all_succeeded": ok}),
                );
            }
        }
    }
    json!(rows)
}

/// For each function binary: time from process start to its first response (init plus
/// one invocation against DynamoDB Local), median of `runs`, and its resident memory
/// after that request.
async fn cold_start(runs: usize, dir: Option<std::path::PathBuf>) -> serde_json::Value {
    let app = app().await;
    let dir =
        dir.unwrap_or_else(|| std::env::current_exe().expect("exe").parent().expect("dir").to_path_buf());
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let emulator = runtime_api::Emulator::start().await;
    let plain = std::env::var("DYNAMODB_ENDPOINT").unwrap_or_default();
    let upstream = plain.trim_start_matches("http://").trim_end_matches('/').to_string();
    let tls_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench/tls");
    let tls = match tls::start(&tls_dir, upstream).await {
        Ok(t) => Some(t),
        Err(e) => {
            println!("(no TLS endpoint: {e}; the TLS column stays empty)");
            None
        }
    };
    let cases = [
        ("products", "apigw/get-product.json"),
        ("reserve", "apigw/get-reservation.json"),
        ("order", "apigw/get-order.json"),
        ("transition", "apigw/change-order-status.json"),
        ("list", "apigw/list-orders.json"),
        ("audit-api", "apigw/list-audit.json"),
        ("expire", "expire.json"),
        ("sweep", "sweep.json"),
        ("audit", "audit-stream-batch.json"),
    ];
    println!("cold start: each function binary in {}, {runs} runs, start to first reply", dir.display());
    println!(
        "{:<12} {:>14} {:>10} | {:>14} {:>10} | {:>12}",
        "function", "http p50", "min", "https p50", "min", "RSS after 1"
    );
    let mut rows = Vec::new();
    for (function, fixture) in cases {
        let bin = dir.join(function);
        if !bin.exists() {
            println!("{function:<12} (binary missing: build the workspace binaries with this profile first)");
            continue;
        }
        let event = std::fs::read_to_string(events.join(fixture)).expect("fixture");
        let mut row = json!({"function": function, "runs": runs});
        let mut line = format!("{function:<12}");
        let endpoints =
            [Some((plain.clone(), None)), tls.as_ref().map(|t| (t.url.clone(), Some(t.ca_file.clone())))];
        for (name, endpoint) in ["http", "https"].into_iter().zip(endpoints) {
            let Some((endpoint, ca)) = endpoint else {
                line.push_str(&format!(" {:>14} {:>10} |", "-", "-"));
                continue;
            };
            let mut times = Vec::new();
            let mut rss_kib = 0u64;
            let mut ok = true;
            for _ in 0..runs {
                emulator.offer(event.clone()).await;
                let started = Instant::now();
                let mut child = spawn_function(&bin, function, &emulator, &endpoint, ca.as_deref(), &app);
                match emulator.outcome().await {
                    Some((at, success)) => {
                        ok &= success;
                        times.push((at - started).as_secs_f64() * 1000.0);
                    }
                    None => ok = false,
                }
                let status =
                    std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
                rss_kib = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let _ = child.kill();
                let _ = child.wait();
            }
            times.sort_by(f64::total_cmp);
            let p50 = percentile(&times, 50.0);
            line.push_str(&format!(
                " {p50:>11.1} ms {:>7.1} ms{} |",
                times.first().copied().unwrap_or(f64::NAN),
                if ok { " " } else { "!" }
            ));
            row[name] =
                json!({"start_to_first_response_p50_ms": p50, "min_ms": times.first(), "all_succeeded": ok});
            row["rss_kib_after_one_request"] = json!(rss_kib);
        }
        println!("{line} {:>8} KiB", row["rss_kib_after_one_request"]);
        rows.push(row);
    }
    println!("  (! = some run failed)");
    json!(rows)
}
