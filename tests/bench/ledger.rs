//! The ledger's figures: what recording movements costs on the stream side per change,
//! that the hold's own path gains no request, and that a movements page, `as_of` and a
//! reconciliation cost the same at 1,000 and 100,000 movements of one row. The long
//! histories are seeded with the store's batch writer (`Ledger::put_movements`), with the
//! row's head and checkpoint written as the consumer and the hourly job leave them.

use super::{percentile, summary};
use serde_json::{json, Value};
use shared::domain::movement::{Cause, Checkpoint, Counts, Movement, Observed, Reason, RowKey, RowLedger};
use shared::store::metrics::MetricsSnapshot;
use std::time::Instant;
use stockhold_tests::*;

/// Timed repetitions of each read.
const REPS: usize = 25;

pub async fn ledger(sizes: &[u64]) -> Value {
    let gw = gateway().await;
    let admin = token("bench-auditor", true);
    let m = || gw.app.store.metrics().snapshot();
    let mut out = json!({"stream_side": stream_side(&gw).await, "hold_path": hold_path(&gw).await});
    let mut scale = Vec::new();
    for &n in sizes {
        let product = gw.product(json!({"main": 5})).await;
        let row = RowKey { product_id: product.clone(), warehouse_id: "main".into(), bucket: 0 };
        let t0 = chrono::Utc::now() - chrono::Duration::days(30);
        let seeded = Instant::now();
        let head = seed(&gw, &row, n, t0).await;
        let seed_s = seeded.elapsed().as_secs_f64();
        let mid = t0 + chrono::Duration::milliseconds(n as i64 / 2);
        let reads = [
            ("first movements page (limit 20)", format!("/api/products/{product}/movements?limit=20")),
            (
                "movements page from the middle (limit 20)",
                format!(
                    "/api/products/{product}/movements?limit=20&from={}",
                    shared::domain::time::format_time(mid)
                ),
            ),
            (
                "stock as_of the middle",
                format!("/api/products/{product}/stock?as_of={}", shared::domain::time::format_time(mid)),
            ),
            ("reconciliation, checkpoint at the head", format!("/api/products/{product}/reconciliation")),
        ];
        let mut rows = Vec::new();
        // Before any hourly run: a request recounts at most 10,000 movements per row.
        let path = format!("/api/products/{product}/reconciliation");
        rows.push(timed(&gw, &admin, "reconciliation, no checkpoint yet", &path, &m).await);
        let at = head.at;
        let to = Checkpoint { seq: head.seq, at, ledger: head.ledger };
        gw.app.store.ledger.move_checkpoint(&row, &to).await.expect("checkpoint");
        for (name, path) in &reads {
            rows.push(timed(&gw, &admin, name, path, &m).await);
        }
        // The recount a run without any checkpoint yet would make: the whole history read
        // back once (what the checkpoint saves every later run).
        let b = m();
        let started = Instant::now();
        let recount = gw.app.store.ledger.recount(&row, None, None).await.expect("recount");
        let d = m() - b;
        rows.push(json!({"read": "recount of the whole history (no checkpoint)", "ms": started.elapsed().as_secs_f64() * 1e3,
                         "requests": d.requests, "read_units": d.read_units, "movements_read": recount.read,
                         "proves_head": recount.proves(&head)}));
        println!("ledger, {n} movements of one row (seeded in {seed_s:.1} s):");
        for r in &rows {
            println!("  {r}");
        }
        scale.push(json!({"movements": n, "seed_seconds": seed_s, "reads": rows}));
    }
    out["scale"] = json!(scale);
    out
}

/// `REPS` GETs of `path`: latency, and per request DynamoDB requests and read units.
async fn timed(
    gw: &TestGateway,
    admin: &str,
    name: &str,
    path: &str,
    m: &dyn Fn() -> MetricsSnapshot,
) -> Value {
    let r = gw.get(path, Some(admin)).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    let mut ms = Vec::new();
    let b = m();
    for _ in 0..REPS {
        let started = Instant::now();
        let r = gw.get(path, Some(admin)).await;
        ms.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
    }
    let d = m() - b;
    let mut sorted = ms.clone();
    sorted.sort_by(f64::total_cmp);
    json!({"read": name, "p50_ms": percentile(&sorted, 50.0), "p99_ms": percentile(&sorted, 99.0), "latency": summary(ms),
           "requests": d.requests as f64 / REPS as f64, "read_units": d.read_units / REPS as f64,
           "items_evaluated": d.scanned as f64 / REPS as f64})
}

/// `n` movements of `row` from `t0`, one millisecond apart: the product's `received` 5,
/// then holds and releases of 1 in turn; then the head and checkpoint at the last, as the
/// consumer and a consistent hourly run leave them.
async fn seed(gw: &TestGateway, row: &RowKey, n: u64, t0: chrono::DateTime<chrono::Utc>) -> RowLedger {
    let mut counts = Counts::default();
    let mut batch = Vec::with_capacity(1000);
    let mut last_at = t0;
    for seq in 1..=n {
        let (reason, dh, dr) = match seq {
            1 => (Reason::Received, 5, 0),
            s if s % 2 == 0 => (Reason::Hold, 0, 1),
            _ => (Reason::Release, 0, -1),
        };
        counts = Counts { on_hand: counts.on_hand + dh, reserved: counts.reserved + dr };
        last_at = t0 + chrono::Duration::milliseconds(seq as i64);
        batch.push(Movement {
            id: format!("seed-{}-{seq}", row.product_id),
            product_id: row.product_id.clone(),
            warehouse_id: row.warehouse_id.clone(),
            bucket: 0,
            seq,
            at: last_at,
            reason,
            reference: None,
            actor: "bench".into(),
            note: None,
            on_hand_change: dh,
            reserved_change: dr,
            on_hand: counts.on_hand,
            reserved: counts.reserved,
            available: counts.on_hand - counts.reserved,
        });
        if batch.len() == 1000 {
            gw.app.store.ledger.put_movements(&batch).await.expect("seed");
            batch.clear();
        }
    }
    gw.app.store.ledger.put_movements(&batch).await.expect("seed");
    let head = RowLedger {
        seq: n,
        position: format!("{:040}", n),
        at: Some(last_at),
        counts,
        ledger: counts,
        unknown: 0,
        stamp: String::new(),
    };
    gw.app.store.ledger.append(row, None, &head, &[], &[], gw.app.clock.now()).await.expect("head");
    head
}

/// The stream side: `App::record_movements` over batches of 100 records, as the stream
/// delivers them, on one row (a hot product) and spread over 100 rows.
async fn stream_side(gw: &TestGateway) -> Value {
    let mut out = Vec::new();
    for (shape, rows) in [("100 changes of one row", 1usize), ("100 changes over 100 rows", 100)] {
        let rows: Vec<RowKey> = (0..rows)
            .map(|_| RowKey { product_id: unique("bench-ledger"), warehouse_id: "main".into(), bucket: 0 })
            .collect();
        let mut state: Vec<Counts> = vec![Counts::default(); rows.len()];
        let mut writes = Vec::new();
        for i in 0..100u64 {
            let r = i as usize % rows.len();
            let before = state[r];
            let (reason, after) = if before.on_hand == 0 {
                (Reason::Received, Counts { on_hand: 10, reserved: 0 })
            } else if before.reserved == 0 {
                (Reason::Hold, Counts { reserved: 1, ..before })
            } else {
                (Reason::Release, Counts { reserved: 0, ..before })
            };
            state[r] = after;
            writes.push(Observed {
                row: rows[r].clone(),
                position: format!("{:040}", i + 1),
                event_id: format!("bench-{i}"),
                at: chrono::Utc::now(),
                before,
                after,
                stamp: Some((ulid::Ulid::new().to_string(), Cause::new(reason))),
                stamped_before: before.on_hand > 0,
                opened: false,
                actor: "bench".into(),
            });
        }
        let b = gw.app.store.metrics().snapshot();
        let started = Instant::now();
        // With the stock events the consumer writes beside the movements.
        let recorded = gw.app.record_movements(&writes, &shared::jobs::stock_events).await.expect("record");
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let d = gw.app.store.metrics().snapshot() - b;
        let row = json!({"shape": shape, "movements": recorded.written, "ms": ms,
                         "requests_per_change": d.requests as f64 / 100.0,
                         "write_units_per_change": d.write_units / 100.0,
                         "read_units_per_change": d.read_units / 100.0});
        println!("ledger stream side: {row}");
        out.push(row);
    }
    json!(out)
}

/// A hold's own requests with the ledger on (stamp on the row, held-units keys on the
/// reservation): one transaction, as before the ledger.
async fn hold_path(gw: &TestGateway) -> Value {
    let product = gw.product(json!({"main": 100})).await;
    let t = token(&unique("bench-holder"), false);
    let body = json!({"product_id": product, "quantity": 1, "warehouse_id": "main"});
    gw.post("/api/reservations", Some(&t), body.clone()).await;
    let b = gw.app.store.metrics().snapshot();
    let r = gw.post("/api/reservations", Some(&t), body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let d = gw.app.store.metrics().snapshot() - b;
    let row = json!({"operation": "reserve (warehouse named), ledger on", "requests": d.requests,
                     "write_units": d.write_units, "read_units": d.read_units});
    println!("ledger hold path: {row}");
    row
}
