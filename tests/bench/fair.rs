//! The flash sale measured fairly: the service and the bare engine run the same sale
//! (same buyers, units, concurrency, one product, one warehouse), so their ratio says
//! what the service costs over the least a correct reservation needs.
//!
//! The bare side sends, per buyer, only the transaction a reservation commits, built by
//! hand with the SDK: the stock row's conditional update (`available >= q`, its old image
//! returned when the condition fails), the reservation's put, the customer's allowance
//! and their hold count under the cap. A failed stock condition is a refusal (the image
//! says how many are left, no read); a `TransactionConflict` is retried with the service's
//! own policy (`store::exec::backoff`, `CONFLICT_ATTEMPTS`). Every request is counted and
//! timed, as the service's store counts and times its own.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use futures::stream::{self, StreamExt};
use serde_json::json;
use shared::domain::reservation::{Reservation, ReservationStatus};
use shared::domain::stock::WarehouseId;
use shared::store::exec::{backoff, CONFLICT_ATTEMPTS};
use shared::store::{keys, records};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use stockhold_tests::*;

/// One side's sale: latencies (ms) of successes and refusals, and where the time went.
#[derive(Debug, Default)]
pub struct Sale {
    pub ok: Vec<f64>,
    pub refused: Vec<f64>,
    /// Neither sold nor refused for stock (gave up on conflicts, errors).
    pub other: usize,
    pub wall_s: f64,
    pub requests: u64,
    pub conflict_retries: u64,
    /// Capacity units consumed (the service's side only).
    pub read_units: f64,
    pub write_units: f64,
    /// Summed over buyers: waiting for DynamoDB, waiting before retries.
    pub dynamodb_s: f64,
    pub backoff_s: f64,
    /// This process's CPU time during the sale: on a 2-core machine it is taken from
    /// DynamoDB Local, so it shows up as DynamoDB time too.
    pub cpu_s: f64,
}

/// This process's CPU time so far (user + system; Linux's /proc, NaN elsewhere).
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return f64::NAN };
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // USER_HZ is 100 on every Linux this runs on.
    f.get(11).zip(f.get(12)).map(|(u, s)| (u + s) / 100.0).unwrap_or(f64::NAN)
}

impl Sale {
    fn buyers(&self) -> usize {
        self.ok.len() + self.refused.len() + self.other
    }

    pub fn per_second(&self) -> f64 {
        self.buyers() as f64 / self.wall_s
    }

    /// Milliseconds per buyer: total, in DynamoDB, backing off, and the rest (our code,
    /// HTTP, the scheduler adapter for the service; the SDK itself for the bare side).
    pub fn split(&self) -> [f64; 4] {
        let n = self.buyers().max(1) as f64;
        let total: f64 = self.ok.iter().chain(&self.refused).sum::<f64>() / n;
        let ddb = self.dynamodb_s * 1000.0 / n;
        let wait = self.backoff_s * 1000.0 / n;
        [total, ddb, wait, total - ddb - wait]
    }

    pub fn json(&self, units: usize) -> serde_json::Value {
        let [total, ddb, wait, rest] = self.split();
        json!({
            "requests_per_second": self.per_second(), "wall_s": self.wall_s,
            "sold": self.ok.len(), "refused": self.refused.len(), "other": self.other,
            "oversold": self.ok.len().saturating_sub(units),
            "dynamodb_requests_per_buyer": self.requests as f64 / self.buyers().max(1) as f64,
            "conflict_retries": self.conflict_retries,
            "successes": crate::stats(self.ok.clone()), "refusals": crate::stats(self.refused.clone()),
            "ms_per_buyer": {"total": total, "dynamodb": ddb, "backoff": wait, "rest": rest,
                "cpu_of_this_process": self.cpu_s * 1000.0 / self.buyers().max(1) as f64},
        })
    }
}

/// The service's side: `buyers` distinct buyers, `c` at a time, over HTTP through the
/// local gateway, each holding one unit of each of `lines` products of `units` units in
/// one warehouse, in `buckets` stock buckets (one line: `POST /api/reservations`; more:
/// a batch hold). Returns the sale and the first product's final (on_hand, reserved,
/// available).
pub async fn service_sale(
    gw: &TestGateway,
    buyers: usize,
    units: usize,
    c: usize,
    lines: usize,
    buckets: usize,
) -> (Sale, (i64, i64, i64)) {
    let mut products = Vec::new();
    for _ in 0..lines {
        products.push(gw.bucketed_product(json!({ "main": units }), buckets).await);
    }
    let (path, body) = if lines == 1 {
        ("/api/reservations", json!({"product_id": products[0], "quantity": 1}))
    } else {
        let items: Vec<_> = products.iter().map(|p| json!({"product_id": p, "quantity": 1})).collect();
        ("/api/reservations/batch", json!({ "items": items }))
    };
    let run = ulid::Ulid::new().to_string();
    let before = gw.app.store.metrics().snapshot();
    gw.app.store.take_conflict_retries();
    let cpu = cpu_seconds();
    let started = Instant::now();
    let results: Vec<(u16, String, f64)> = stream::iter(0..buyers)
        .map(|i| {
            let (run, body) = (run.clone(), body.clone());
            async move {
                let t = token(&format!("fair-{run}-{i}"), false);
                let sent = Instant::now();
                let r = gw.post(path, Some(&t), body).await;
                (r.status, r.code().to_string(), sent.elapsed().as_secs_f64() * 1000.0)
            }
        })
        .buffer_unordered(c)
        .collect()
        .await;
    let wall_s = started.elapsed().as_secs_f64();
    let spent = gw.app.store.metrics().snapshot() - before;
    let mut sale = Sale {
        wall_s,
        requests: spent.requests,
        conflict_retries: gw.app.store.take_conflict_retries(),
        read_units: spent.read_units,
        write_units: spent.write_units,
        dynamodb_s: spent.dynamodb_seconds,
        backoff_s: spent.backoff_seconds,
        cpu_s: cpu_seconds() - cpu,
        ..Sale::default()
    };
    for (status, code, ms) in results {
        match (status, code.as_str()) {
            (201, _) => sale.ok.push(ms),
            (409, "insufficient_stock") => sale.refused.push(ms),
            _ => sale.other += 1,
        }
    }
    let stock = gw.stock_of(&products[0], "main").await;
    (sale, stock)
}

/// How the bare side decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bare {
    /// Only the transaction: its failed condition is the refusal.
    Transact,
    /// The service's calls: a consistent `Query` of the product's partition first, a
    /// refusal when it shows too few units, else the transaction. Against the service,
    /// this isolates what our own code costs.
    ReadFirst,
}

/// The bare side of the same sale, straight through the SDK on `table`.
pub async fn bare_sale(table: &str, buyers: usize, units: usize, c: usize, lines: usize, how: Bare) -> Sale {
    let client = raw_client().await;
    let products: Vec<String> = (0..lines).map(|_| format!("bare-{}", ulid::Ulid::new())).collect();
    for product in &products {
        client
            .put_item()
            .table_name(table)
            .item(keys::PK, s(&keys::product_pk(product)))
            .item(keys::SK, s(&keys::stock_sk("main")))
            .item("on_hand", n(units as i64))
            .item("available", n(units as i64))
            .item("reserved", n(0))
            .send()
            .await
            .expect("seed the stock row");
    }
    let counters = Counters::default();
    let cpu = cpu_seconds();
    let started = Instant::now();
    let results: Vec<Outcome> = stream::iter(0..buyers)
        .map(|i| {
            let (client, products, counters) = (&client, &products, &counters);
            async move {
                let user = format!("bare-buyer-{}-{i}", products[0]);
                let items: Vec<_> = products
                    .iter()
                    .flat_map(|p| hold_items(table, p, &user))
                    .chain([count(table, &user, lines)])
                    .collect();
                let sent = Instant::now();
                let mut kind = None;
                if how == Bare::ReadFirst {
                    for product in products {
                        if !in_stock(client, table, product, counters).await {
                            kind = Some(Kind::Refused);
                            break;
                        }
                    }
                }
                let kind = match kind {
                    Some(k) => k,
                    None => transact(client, items, counters).await,
                };
                Outcome { kind, ms: sent.elapsed().as_secs_f64() * 1000.0 }
            }
        })
        .buffer_unordered(c)
        .collect()
        .await;
    let mut sale = Sale {
        wall_s: started.elapsed().as_secs_f64(),
        requests: counters.requests.load(Ordering::Relaxed),
        conflict_retries: counters.retries.load(Ordering::Relaxed),
        dynamodb_s: counters.dynamodb_us.load(Ordering::Relaxed) as f64 / 1e6,
        backoff_s: counters.backoff_us.load(Ordering::Relaxed) as f64 / 1e6,
        cpu_s: cpu_seconds() - cpu,
        ..Sale::default()
    };
    for o in results {
        match o.kind {
            Kind::Sold => sale.ok.push(o.ms),
            Kind::Refused => sale.refused.push(o.ms),
            Kind::Other => sale.other += 1,
        }
    }
    sale
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    dynamodb_us: AtomicU64,
    backoff_us: AtomicU64,
}

enum Kind {
    Sold,
    Refused,
    Other,
}

struct Outcome {
    kind: Kind,
    ms: f64,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The three writes of one line (one unit of `product`), as the service commits them.
fn hold_items(table: &str, product: &str, user: &str) -> Vec<TransactWriteItem> {
    let now = chrono::Utc::now();
    let id = shared::domain::ids::new_id(now);
    let stock = Update::builder()
        .table_name(table)
        .key(keys::PK, s(&keys::product_pk(product)))
        .key(keys::SK, s(&keys::stock_sk("main")))
        .update_expression("SET available = available - :q, reserved = reserved + :q")
        .condition_expression("available >= :q")
        .expression_attribute_values(":q", n(1))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .expect("stock update");
    let hold = Reservation {
        id: id.clone(),
        user_id: user.into(),
        product_id: product.into(),
        warehouse_id: WarehouseId::parse("main").expect("warehouse"),
        quantity: 1,
        status: ReservationStatus::Active,
        expires_at: now + chrono::Duration::minutes(10),
        created_at: now,
        updated_at: now,
        bucket: 0,
    };
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(records::reservation::item(&hold, user).expect("reservation item")))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .expect("reservation put");
    let allowance = Update::builder()
        .table_name(table)
        .key(keys::PK, s(&keys::allowance_pk(product, user)))
        .key(keys::SK, s(keys::ALLOWANCE_SK))
        .update_expression("ADD units :q")
        .expression_attribute_values(":q", n(1))
        .build()
        .expect("allowance");
    vec![
        TransactWriteItem::builder().update(stock).build(),
        TransactWriteItem::builder().put(put).build(),
        TransactWriteItem::builder().update(allowance).build(),
    ]
}

/// The buyer's hold count, `holds` more, under the default cap of 20.
fn count(table: &str, user: &str, holds: usize) -> TransactWriteItem {
    let count = Update::builder()
        .table_name(table)
        .key(keys::PK, s(&keys::holds_pk(user)))
        .key(keys::SK, s(keys::HOLDS_SK))
        .update_expression("ADD active :n")
        .condition_expression("attribute_not_exists(active) OR active <= :room")
        .expression_attribute_values(":n", n(holds as i64))
        .expression_attribute_values(":room", n(20 - holds as i64))
        .build()
        .expect("hold count");
    TransactWriteItem::builder().update(count).build()
}

/// Whether a consistent read of the product's partition shows a unit available.
async fn in_stock(client: &aws_sdk_dynamodb::Client, table: &str, product: &str, k: &Counters) -> bool {
    let sent = Instant::now();
    let r = client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", s(&keys::product_pk(product)))
        .consistent_read(true)
        .send()
        .await;
    k.requests.fetch_add(1, Ordering::Relaxed);
    k.dynamodb_us.fetch_add(sent.elapsed().as_micros() as u64, Ordering::Relaxed);
    let available = |i: &std::collections::HashMap<String, AttributeValue>| {
        i.get("available").and_then(|a| a.as_n().ok()).and_then(|a| a.parse::<i64>().ok())
    };
    r.ok().and_then(|out| out.items).unwrap_or_default().iter().filter_map(available).any(|a| a >= 1)
}

/// Sends the transaction; a failed stock condition is a refusal, a lost race is retried.
async fn transact(client: &aws_sdk_dynamodb::Client, items: Vec<TransactWriteItem>, k: &Counters) -> Kind {
    for attempt in 1..=CONFLICT_ATTEMPTS {
        let sent = Instant::now();
        let r = client.transact_write_items().set_transact_items(Some(items.clone())).send().await;
        k.requests.fetch_add(1, Ordering::Relaxed);
        k.dynamodb_us.fetch_add(sent.elapsed().as_micros() as u64, Ordering::Relaxed);
        let reasons = match r {
            Ok(_) => return Kind::Sold,
            Err(SdkError::ServiceError(e)) => match e.into_err() {
                TransactWriteItemsError::TransactionCanceledException(tc) => {
                    tc.cancellation_reasons.unwrap_or_default()
                }
                _ => return Kind::Other,
            },
            Err(_) => return Kind::Other,
        };
        // A stock row's failed condition (every third item) is a refusal; the old image
        // that comes with it says how many are left (the refusal's body).
        let stock_failed = reasons
            .iter()
            .take(reasons.len() - 1)
            .step_by(3)
            .any(|r| r.code() == Some("ConditionalCheckFailed"));
        if stock_failed {
            return Kind::Refused;
        }
        if !reasons.iter().any(|r| r.code() == Some("TransactionConflict")) || attempt == CONFLICT_ATTEMPTS {
            return Kind::Other;
        }
        k.retries.fetch_add(1, Ordering::Relaxed);
        let wait = backoff(attempt);
        k.backoff_us.fetch_add(wait.as_micros() as u64, Ordering::Relaxed);
        tokio::time::sleep(wait).await;
    }
    Kind::Other
}

/// Prints the two sides and their ratios (service / bare); the JSON of both.
pub fn report(service: &Sale, bare: &Sale, read_first: &Sale, units: usize) -> serde_json::Value {
    let (sv, bv, rv) = (service.json(units), bare.json(units), read_first.json(units));
    let p = |v: &serde_json::Value, side: &str, q: &str| v[side][q].as_f64().unwrap_or(f64::NAN);
    let mut ratios = json!({"throughput": service.per_second() / bare.per_second()});
    println!(
        "  {:<8} {:>7} {:>5} {:>7} {:>8} | {:>22} | {:>22} | {:>26} {:>6}",
        "side",
        "buyers/s",
        "sold",
        "refused",
        "req/buyer",
        "successes p50/p95/p99",
        "refusals p50/p95/p99",
        "ms/buyer: ddb/backoff/rest",
        "cpu ms/buyer"
    );
    for (name, sale, v) in [("service", service, &sv), ("bare", bare, &bv), ("bare+read", read_first, &rv)] {
        let [_, ddb, wait, rest] = sale.split();
        let cpu = sale.cpu_s * 1000.0 / sale.buyers().max(1) as f64;
        println!(
            "  {name:<9} {:>8.0} {:>5} {:>7} {:>9.2} | {:>6.1} {:>6.1} {:>7.1} ms | {:>6.1} {:>6.1} {:>7.1} ms | {ddb:>8.1} {wait:>7.1} {rest:>8.1} {cpu:>6.2}",
            sale.per_second(),
            sale.ok.len(),
            sale.refused.len(),
            v["dynamodb_requests_per_buyer"].as_f64().unwrap_or(f64::NAN),
            p(v, "successes", "p50_ms"),
            p(v, "successes", "p95_ms"),
            p(v, "successes", "p99_ms"),
            p(v, "refusals", "p50_ms"),
            p(v, "refusals", "p95_ms"),
            p(v, "refusals", "p99_ms"),
        );
    }
    for side in ["successes", "refusals"] {
        for q in ["p50_ms", "p95_ms", "p99_ms"] {
            ratios[format!("{side}_{}", q.trim_end_matches("_ms"))] =
                json!(p(&sv, side, q) / p(&bv, side, q));
        }
    }
    println!(
        "  service/bare: throughput {:.2}; successes p50 {:.2} p95 {:.2} p99 {:.2}; refusals p50 {:.2} p95 {:.2} p99 {:.2}",
        ratios["throughput"].as_f64().unwrap_or(f64::NAN),
        ratios["successes_p50"].as_f64().unwrap_or(f64::NAN),
        ratios["successes_p95"].as_f64().unwrap_or(f64::NAN),
        ratios["successes_p99"].as_f64().unwrap_or(f64::NAN),
        ratios["refusals_p50"].as_f64().unwrap_or(f64::NAN),
        ratios["refusals_p95"].as_f64().unwrap_or(f64::NAN),
        ratios["refusals_p99"].as_f64().unwrap_or(f64::NAN),
    );
    println!(
        "  service/(bare+read): throughput {:.2}; successes p50 {:.2}; refusals p50 {:.2}",
        service.per_second() / read_first.per_second(),
        p(&sv, "successes", "p50_ms") / p(&rv, "successes", "p50_ms"),
        p(&sv, "refusals", "p50_ms") / p(&rv, "refusals", "p50_ms"),
    );
    json!({"service": sv, "bare": bv, "bare_read_first": rv, "service_over_bare": ratios})
}
