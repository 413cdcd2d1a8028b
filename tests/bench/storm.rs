//! The expiry storm: a sale ends and `n` abandoned holds fall due in the same instant,
//! while buyers go on reserving. The holds are made under a clock held still (so they
//! share one `expires_at`, set by a pilot's pace a few seconds after the last is made),
//! then the clock runs on; the local scheduler ends them with
//! the template's bounds (the `expire` function's reserved concurrency as slots, one
//! sweep at a time) and the sweep ticks every `sweep_every` with a grace period.
//!
//! Figures: the delay from `expires_at` to each hold's units being back (its ending
//! transaction's time, stamped on it), p50/p99; new reservations' p50/p99 before the
//! storm and during it; and the DynamoDB writes the expiry side attempted per hold it
//! ended (its own store, so counted apart; failed conditions included, since a failed
//! conditional write still costs a write unit in AWS).

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use serde_json::json;
use shared::service::ports::{Clock, Metric, Metrics};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockhold_tests::*;

/// Stands still at `at` until thawed, then tells the time.
#[derive(Debug)]
struct Held {
    at: DateTime<Utc>,
    thawed: AtomicBool,
}

impl Clock for Held {
    fn now(&self) -> DateTime<Utc> {
        if self.thawed.load(Ordering::Relaxed) {
            shared::adapters::clock::SystemClock.now()
        } else {
            self.at
        }
    }
}

/// Counts the holds the expiry side ended, by schedule and by sweep.
#[derive(Debug, Default)]
struct Ended {
    by_schedule: AtomicU64,
    by_sweep: AtomicU64,
}

impl Metrics for Ended {
    fn count(&self, metric: Metric, n: u64) {
        match metric {
            Metric::ExpiredBySchedule => self.by_schedule.fetch_add(n, Ordering::Relaxed),
            Metric::ExpiredBySweep => self.by_sweep.fetch_add(n, Ordering::Relaxed),
            _ => 0,
        };
    }
}

impl Ended {
    fn total(&self) -> u64 {
        self.by_schedule.load(Ordering::Relaxed) + self.by_sweep.load(Ordering::Relaxed)
    }
}

/// `n` holds over `products` products, made `c` at a time; background buyers reserve
/// `c_bg` at a time from the end of that until the storm is over.
pub async fn storm(
    n: usize,
    products: usize,
    c: usize,
    grace: chrono::Duration,
    sweep_every: Duration,
) -> serde_json::Value {
    // No stream on this table: DynamoDB Local slows down with every stream record a table
    // holds (BENCHMARKS.md, "What limits each figure"), which would be the emulator's
    // cost, not the storm's.
    let base = app_on_own_table(&TABLE_WITHOUT_STREAM).await;
    let buyers_gw = gateway_for(app_beside(&base).await).await;
    let mut ids = Vec::new();
    for _ in 0..products {
        ids.push(buyers_gw.product(json!({ "main": n + 10_000 })).await);
    }
    // A pilot tells how fast holds can be made here; the storm's holds fall due a little
    // after the last of them is made, whatever the machine.
    let pilot = Instant::now();
    let tried = (n / 10).max(20);
    stream::iter(0..tried)
        .map(|i| {
            let (gw, product) = (&buyers_gw, ids[i % products].clone());
            async move {
                gw.post(
                    "/api/reservations",
                    Some(&token(&format!("pilot-{i}"), false)),
                    json!({"product_id": product, "quantity": 1}),
                )
                .await
            }
        })
        .buffer_unordered(c)
        .collect::<Vec<_>>()
        .await;
    let per_hold = pilot.elapsed().as_secs_f64() / tried as f64;
    let ttl = chrono::Duration::milliseconds((per_hold * n as f64 * 1300.0) as i64 + 5_000);
    let held = Arc::new(Held { at: Utc::now(), thawed: AtomicBool::new(false) });
    let mut storm_app = with_clock(base.clone(), held.clone());
    storm_app.config.reservation_ttl = ttl;
    let ended = Arc::new(Ended::default());
    let jobs = app_beside(&storm_app).await.with_metrics(ended.clone());
    let jobs = gateway::scheduler::with_local_scheduler(
        jobs,
        sweep_every,
        shared::jobs::SweepSettings { per_shard: 250, grace },
    )
    .expect("scheduler");
    let storm_gw = gateway_for(storm_app.with_scheduler(jobs.scheduler.clone())).await;
    let made = Instant::now();
    let holds: Vec<(u16, String)> = stream::iter(0..n)
        .map(|i| {
            let (gw, product) = (&storm_gw, ids[i % products].clone());
            async move {
                let r = gw
                    .post(
                        "/api/reservations",
                        Some(&token(&format!("storm-{i}"), false)),
                        json!({"product_id": product, "quantity": 1}),
                    )
                    .await;
                (r.status, r.body["id"].as_str().unwrap_or_default().to_string())
            }
        })
        .buffer_unordered(c)
        .collect()
        .await;
    let made_in = made.elapsed().as_secs_f64();
    held.thawed.store(true, Ordering::Relaxed);
    let due = held.at + ttl;
    let hold_ids: Vec<String> = holds.into_iter().filter(|(s, _)| *s == 201).map(|(_, id)| id).collect();
    let expected = hold_ids.len() as u64;
    println!(
        "expiry storm: {expected} holds over {products} products made in {made_in:.1} s, all due at once {:.1} s later; sweep every {:.0} s with a grace of {} s",
        (due - Utc::now()).num_milliseconds() as f64 / 1000.0,
        sweep_every.as_secs_f64(),
        grace.num_seconds()
    );
    let before = jobs.store.metrics().snapshot();
    // Background buyers until the storm is over.
    let stop = Arc::new(AtomicBool::new(false));
    // Background buyers' holds have the default ten minutes and no schedules: they stay
    // out of the expiry side's figures.
    let background = {
        let (stop, ids) = (stop.clone(), ids.clone());
        let url = buyers_gw.url.clone();
        tokio::spawn(async move { buy_until(url, ids, 8, stop).await })
    };
    let give_up = Instant::now() + Duration::from_secs(ttl.num_seconds() as u64 + 120);
    while ended.total() < expected && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let over_at = Utc::now();
    stop.store(true, Ordering::Relaxed);
    let spent = jobs.store.metrics().snapshot() - before;
    let bought = background.await.unwrap_or_default();
    let ended_n = ended.total();
    let mut delays = Vec::new();
    for chunk in hold_ids.chunks(100) {
        for r in base.store.reservations.get_many(chunk).await.unwrap_or_default() {
            if r.status != shared::domain::reservation::ReservationStatus::Active {
                delays.push((r.updated_at - r.expires_at).num_milliseconds() as f64);
            }
        }
    }
    let phase = |from: DateTime<Utc>, to: DateTime<Utc>| -> Vec<f64> {
        bought
            .iter()
            .filter(|(at, status, _)| *at >= from && *at < to && *status == 201)
            .map(|(_, _, ms)| *ms)
            .collect()
    };
    let quiet = crate::stats(phase(held.at, due));
    let during = crate::stats(phase(due, over_at));
    let p = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let per_hold = spent.write_requests as f64 / ended_n.max(1) as f64;
    println!(
        "  ended {ended_n} of {expected} ({} by schedule, {} by sweep) in {:.1} s after they fell due",
        ended.by_schedule.load(Ordering::Relaxed),
        ended.by_sweep.load(Ordering::Relaxed),
        (over_at - due).num_milliseconds() as f64 / 1000.0
    );
    println!("  units back after expires_at: {}", crate::show(&crate::stats(delays.clone())));
    println!(
        "  expiry side: {per_hold:.2} write requests attempted per hold ended ({} writes, {} requests in all)",
        spent.write_requests, spent.requests
    );
    println!("  new reservations before the storm: {}", crate::show(&quiet));
    println!("  new reservations during the storm: {}", crate::show(&during));
    println!("  p99 during / before = {:.2}", p(&during, "p99_ms") / p(&quiet, "p99_ms"));
    json!({
        "holds": expected, "products": products, "grace_seconds": grace.num_seconds(), "sweep_every_seconds": sweep_every.as_secs_f64(),
        "ended": ended_n, "by_schedule": ended.by_schedule.load(Ordering::Relaxed), "by_sweep": ended.by_sweep.load(Ordering::Relaxed),
        "storm_seconds": (over_at - due).num_milliseconds() as f64 / 1000.0,
        "units_back_after_expires_at": crate::stats(delays),
        "write_requests_per_hold_ended": per_hold,
        "reservations_before": quiet, "reservations_during": during,
        "p99_during_over_before": p(&during, "p99_ms") / p(&quiet, "p99_ms"),
    })
}

/// Reserves one unit of the products in turn, `c` at a time, until `stop`: when each
/// was sent, its status and latency (ms).
async fn buy_until(
    url: String,
    products: Vec<String>,
    c: usize,
    stop: Arc<AtomicBool>,
) -> Vec<(DateTime<Utc>, u16, f64)> {
    let http = reqwest::Client::new();
    let run = ulid::Ulid::new().to_string();
    let (stop, http, products, url) = (&stop, &http, &products, &url);
    stream::iter(0..)
        .take_while(|_| std::future::ready(!stop.load(Ordering::Relaxed)))
        .map(|i: usize| {
            let run = run.clone();
            async move {
                let at = Utc::now();
                let sent = Instant::now();
                let status = http
                    .post(format!("{url}/api/reservations"))
                    .bearer_auth(token(&format!("buyer-{run}-{i}"), false))
                    .json(&json!({"product_id": products[i % products.len()], "quantity": 1}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                (at, status, sent.elapsed().as_secs_f64() * 1000.0)
            }
        })
        .buffer_unordered(c)
        .collect()
        .await
}
