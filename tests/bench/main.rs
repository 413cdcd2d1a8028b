//! Benchmarks that print figures, run against DynamoDB Local through the in-process
//! local gateway (`make bench-reserve`, `make bench-expiry`).
//!
//! - `bench reserve [N] [CONCURRENCY]`: POST /api/reservations latency (p50/p90/p99/max)
//!   and throughput, N requests (default 300) at each concurrency (default 1 and 16).
//! - `bench expiry [N] [TTL]`: N holds (default 100) with a TTL of TTL seconds (default 2)
//!   left to expire through the local scheduler; prints the delay from `expires_at` to the
//!   units being back on sale (the expiring transaction's time, stamped on the hold).

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
        _ => eprintln!("usage: bench reserve [N] [C1,C2,..] | bench expiry [N] [TTL_SECONDS]"),
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
