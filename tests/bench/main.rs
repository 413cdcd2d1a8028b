//! Benchmarks that print figures, run against DynamoDB Local through the in-process
//! local gateway (`make bench-reserve`, `make bench-expiry`).
//!
//! - `bench reserve [N] [CONCURRENCY]`: POST /api/reservations latency (p50/p90/p99/max)
//!   and throughput, N requests (default 300) at each concurrency (default 1 and 16).
//! - `bench expiry [N] [TTL]`: N holds (default 100) with a TTL of TTL seconds (default 2)
//!   left to expire through the local scheduler; prints the delay from `expires_at` to the
//!   units being back on sale (the expiring transaction's time, stamped on the hold).
//! - `bench orders [SINGLE] [SPREAD] [USERS]`: loads SINGLE orders (default 10,000) for one
//!   user and SPREAD (default 50,000) across USERS (default 500) users into a table of its
//!   own, then walks 25 pages (limit 20) of each query shape and prints page latency
//!   p50/p99, Query calls per page, items read per item returned and read units per page.

use futures::stream::{self, StreamExt};
use serde_json::json;
use shared::adapters::clock::SystemClock;
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockhold_tests::*;

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
        Some("expiry") => expiry(arg(&args, 1, 100), arg(&args, 2, 2) as u64).await,
        Some("orders") => orders(arg(&args, 1, 10_000), arg(&args, 2, 50_000), arg(&args, 3, 500)).await,
        _ => eprintln!("usage: bench reserve [N] [C1,C2,..] | bench expiry [N] [TTL_SECONDS] | bench orders [SINGLE] [SPREAD] [USERS]"),
    }
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
        let results: Vec<(u16, f64)> = stream::iter(0..n)
            .map(|i| {
                let (gw, product) = (&gw, product.clone());
                async move {
                    let t = token(&format!("bench-{i}"), false);
                    let sent = Instant::now();
                    let r = gw
                        .post("/api/reservations", Some(&t), json!({"product_id": product, "quantity": 1}))
                        .await;
                    (r.status, sent.elapsed().as_secs_f64() * 1000.0)
                }
            })
            .buffer_unordered(c)
            .collect()
            .await;
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

async fn expiry(n: usize, ttl: u64) {
    let _lock = sweep_lock().await;
    let mut app = app_with_clock(Arc::new(SystemClock)).await;
    app.config.reservation_ttl = chrono::Duration::seconds(i64::try_from(ttl).unwrap_or(2));
    let app = gateway::scheduler::with_local_scheduler(app, Duration::from_secs(3600), 250);
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
        summary(delays)
    );
}

fn bench_order(user: &str, i: usize, base: chrono::DateTime<chrono::Utc>) -> shared::domain::order::Order {
    use shared::domain::order::{Order, OrderItem, OrderStatus};
    // Deterministic spread of statuses, totals and times (a cheap LCG, no extra crate).
    let r = (i as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) >> 33;
    let created = base + chrono::Duration::seconds(i64::try_from(r % 5_000_000).unwrap_or(0));
    let status = OrderStatus::ALL[usize::try_from(r % 6).unwrap_or(0)];
    let price = i64::try_from(100 + r % 100_000).unwrap_or(100);
    Order {
        id: shared::adapters::ids::new_id(created),
        user_id: user.to_string(),
        status,
        currency: "USD".into(),
        items: vec![OrderItem {
            product_id: "01BENCHPRODUCT".into(),
            sku: "BENCH-SKU".into(),
            name: "Benchmark item".into(),
            warehouse_id: "main".into(),
            reservation_id: "01BENCHRESERVATION".into(),
            quantity: i64::try_from(1 + r % 3).unwrap_or(1),
            unit_price_cents: price,
        }],
        created_at: created,
        updated_at: created,
    }
}

async fn load(app: &shared::service::App, orders: Vec<shared::domain::order::Order>) {
    let started = Instant::now();
    let total = orders.len();
    let chunks: Vec<Vec<_>> = orders.chunks(250).map(<[_]>::to_vec).collect();
    stream::iter(chunks)
        .for_each_concurrent(4, |chunk| async move {
            app.store.import_orders(&chunk).await.expect("import");
        })
        .await;
    let secs = started.elapsed().as_secs_f64();
    println!("loaded {total} orders in {secs:.1} s ({:.0} items/s)", total as f64 / secs);
}

async fn orders(single: usize, spread: usize, users: usize) {
    use shared::adapters::identity::Caller;
    use shared::domain::order_query::OrderQuery;
    let app = app_on_fresh_table().await;
    let base = chrono::Utc::now() - chrono::Duration::days(90);
    let heavy = "bench-heavy-user".to_string();
    let mut all: Vec<_> = (0..single).map(|i| bench_order(&heavy, i, base)).collect();
    all.extend(
        (0..spread).map(|i| bench_order(&format!("bench-user-{}", i % users.max(1)), single + i, base)),
    );
    load(&app, all).await;
    let mid = shared::adapters::clock::format_time(base + chrono::Duration::days(20));
    let late = shared::adapters::clock::format_time(base + chrono::Duration::days(40));
    let user = Caller { user_id: heavy.clone(), is_admin: false };
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
        ("admin: user_id, newest", &admin, vec![("user_id", "bench-user-7".into())]),
    ];
    println!(
        "{:<46} {:>9} {:>9} {:>9} {:>12} {:>10}",
        "query (limit 20, 25 pages)", "p50 ms", "p99 ms", "queries", "read/ret", "RCU/page"
    );
    for (name, caller, params) in shapes {
        let params: std::collections::BTreeMap<String, String> =
            params.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let query = OrderQuery::from_params(&params).expect("query");
        let (mut ms, mut queries, mut read, mut returned, mut rcu, mut pages) =
            (Vec::new(), 0u64, 0u64, 0u64, 0.0, 0u64);
        let mut cursor: Option<String> = None;
        for _ in 0..25 {
            let t = Instant::now();
            let page = app.list_orders(caller, query.clone(), 20, cursor.as_deref()).await.expect("page");
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            queries += u64::from(page.stats.queries);
            read += page.stats.items_read;
            returned += page.page.items.len() as u64;
            rcu += page.stats.read_units;
            pages += 1;
            cursor = page.page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        ms.sort_by(f64::total_cmp);
        println!(
            "{:<46} {:>9.1} {:>9.1} {:>9.1} {:>12.2} {:>10.1}",
            name,
            percentile(&ms, 50.0),
            percentile(&ms, 99.0),
            queries as f64 / pages as f64,
            read as f64 / returned.max(1) as f64,
            rcu / pages as f64
        );
    }
}
