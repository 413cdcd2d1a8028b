//! A hot SKU on AWS, simulated: what stock buckets gain where DynamoDB Local cannot show
//! it (it has no partitions, no capacity limits and runs one transaction at a time).
//!
//! The model (test code only) stands in for DynamoDB's limits; everything that decides
//! is the service's own: the home bucket (`home_bucket`), the hold's steps
//! (`HoldSteps`: take, read all buckets, plan with `plan_reservation`, gather, refuse,
//! give up), and the executor's retry policy (`backoff`, `CONFLICT_ATTEMPTS`,
//! `SNAPSHOT_ATTEMPTS`). Time is virtual (`virtual_time`), so a run of many
//! seconds of model time takes well under one of real time and is repeatable in shape.
//!
//! Assumptions, printed beside the figures (`Model`):
//! - each bucket row is in a partition of its own, with 1,000 WCU/s and 3,000 RCU/s,
//!   refilled continuously, at most `burst` seconds' worth banked; a request that finds
//!   a partition without the units it needs is throttled (no units charged);
//! - a transactional write costs 2 WCU per item (items under 1 KB), a transactional read
//!   2 RCU per item, charged whether the conditions hold or not and on a conflict;
//! - a transaction holds its items for `lock_ms`; another transaction (write or read)
//!   touching one of them meanwhile is cancelled with `TransactionConflict`;
//! - a client sees a write answered after `write_ms`, a read after `read_ms`, a
//!   throttled request after `reject_ms`;
//! - the reservation's other items (the reservation, allowance, hold count) are in
//!   partitions of their own, per buyer, and never the bottleneck; they are left out.
//! - `named` runs a hold naming its warehouse (terms from memory, no read); `auto` runs
//!   what a hold without `warehouse_id` does: the product has one warehouse,
//!   which the instance's memory of its terms names, so the hold is written at once;
//!   after a refusal, that instance reads the product first (`plan_pick`: a consistent
//!   `Query` of its partition, 1 unit, and for a bucketed product a `TransactGetItems` of
//!   every bucket, 2 units each, cancelled by any transaction in flight on one of them)
//!   until a hold succeeds. Each of the `c` buyers at a time is an instance of its own. A
//!   throttled request is tried as the SDK tries it (4 attempts). A short bucket's re-plan
//!   reads the buckets with a consistent `BatchGetItem` (1 unit each, no conflicts), as
//!   `Stock::buckets` does.

use crate::virtual_time::{now, sleep};
use serde_json::json;
use shared::domain::buckets::{home_bucket, HoldSteps, Step};
use shared::domain::stock::{
    choose_warehouse, plan_pick, PickPlan, StockLevel, Units, WarehouseChoice, WarehouseId, PICK_ATTEMPTS,
};
use shared::store::exec::{backoff, CONFLICT_ATTEMPTS, SNAPSHOT_ATTEMPTS};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// DynamoDB as the simulation assumes it (see the module's list).
#[derive(Debug, Clone, Copy)]
pub struct Model {
    pub wcu_per_s: f64,
    pub rcu_per_s: f64,
    pub burst_s: f64,
    pub write_units_per_item: f64,
    pub read_units_per_item: f64,
    pub lock_ms: u64,
    pub write_ms: u64,
    pub read_ms: u64,
    pub reject_ms: u64,
    /// How a lost race or a throttled request waits before it tries again.
    pub backoff: Backoff,
}

/// Retry waits to compare; the service's is `Service` (`store::exec::backoff`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backoff {
    /// The service's: 10 ms doubling per attempt (up to 640 ms), half fixed, half random.
    Service,
    /// Full jitter: uniformly 0..base doubling per attempt.
    FullJitter { base_ms: u64 },
    /// The service's shape on a smaller step.
    Scaled { base_ms: u64 },
    /// Straight back.
    Immediately,
}

impl Backoff {
    fn wait(self, attempt: u32) -> Duration {
        match self {
            Backoff::Service => backoff(attempt),
            Backoff::FullJitter { base_ms } => {
                Duration::from_millis(fastrand::u64(0..=(base_ms << attempt.min(6))))
            }
            Backoff::Scaled { base_ms } => {
                let step = base_ms << attempt.min(6);
                Duration::from_millis(step / 2 + fastrand::u64(0..step.max(1)))
            }
            Backoff::Immediately => Duration::ZERO,
        }
    }
}

pub const AWS: Model = Model {
    wcu_per_s: 1000.0,
    rcu_per_s: 3000.0,
    burst_s: 0.05,
    write_units_per_item: 2.0,
    read_units_per_item: 2.0,
    lock_ms: 2,
    write_ms: 10,
    read_ms: 5,
    reject_ms: 2,
    backoff: Backoff::Service,
};

struct Partition {
    units: Units,
    busy_until: Duration,
    write_units: f64,
    read_units: f64,
    at: Duration,
}

#[derive(Default, Debug, Clone, Copy)]
struct Counts {
    requests: u64,
    throttled: u64,
    conflicts: u64,
    gathers: u64,
    moved: u64,
}

struct Table {
    model: Model,
    parts: Vec<Partition>,
    counts: Counts,
}

enum Answer<T> {
    Done(T),
    Conflict,
    Throttled,
}

impl Table {
    fn new(model: Model, k: usize, units: i64) -> Self {
        let now = now();
        let parts = shared::domain::buckets::split_evenly(units, k)
            .into_iter()
            .map(|u| Partition {
                units: Units { on_hand: u, reserved: 0, available: u },
                busy_until: now,
                write_units: model.wcu_per_s * model.burst_s,
                read_units: model.rcu_per_s * model.burst_s,
                at: now,
            })
            .collect();
        Self { model, parts, counts: Counts::default() }
    }

    fn refill(&mut self, i: usize, now: Duration) {
        let m = self.model;
        let p = &mut self.parts[i];
        let dt = (now - p.at).as_secs_f64();
        p.write_units = (p.write_units + dt * m.wcu_per_s).min(m.wcu_per_s * m.burst_s);
        p.read_units = (p.read_units + dt * m.rcu_per_s).min(m.rcu_per_s * m.burst_s);
        p.at = now;
    }

    /// A transaction over `items`: throttled, cancelled by a conflict, or run by `apply`,
    /// which checks the conditions and applies all or nothing (and says which).
    fn write(&mut self, items: &[usize], apply: &(dyn Fn(&mut [Partition]) -> bool + Sync)) -> Answer<bool> {
        let now = now();
        self.counts.requests += 1;
        let cost = self.model.write_units_per_item;
        for &i in items {
            self.refill(i, now);
        }
        if items.iter().any(|&i| self.parts[i].write_units < cost) {
            self.counts.throttled += 1;
            return Answer::Throttled;
        }
        for &i in items {
            self.parts[i].write_units -= cost;
        }
        if items.iter().any(|&i| self.parts[i].busy_until > now) {
            self.counts.conflicts += 1;
            return Answer::Conflict;
        }
        for &i in items {
            self.parts[i].busy_until = now + Duration::from_millis(self.model.lock_ms);
        }
        Answer::Done(apply(&mut self.parts))
    }

    /// Every bucket: as one snapshot (`TransactGetItems`: 2 units per item, cancelled by
    /// a transaction in flight on any of them), or as consistent reads of each
    /// (`BatchGetItem`: 1 unit per item, last committed state, no conflicts).
    fn read(&mut self, snapshot: bool) -> Answer<Vec<Units>> {
        let now = now();
        self.counts.requests += 1;
        let cost =
            if snapshot { self.model.read_units_per_item } else { self.model.read_units_per_item / 2.0 };
        for i in 0..self.parts.len() {
            self.refill(i, now);
        }
        if self.parts.iter().any(|p| p.read_units < cost) {
            self.counts.throttled += 1;
            return Answer::Throttled;
        }
        for p in &mut self.parts {
            p.read_units -= cost;
        }
        if snapshot && self.parts.iter().any(|p| p.busy_until > now) {
            self.counts.conflicts += 1;
            return Answer::Conflict;
        }
        Answer::Done(self.parts.iter().map(|p| p.units).collect())
    }

    /// The product's own partition (bucket 0's): one consistent `Query` of its item and
    /// bucket 0's rows, 1 unit.
    fn query_product(&mut self) -> Answer<Units> {
        let now = now();
        self.counts.requests += 1;
        self.refill(0, now);
        let cost = self.model.read_units_per_item / 2.0;
        if self.parts[0].read_units < cost {
            self.counts.throttled += 1;
            return Answer::Throttled;
        }
        self.parts[0].read_units -= cost;
        Answer::Done(self.parts[0].units)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Sold,
    Refused,
    /// 409: racing buyers kept winning (conflicts, or buckets emptied under each plan).
    Conflict,
    /// 503: throttled past the retries.
    Unavailable,
}

type Shared = Arc<Mutex<Table>>;

/// Per hold: how it ended, when (model seconds from the start), its requests, its time (ms).
type Entry = (Outcome, f64, u64, f64);

fn lock(t: &Shared) -> std::sync::MutexGuard<'_, Table> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

/// Attempts the SDK gives a throttled request (`Store::connect`'s retry configuration).
const SDK_ATTEMPTS: u32 = 4;

/// Sends one request until it is answered, as the store's executor does: up to
/// `attempts`, the service's wait between them; an answer takes `answer_ms`, a throttle
/// `reject_ms`; a conflict on the last attempt ends as `on_conflict`, a throttle as 503.
async fn retrying<T>(
    t: &Shared,
    attempts: u32,
    answer_ms: u64,
    on_conflict: Outcome,
    sent: &mut u64,
    mut request: impl FnMut(&mut Table) -> Answer<T>,
) -> Result<T, Outcome> {
    let m = lock(t).model;
    for attempt in 1..=attempts {
        *sent += 1;
        let answer = request(&mut lock(t));
        let give_up = match answer {
            Answer::Done(v) => {
                sleep(Duration::from_millis(answer_ms)).await;
                return Ok(v);
            }
            Answer::Conflict => {
                sleep(Duration::from_millis(answer_ms)).await;
                on_conflict
            }
            Answer::Throttled => {
                sleep(Duration::from_millis(m.reject_ms)).await;
                Outcome::Unavailable
            }
        };
        if attempt == attempts {
            return Err(give_up);
        }
        sleep(m.backoff.wait(attempt)).await;
    }
    Err(on_conflict)
}

/// A transaction over `items` (`Table::write`), retried on conflicts and throttles.
async fn transact(
    t: &Shared,
    items: &[usize],
    apply: &(dyn Fn(&mut [Partition]) -> bool + Sync),
    sent: &mut u64,
) -> Result<bool, Outcome> {
    let ms = lock(t).model.write_ms;
    retrying(t, CONFLICT_ATTEMPTS, ms, Outcome::Conflict, sent, |table| table.write(items, apply)).await
}

/// Every bucket (`Table::read`); a snapshot cancelled past its retries is a 503.
async fn read(t: &Shared, snapshot: bool, sent: &mut u64) -> Result<Vec<Units>, Outcome> {
    let ms = lock(t).model.read_ms;
    retrying(t, SNAPSHOT_ATTEMPTS, ms, Outcome::Unavailable, sent, |table| table.read(snapshot)).await
}

fn take(parts: &mut [Partition], b: usize) -> bool {
    let u = &mut parts[b].units;
    if u.available < 1 {
        return false;
    }
    u.available -= 1;
    u.reserved += 1;
    true
}

fn gather(parts: &mut [Partition], into: usize, donors: &[(usize, i64)]) -> bool {
    if donors.iter().any(|&(d, x)| d == into || parts[d].units.available < x) {
        return false;
    }
    for &(d, x) in donors {
        parts[d].units.available -= x;
        parts[d].units.on_hand -= x;
        parts[into].units.available += x;
        parts[into].units.on_hand += x;
    }
    true
}

/// One buyer's hold of one unit, as the reservation service runs it; `sold_out` is the
/// hint of the instance it runs on (`plan_pick`), `sent` counts its requests. With `auto`
/// the buyer leaves the warehouse to the service: the product has one, which the
/// instance's memory of its terms names.
async fn hold(t: &Shared, k: usize, auto: bool, sold_out: &mut bool, id: &str, sent: &mut u64) -> Outcome {
    let main = WarehouseId::parse("main").unwrap_or_else(|e| panic!("{e}"));
    let named = (!auto).then_some(&main);
    let mut outcome = Outcome::Conflict;
    for _ in 0..PICK_ATTEMPTS {
        let by_read = plan_pick(named, Some(&main), *sold_out) == PickPlan::Read;
        if by_read {
            // The product's own partition, and for a bucketed one every bucket as one
            // snapshot (`Catalogue::get`); refused when the read shows too few units.
            let ms = lock(t).model.read_ms;
            let zero =
                match retrying(t, SDK_ATTEMPTS, ms, Outcome::Unavailable, sent, Table::query_product).await {
                    Ok(units) => units,
                    Err(o) => return o,
                };
            let buckets = if k > 1 {
                match read(t, true, sent).await {
                    Ok(units) => units,
                    Err(o) => return o,
                }
            } else {
                vec![zero]
            };
            let units = Units {
                on_hand: buckets.iter().map(|u| u.on_hand).sum(),
                reserved: buckets.iter().map(|u| u.reserved).sum(),
                available: buckets.iter().map(|u| u.available).sum(),
            };
            let level = StockLevel {
                warehouse_id: main.clone(),
                units,
                incoming: 0,
                waiting: 0,
                updated_at: chrono::DateTime::UNIX_EPOCH,
            };
            if let WarehouseChoice::Insufficient { .. } = choose_warehouse(&[level], 1) {
                return Outcome::Refused;
            }
        }
        outcome = hold_steps(t, k, id, sent).await;
        match outcome {
            Outcome::Sold if by_read => *sold_out = false,
            Outcome::Refused if auto && !by_read => *sold_out = true,
            // The warehouse the read picked sold out meanwhile: pick again.
            Outcome::Refused if by_read => continue,
            _ => {}
        }
        return outcome;
    }
    outcome
}

/// The hold's write and, for a bucketed product, its steps (`HoldSteps`).
async fn hold_steps(t: &Shared, k: usize, id: &str, sent: &mut u64) -> Outcome {
    let mut steps = HoldSteps::new(home_bucket(id, k), 1);
    let mut step = steps.first();
    loop {
        step = match step {
            Step::Hold(b) => match transact(t, &[b], &|p| take(p, b), sent).await {
                Ok(true) => return Outcome::Sold,
                Ok(false) if k > 1 => steps.short(),
                Ok(false) => return Outcome::Refused,
                Err(o) => return o,
            },
            Step::ReadBuckets => match read(t, false, sent).await {
                Ok(units) => steps.read(&units),
                Err(o) => return o,
            },
            Step::Gather { into, donors } => {
                let items: Vec<usize> = std::iter::once(into).chain(donors.iter().map(|d| d.0)).collect();
                lock(t).counts.gathers += 1;
                match transact(t, &items, &|p| gather(p, into, &donors), sent).await {
                    Ok(moved) => {
                        if moved {
                            lock(t).counts.moved += 1;
                        }
                        steps.gathered(into, moved)
                    }
                    Err(o) => return o,
                }
            }
            Step::Refuse { .. } => return Outcome::Refused,
            Step::GiveUp => return Outcome::Conflict,
        };
    }
}

/// One sale of `units` units of one SKU in `k` buckets to buyers `c` at a time, in
/// model time, until every unit is sold and `after` more buyers have been refused.
fn sale(model: Model, k: usize, units: i64, c: usize, auto: bool, after: usize) -> serde_json::Value {
    let t: Shared = Arc::new(Mutex::new(Table::new(model, k, units)));
    let log: Arc<Mutex<Vec<Entry>>> = Arc::default();
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut buyers: Vec<crate::virtual_time::Task> = Vec::new();
    for b in 0..c {
        let (t, log, refused) = (t.clone(), log.clone(), refused.clone());
        buyers.push(Box::pin(async move {
            let mut n = 0u64;
            // Each of the `c` buyers at a time is served by an instance of its own.
            let mut sold_out = false;
            // Model time is capped, in case a run never reaches its refusals.
            while refused.load(std::sync::atomic::Ordering::Relaxed) < after
                && now() < Duration::from_secs(600)
            {
                n += 1;
                let id = format!("{:026}", (b as u64) << 32 | n);
                let mut spent = 0;
                let began = now();
                let o = hold(&t, k, auto, &mut sold_out, &id, &mut spent).await;
                let took = (now() - began).as_secs_f64() * 1000.0;
                if o == Outcome::Refused {
                    refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                log.lock().unwrap_or_else(|e| e.into_inner()).push((o, now().as_secs_f64(), spent, took));
            }
        }));
    }
    crate::virtual_time::run(buyers);
    {
        let table = lock(&t);
        let log = log.lock().unwrap_or_else(|e| e.into_inner());
        let sold: Vec<f64> = log.iter().filter(|l| l.0 == Outcome::Sold).map(|l| l.1).collect();
        let sold_out_at = sold.iter().copied().fold(0.0, f64::max);
        let count = |o: Outcome| log.iter().filter(|l| l.0 == o).count();
        let sold_ms: Vec<f64> = log.iter().filter(|l| l.0 == Outcome::Sold).map(|l| l.3).collect();
        let refusals: Vec<&Entry> = log.iter().filter(|l| l.0 == Outcome::Refused).collect();
        let per_refusal = refusals.iter().map(|l| l.2).sum::<u64>() as f64 / refusals.len().max(1) as f64;
        let reserved: i64 = table.parts.iter().map(|p| p.units.reserved).sum();
        let left: i64 = table.parts.iter().map(|p| p.units.available).sum();
        let refused_while_left = log.iter().filter(|l| l.0 == Outcome::Refused && l.1 < sold_out_at).count();
        json!({
            "k": k, "units": units, "concurrency": c, "auto_pick": auto,
            "reservations_per_second": sold.len() as f64 / sold_out_at.max(1e-9),
            "successes_model_ms": crate::stats(sold_ms),
            "sold": sold.len(), "sold_out_after_s": sold_out_at,
            "conflict_409": count(Outcome::Conflict), "unavailable_503": count(Outcome::Unavailable),
            "refused": refusals.len(), "requests_per_refusal": per_refusal,
            "refused_before_sold_out": refused_while_left,
            "oversold": (sold.len() as i64 - units).max(0), "reserved_units": reserved, "stranded_units": left,
            "requests": table.counts.requests, "throttled": table.counts.throttled, "conflicts": table.counts.conflicts,
            "gathers": table.counts.gathers, "gathers_moved": table.counts.moved,
        })
    }
}

/// The table for k = 1, 2, 4, 8, 16: a hold naming its warehouse, then one that leaves
/// the pick to the service.
pub fn hot_sku(units: i64, c: usize) -> serde_json::Value {
    let m = AWS;
    println!(
        "hot SKU, simulated (model: {:.0} WCU/s and {:.0} RCU/s per partition, {} s banked; {} WCU per transactional item; \
         items held {} ms per transaction; answers after {} ms (write), {} ms (read), {} ms (throttled))",
        m.wcu_per_s, m.rcu_per_s, m.burst_s, m.write_units_per_item, m.lock_ms, m.write_ms, m.read_ms, m.reject_ms
    );
    println!("  {units} units of one SKU, {c} buyers at a time, one unit each, until sold out and 2,000 more refused");
    println!(
        "  {:>3} {:>5} | {:>10} {:>8} {:>6} {:>6} | {:>8} {:>9} | {:>8} {:>9} {:>8} | {:>8} {:>8}",
        "k",
        "pick",
        "holds/s",
        "sold",
        "409",
        "503",
        "refused",
        "req/refus",
        "gathers",
        "conflicts",
        "throttle",
        "oversold",
        "stranded"
    );
    let mut rows = Vec::new();
    for k in [1, 2, 4, 8, 16] {
        for auto in [false, true] {
            // On a thread of its own: the simulation's clock is the thread's.
            let r = std::thread::spawn(move || sale(m, k, units, c, auto, 2000)).join().unwrap_or_default();
            let u = |f: &str| r[f].as_u64().unwrap_or(0);
            println!(
                "  {k:>3} {:>5} | {:>10.0} {:>8} {:>6} {:>6} | {:>8} {:>9.2} | {:>8} {:>9} {:>8} | {:>8} {:>8}",
                if auto { "auto" } else { "named" },
                r["reservations_per_second"].as_f64().unwrap_or(f64::NAN),
                u("sold"),
                u("conflict_409"),
                u("unavailable_503"),
                u("refused"),
                r["requests_per_refusal"].as_f64().unwrap_or(f64::NAN),
                u("gathers"),
                u("conflicts"),
                u("throttled"),
                u("oversold"),
                u("stranded_units"),
            );
            rows.push(r);
        }
    }
    println!(
        "  retry waits after a conflict or throttle (holds naming their warehouse; the service's first):"
    );
    println!(
        "  {:<36} {:>3} | {:>9} {:>6} {:>6} | {:>26} | {:>9} {:>8}",
        "backoff", "k", "holds/s", "409", "503", "success p50/p99 (model ms)", "conflicts", "throttle"
    );
    let policies = [
        ("service: 10 ms x 2^n, half jittered", Backoff::Service),
        ("same shape, 2 ms step", Backoff::Scaled { base_ms: 2 }),
        ("full jitter, 10 ms x 2^n", Backoff::FullJitter { base_ms: 10 }),
        ("straight back", Backoff::Immediately),
    ];
    let mut policy_rows = Vec::new();
    for (name, backoff) in policies {
        for k in [1, 16] {
            let model = Model { backoff, ..m };
            let r =
                std::thread::spawn(move || sale(model, k, units, c, false, 2000)).join().unwrap_or_default();
            let u = |f: &str| r[f].as_u64().unwrap_or(0);
            let q = |p: &str| r["successes_model_ms"][p].as_f64().unwrap_or(f64::NAN);
            println!(
                "  {name:<36} {k:>3} | {:>9.0} {:>6} {:>6} | {:>11.1} / {:>11.1} | {:>9} {:>8}",
                r["reservations_per_second"].as_f64().unwrap_or(f64::NAN),
                u("conflict_409"),
                u("unavailable_503"),
                q("p50_ms"),
                q("p99_ms"),
                u("conflicts"),
                u("throttled"),
            );
            policy_rows.push(json!({"backoff": name, "result": r}));
        }
    }
    json!({"model": format!("{m:?}"), "rows": rows, "backoff": policy_rows})
}
