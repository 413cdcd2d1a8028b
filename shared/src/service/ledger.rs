//! The stock ledger: movements recorded from the table's stream (the `audit` function and
//! the local stream poller), and the admin reads of a product's movements and its stock
//! at an instant.

use super::products::Page;
use super::App;
use crate::domain::caller::Caller;
use crate::domain::event::FeedEntry;
use crate::domain::ids::ProductId;
use crate::domain::movement::{
    Checkpoint, Counts, Movement, MovementQuery, Observed, Reconciliation, RowKey, RowLedger, WarehouseLedger,
};
use crate::domain::product::{Product, StockSettings};
use crate::domain::stock::{StockLevel, Units, WarehouseId};
use crate::domain::DomainError;
use crate::service::ports::Metric;
use crate::store::ledger::{MovementRange, Position, MOVEMENTS_PER_APPEND};
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};

/// Heads moved on at once by one batch.
const HEADS_IN_FLIGHT: usize = 8;

/// Movements a request's recount reads at most per row (about 3 MB, 700 read units, a
/// few seconds): a row past it (one with a long history and no checkpoint yet, before
/// the first hourly run) is judged on its head's sums until a run has recounted it.
const REQUEST_RECOUNT: usize = 10_000;

/// Products one page of the scheduled reconciliation reads, and checks at once.
const RECONCILE_PAGE: usize = 50;
const RECONCILE_IN_FLIGHT: usize = 4;

/// Which products a reconciliation run checks, and how.
#[derive(Debug, Clone, Default)]
pub struct ReconcileRun {
    /// Start after this product id (exclusive, so a prefix of an id starts at that id);
    /// none: at the first product.
    pub after: Option<String>,
    /// At most this many products; none: every one.
    pub limit: Option<usize>,
    /// How long a product that disagrees is given to settle before it is checked again:
    /// only a product that still disagrees then is reported.
    pub settle: std::time::Duration,
    /// Start no page after this instant (the invocation's deadline less a margin).
    pub stop: Option<tokio::time::Instant>,
}

/// What one reconciliation run found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReconcileReport {
    pub checked: usize,
    /// Products whose check failed (storage trouble, or a record that does not decode):
    /// logged at error level, and the run goes on.
    pub failed: usize,
    /// Warehouses left unjudged because the ledger had not recorded every write they
    /// show, after the settle window too (a consumer behind, or a lost record).
    pub behind: usize,
    /// The products with a warehouse that disagreed twice once every write was recorded,
    /// with their second figures.
    pub inconsistent: Vec<Reconciliation>,
    /// The run stopped (its limit or its time) with products left after `last`.
    pub more: bool,
    /// The last product checked.
    pub last: Option<String>,
}

/// A product's stock at an instant, per warehouse.
#[derive(Debug, Clone)]
pub struct StockAt {
    pub product_id: String,
    pub as_of: DateTime<Utc>,
    pub stock: Vec<(WarehouseId, Units)>,
}

/// A page of a product's movements, and whether the product numbers its rows by bucket.
#[derive(Debug, Clone)]
pub struct Movements {
    pub page: Page<Movement>,
    pub bucketed: bool,
}

/// What recording a batch's movements did.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Movements written.
    pub written: u64,
    /// Rows whose movements were not recorded, to be delivered again.
    pub failed: BTreeSet<RowKey>,
    /// Rows whose ledger head is unreadable: their writes are set aside, not retried.
    pub set_aside: BTreeSet<RowKey>,
}

/// One append: the row's ledger after it, the movements it writes and their events.
type Append = (RowLedger, Vec<Movement>, Vec<FeedEntry>);

/// What makes a write's stock events (`StockChanged` per movement, and the crossings):
/// given the write, the movements it made, numbered, and its product's settings (`None`:
/// the product item was not found or did not decode). The HTTP layer's rendering, so the
/// caller (the stream job) passes it in.
pub type StockEvents<'a> =
    &'a (dyn Fn(&Observed, &[Movement], Option<&StockSettings>) -> Vec<FeedEntry> + Sync);

/// One row's writes as appends (`Ledger::append`): each the ledger after its last write
/// and the movements up to it, at most `MOVEMENTS_PER_APPEND`, cut only between writes
/// (a write makes at most two movements), with their events. Writes that make no
/// movement ride along.
fn plan_appends(
    mut ledger: RowLedger,
    writes: &[&Observed],
    settings: Option<&StockSettings>,
    events: StockEvents<'_>,
) -> Vec<Append> {
    let mut chunks = Vec::new();
    let mut current: Vec<Movement> = Vec::new();
    let mut made_events: Vec<FeedEntry> = Vec::new();
    let mut at_cut = ledger.clone();
    for w in writes {
        let made = ledger.record(w);
        if !current.is_empty() && current.len() + made.len() > MOVEMENTS_PER_APPEND {
            chunks.push((at_cut.clone(), std::mem::take(&mut current), std::mem::take(&mut made_events)));
        }
        made_events.extend(events(w, &made, settings));
        current.extend(made);
        at_cut = ledger.clone();
    }
    if !current.is_empty() {
        chunks.push((at_cut, current, made_events));
    }
    chunks
}

/// A row whose movements proved its head, and the checkpoint that head makes.
type Proven = (RowKey, Checkpoint);

/// Each warehouse's counters (a bucketed product's rows summed).
fn counters_of(product: &Product) -> BTreeMap<String, Counts> {
    product
        .stock
        .iter()
        .map(|l| {
            let u = l.units;
            (l.warehouse_id.as_str().to_string(), Counts { on_hand: u.on_hand, reserved: u.reserved })
        })
        .collect()
}

/// Every stock row of `product` (each warehouse it has, each bucket), in key order.
pub fn rows_of(product: &Product, warehouse: Option<&WarehouseId>) -> Vec<RowKey> {
    product
        .stock
        .iter()
        .filter(|l| warehouse.is_none_or(|w| *w == l.warehouse_id))
        .flat_map(|l| {
            (0..product.stock_buckets.max(1)).map(|bucket| RowKey {
                product_id: product.id.clone(),
                warehouse_id: l.warehouse_id.as_str().to_string(),
                bucket,
            })
        })
        .collect()
}

impl App {
    /// Records the movements of `writes` (in stream order), row by row: read the rows'
    /// heads, number each row's new movements on from its head, then write them with the
    /// head moved on, in one transaction on condition that the head is still the one read
    /// (`Ledger::append`, with the stock events `events` makes; a row with more than
    /// `MOVEMENTS_PER_APPEND` new movements takes several, each ending
    /// at a write, each on the head the previous one left). A movement therefore exists
    /// exactly when its head counts it: a plan given up (the head moved meanwhile, the
    /// writes failed, the process died, the record was dropped) leaves nothing behind,
    /// and the row's next write shows the changes it missed as `unknown`. Rows whose
    /// movements could not be recorded are `failed` (their records come again; a write
    /// already recorded is skipped by its position); rows whose head does not decode are
    /// `set_aside` (no retry can mend them).
    pub async fn record_movements(
        &self,
        writes: &[Observed],
        events: StockEvents<'_>,
    ) -> Result<Recorded, StoreError> {
        let mut by_row: BTreeMap<&RowKey, Vec<&Observed>> = BTreeMap::new();
        for w in writes {
            by_row.entry(&w.row).or_default().push(w);
        }
        let mut recorded = Recorded::default();
        if by_row.is_empty() {
            return Ok(recorded);
        }
        let rows: Vec<RowKey> = by_row.keys().map(|r| (*r).clone()).collect();
        let products: BTreeSet<&str> = rows.iter().map(|r| r.product_id.as_str()).collect();
        let products: Vec<&str> = products.into_iter().collect();
        // The settings are read here, not when the write was made: a threshold changed
        // meanwhile applies to the writes after it is read. Each write is judged once,
        // in the append that records it, so a crossing is still one event.
        let (mut heads, settings) = futures::try_join!(
            self.store.ledger.heads(&rows),
            self.store.catalogue.stock_settings(&products)
        )?;
        let mut planned: Vec<(RowKey, Option<String>, Vec<Append>)> = Vec::new();
        for (row, writes) in &by_row {
            let read = match heads.remove(*row).transpose() {
                Ok(read) => read,
                Err(error) => {
                    tracing::error!(
                        %error,
                        product_id = row.product_id,
                        warehouse_id = row.warehouse_id,
                        bucket = row.bucket,
                        "a ledger head does not decode: the row's writes are set aside"
                    );
                    recorded.set_aside.insert((*row).clone());
                    continue;
                }
            };
            let chunks =
                plan_appends(read.clone().unwrap_or_default(), writes, settings.get(&row.product_id), events);
            if !chunks.is_empty() {
                planned.push(((*row).clone(), read.map(|h| h.position), chunks));
            }
        }
        // Owned inputs: the futures must not borrow from a closure's argument (they run
        // inside spawned tasks, which need them for any lifetime).
        let appends = planned.into_iter().map(|(row, mut read, chunks)| async move {
            let mut written = 0u64;
            for (next, movements, events) in chunks {
                let at = self.clock.now();
                match self.store.ledger.append(&row, read.as_deref(), &next, &movements, &events, at).await {
                    Ok(true) => {
                        written += movements.len() as u64;
                        read = Some(next.position);
                    }
                    other => return (row, written, Some(other)),
                }
            }
            (row, written, None)
        });
        let appended: Vec<_> =
            futures::stream::iter(appends).buffer_unordered(HEADS_IN_FLIGHT).collect().await;
        for (row, written, failure) in appended {
            recorded.written += written;
            match failure {
                None => {}
                Some(Ok(_)) => {
                    tracing::warn!(
                        product_id = row.product_id,
                        warehouse_id = row.warehouse_id,
                        bucket = row.bucket,
                        "a ledger head moved meanwhile; the row's records are retried"
                    );
                    recorded.failed.insert(row);
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, product_id = row.product_id, warehouse_id = row.warehouse_id, "recording movements failed");
                    recorded.failed.insert(row);
                }
            }
        }
        Ok(recorded)
    }

    /// Admins only. A product's movements, oldest first, filtered by `q`.
    pub async fn list_movements(
        &self,
        caller: &Caller,
        product_id: &ProductId,
        q: MovementQuery,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Movements, DomainError> {
        if !caller.is_admin {
            return Err(DomainError::Forbidden);
        }
        let product = self.get_product(product_id).await?;
        let binding = q.binding(product_id);
        let after = match cursor {
            Some(c) => Some(
                Position::decode(&self.config.cursors.decode(&binding, c)?)
                    .ok_or(DomainError::InvalidCursor)?,
            ),
            None => None,
        };
        let rows = rows_of(&product, q.warehouse_id.as_ref());
        let range = MovementRange { rows: &rows, from: q.from, to: q.to, reasons: &q.reasons };
        let page = self.store.ledger.page(&range, after.as_ref(), limit).await?;
        let next_cursor = match &page.next {
            Some(position) => Some(self.config.cursors.encode(&binding, &position.encode())?),
            None => None,
        };
        let items = page.movements.into_iter().map(|(_, m)| m).collect();
        Ok(Movements { page: Page { items, next_cursor }, bucketed: product.stock_buckets > 1 })
    }

    /// Admins only. The product's stock per warehouse at `as_of` (each row's last
    /// movement at or before it, one read per row); without `as_of`, its current counts.
    pub async fn stock_as_of(
        &self,
        caller: &Caller,
        product_id: &ProductId,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<StockAt, DomainError> {
        if !caller.is_admin {
            return Err(DomainError::Forbidden);
        }
        let now = self.clock.now();
        if as_of.is_some_and(|t| t > now) {
            return Err(DomainError::invalid("as_of", "must not be in the future"));
        }
        let product = self.get_product(product_id).await?;
        let Some(t) = as_of else {
            let stock =
                product.stock.iter().map(|l: &StockLevel| (l.warehouse_id.clone(), l.units)).collect();
            return Ok(StockAt { product_id: product.id, as_of: now, stock });
        };
        let rows = rows_of(&product, None);
        let lasts =
            futures::future::try_join_all(rows.iter().map(|r| self.store.ledger.last_at(r, t))).await?;
        let mut per: BTreeMap<String, Units> = BTreeMap::new();
        for m in lasts.into_iter().flatten() {
            let u = per.entry(m.warehouse_id.clone()).or_default();
            u.on_hand += m.on_hand;
            u.reserved += m.reserved;
            u.available += m.available;
        }
        let stock =
            per.into_iter().filter_map(|(w, u)| WarehouseId::parse(&w).ok().map(|w| (w, u))).collect();
        Ok(StockAt { product_id: product.id, as_of: t, stock })
    }

    /// Admins only. The product's counters checked against its ledger and its holds.
    pub async fn reconciliation(
        &self,
        caller: &Caller,
        product_id: &ProductId,
    ) -> Result<Reconciliation, DomainError> {
        if !caller.is_admin {
            return Err(DomainError::Forbidden);
        }
        let product = self.get_product(product_id).await?;
        Ok(self.reconcile(&product).await?)
    }

    /// Checks the products of `run` page by page in id order (the product list index),
    /// each as `reconcile` does: per product one `Query` of its rows (with the list
    /// page), one `BatchGetItem` of its heads and one `Query` of its holds, whatever its
    /// history. A product that disagrees is read and checked again after `settle`; one
    /// that still disagrees is logged at error level with its figures and counted
    /// (`StockInconsistencies`, one per warehouse).
    pub async fn reconcile_products(&self, run: ReconcileRun) -> Result<ReconcileReport, StoreError> {
        let mut report = ReconcileReport::default();
        let mut after = run.after.clone();
        loop {
            let left = run.limit.map_or(RECONCILE_PAGE, |l| l.saturating_sub(report.checked));
            if left == 0 || run.stop.is_some_and(|s| tokio::time::Instant::now() >= s) {
                report.more = true;
                break;
            }
            let (products, more) =
                self.store.catalogue.list(after.as_deref(), left.min(RECONCILE_PAGE)).await?;
            // Owned inputs, as in `record_movements`: the futures run inside spawned tasks.
            let checks =
                products.iter().cloned().map(|p| async move { (self.check_and_advance(&p).await, p.id) });
            let checks =
                futures::stream::iter(checks).buffered(RECONCILE_IN_FLIGHT).collect::<Vec<_>>().await;
            let mut suspects = Vec::new();
            for (check, id) in checks {
                // One product whose records cannot be read (a head that does not decode)
                // must not stop the others' check: it is logged and counted as failed.
                match check {
                    Ok(check) if !check.consistent() => suspects.push(check.product_id),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::error!(product_id = %id, %error, "reconciling a product failed");
                        report.failed += 1;
                    }
                }
            }
            if !suspects.is_empty() {
                tokio::time::sleep(run.settle).await;
            }
            for id in suspects {
                let Some(product) = self.store.catalogue.get(&id).await? else { continue };
                let check = match self.check(&product, None).await.map(|(c, _)| c) {
                    Ok(check) => check,
                    Err(error) => {
                        tracing::error!(product_id = %id, %error, "reconciling a product failed");
                        report.failed += 1;
                        continue;
                    }
                };
                let mut found = false;
                for w in check.inconsistent() {
                    if !w.settled() {
                        // Writes not yet recorded: a lagging ledger, not drift.
                        tracing::warn!(
                            product_id = %check.product_id,
                            warehouse_id = %w.warehouse_id,
                            on_hand = w.counters.on_hand,
                            reserved = w.counters.reserved,
                            recorded_on_hand = w.recorded.on_hand,
                            recorded_reserved = w.recorded.reserved,
                            "the ledger has not recorded every write yet; not judged"
                        );
                        self.metrics.count(Metric::LedgerBehind, 1);
                        report.behind += 1;
                        continue;
                    }
                    tracing::error!(
                        product_id = %check.product_id,
                        warehouse_id = %w.warehouse_id,
                        on_hand = w.counters.on_hand,
                        reserved = w.counters.reserved,
                        ledger_on_hand = w.ledger.on_hand,
                        ledger_reserved = w.ledger.reserved,
                        held_by_reservations = w.held_by_reservations,
                        "stock counters disagree with the ledger or the holds"
                    );
                    self.metrics.count(Metric::StockInconsistencies, 1);
                    found = true;
                }
                if found {
                    report.inconsistent.push(check);
                }
            }
            report.checked += products.len();
            if let Some(p) = products.last() {
                after = Some(p.id.clone());
                report.last = after.clone();
            }
            if !more {
                break;
            }
        }
        // Every run reports, zero included, so the alarm always has a data point.
        self.metrics.count(Metric::StockInconsistencies, 0);
        self.metrics.count(Metric::ProductsReconciled, report.checked as u64);
        tracing::info!(
            checked = report.checked,
            failed = report.failed,
            behind = report.behind,
            inconsistent = report.inconsistent.len(),
            more = report.more,
            last = report.last.as_deref().unwrap_or(""),
            "reconciliation run"
        );
        Ok(report)
    }

    /// Checks `product` (read a moment ago) against its ledger and its active holds
    /// (`held_units`), as a request does: per row the head (running sums and the counts
    /// it recorded) and the checkpoint (one `BatchGetItem` each for the product), and the
    /// movements since the checkpoint recounted (at most `REQUEST_RECOUNT`), so the cost
    /// follows the rows' recent movements, never their history. The reads are not one
    /// snapshot: a write in flight shows as a difference that a later check no longer
    /// finds (the scheduled run's lag rule, `WarehouseCheck::settled`).
    pub async fn reconcile(&self, product: &Product) -> Result<Reconciliation, StoreError> {
        let (check, _) = self.check(product, Some(REQUEST_RECOUNT)).await?;
        Ok(check)
    }

    /// `reconcile`, and for a product found consistent, each row's checkpoint moved to the
    /// head its movements proved (one `PutItem` per row that moved since), so that the
    /// next recount reads only what comes after.
    async fn check_and_advance(&self, product: &Product) -> Result<Reconciliation, StoreError> {
        let (check, proven) = self.check(product, None).await?;
        if check.consistent() {
            for (row, to) in proven {
                if let Err(error) = self.store.ledger.move_checkpoint(&row, &to).await {
                    // The next run recounts from the old one: slower, never wrong.
                    tracing::warn!(%error, product_id = row.product_id, "moving a ledger checkpoint failed");
                }
            }
        }
        Ok(check)
    }

    /// `reconcile`, and each row's head with the checkpoint its movements were recounted
    /// from: the heads the movements proved, where the job may move the checkpoints.
    async fn check(
        &self,
        product: &Product,
        budget: Option<usize>,
    ) -> Result<(Reconciliation, Vec<Proven>), StoreError> {
        let rows = rows_of(product, None);
        let (heads, checkpoints, held) = futures::try_join!(
            self.store.ledger.heads(&rows),
            self.store.ledger.checkpoints(&rows),
            self.store.reservations.held_units(&product.id)
        )?;
        let counters = counters_of(product);
        let mut ledger: BTreeMap<String, WarehouseLedger> = BTreeMap::new();
        let mut proven = Vec::new();
        for (row, head) in heads {
            // An unreadable head is storage trouble, not a finding about the stock.
            let head = head?;
            let from = checkpoints.get(&row);
            let recount = self.store.ledger.recount(&row, from, budget).await?;
            let w = ledger.entry(row.warehouse_id.clone()).or_default();
            // A recount cut off at its budget (a long row not yet checkpointed, read by a
            // request) proves nothing: the head's sums stand in, unproven until a run.
            let sums = if recount.complete { recount.ledger } else { head.ledger };
            w.sums.on_hand += sums.on_hand;
            w.sums.reserved += sums.reserved;
            w.recorded.on_hand += head.counts.on_hand;
            w.recorded.reserved += head.counts.reserved;
            let proves = recount.proves(&head);
            w.proven &= proves || !recount.complete;
            if proves && from.is_none_or(|c| c.seq < head.seq) {
                proven.push((row, Checkpoint { seq: head.seq, at: head.at, ledger: head.ledger }));
            }
        }
        let mut check = Reconciliation::of(&product.id, &counters, &ledger, &held);
        // A difference may be a write that landed between the reads: read the counters
        // again, and mark the warehouses whose counters moved meanwhile (one `Query` more,
        // only for a product that disagrees).
        if !check.consistent() {
            let now = match self.store.catalogue.get(&product.id).await? {
                Some(p) => counters_of(&p),
                None => BTreeMap::new(),
            };
            for w in &mut check.warehouses {
                w.moved = now.get(&w.warehouse_id) != Some(&w.counters);
            }
        }
        Ok((check, proven))
    }
}
