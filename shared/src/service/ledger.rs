//! The stock ledger: movements recorded from the table's stream (the `audit` function and
//! the local stream poller), and the admin reads of a product's movements and its stock
//! at an instant.

use super::products::Page;
use super::App;
use crate::domain::caller::Caller;
use crate::domain::ids::ProductId;
use crate::domain::movement::{Counts, Movement, MovementQuery, Observed, Reconciliation, RowKey, RowLedger};
use crate::domain::product::Product;
use crate::domain::stock::{StockLevel, Units, WarehouseId};
use crate::domain::DomainError;
use crate::service::ports::Metric;
use crate::store::ledger::{MovementRange, Position};
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};

/// Heads moved on at once by one batch.
const HEADS_IN_FLIGHT: usize = 8;

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
    /// The products that disagreed twice, with their second figures.
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
    /// heads, number each row's new movements on from its head, write them, then move
    /// the head on (conditionally). The rows whose movements could not be recorded are
    /// returned: their records are delivered again, and a write already recorded is
    /// skipped by its position. A process that dies between the movements and the head
    /// leaves movements that the next delivery rewrites identically.
    pub async fn record_movements(&self, writes: &[Observed]) -> Result<(u64, BTreeSet<RowKey>), StoreError> {
        let mut by_row: BTreeMap<&RowKey, Vec<&Observed>> = BTreeMap::new();
        for w in writes {
            by_row.entry(&w.row).or_default().push(w);
        }
        if by_row.is_empty() {
            return Ok((0, BTreeSet::new()));
        }
        let rows: Vec<RowKey> = by_row.keys().map(|r| (*r).clone()).collect();
        let heads = self.store.ledger.heads(&rows).await?;
        let mut planned: Vec<(RowKey, Option<String>, RowLedger, Vec<Movement>)> = Vec::new();
        for (row, writes) in &by_row {
            let read = heads.get(*row);
            let mut ledger = read.cloned().unwrap_or_default();
            let movements: Vec<Movement> = writes.iter().flat_map(|w| ledger.record(w)).collect();
            if !movements.is_empty() {
                planned.push(((*row).clone(), read.map(|h| h.position.clone()), ledger, movements));
            }
        }
        let mut failed = BTreeSet::new();
        let all: Vec<Movement> = planned.iter().flat_map(|(_, _, _, m)| m.iter().cloned()).collect();
        if let Err(error) = self.store.ledger.put_movements(&all).await {
            tracing::warn!(%error, movements = all.len(), "writing movements failed");
            return Ok((0, rows.into_iter().collect()));
        }
        // Owned inputs: the futures must not borrow from a closure's argument (they run
        // inside spawned tasks, which need them for any lifetime).
        let advances = planned.into_iter().map(|(row, read, next, movements)| async move {
            let moved = self.store.ledger.advance(&row, read.as_deref(), &next).await;
            (row, movements.len(), moved)
        });
        let advanced: Vec<_> =
            futures::stream::iter(advances).buffer_unordered(HEADS_IN_FLIGHT).collect().await;
        let mut written = 0;
        for (row, n, result) in advanced {
            match result {
                Ok(true) => written += n as u64,
                Ok(false) => {
                    tracing::warn!(
                        product_id = row.product_id,
                        warehouse_id = row.warehouse_id,
                        bucket = row.bucket,
                        "a ledger head moved meanwhile; the row's records are retried"
                    );
                    failed.insert(row.clone());
                }
                Err(error) => {
                    tracing::warn!(%error, product_id = row.product_id, warehouse_id = row.warehouse_id, "moving a ledger head failed");
                    failed.insert(row.clone());
                }
            }
        }
        Ok((written, failed))
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
        let next_cursor = match page.movements.last() {
            Some((position, _)) if page.more => {
                Some(self.config.cursors.encode(&binding, &position.encode())?)
            }
            _ => None,
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
            let checks = products.iter().cloned().map(|p| async move { self.reconcile(&p).await });
            let checks =
                futures::stream::iter(checks).buffered(RECONCILE_IN_FLIGHT).collect::<Vec<_>>().await;
            let mut suspects = Vec::new();
            for check in checks {
                let check = check?;
                if !check.consistent() {
                    suspects.push(check.product_id);
                }
            }
            if !suspects.is_empty() {
                tokio::time::sleep(run.settle).await;
            }
            for id in suspects {
                let Some(product) = self.store.catalogue.get(&id).await? else { continue };
                let check = self.reconcile(&product).await?;
                for w in check.inconsistent() {
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
                }
                if !check.consistent() {
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
            inconsistent = report.inconsistent.len(),
            more = report.more,
            last = report.last.as_deref().unwrap_or(""),
            "reconciliation run"
        );
        Ok(report)
    }

    /// Checks `product` (read a moment ago) against its rows' ledger heads (one
    /// `BatchGetItem`: each head carries its row's running sums, so the cost is one read
    /// per row whatever the history's length) and its active holds (`held_units`). The
    /// three reads are not one snapshot: a write in flight (a movement not yet recorded,
    /// an index not yet caught up) shows as a difference that the next check no longer
    /// finds, which is why the scheduled check looks twice (`jobs::reconcile`).
    pub async fn reconcile(&self, product: &Product) -> Result<Reconciliation, StoreError> {
        let rows = rows_of(product, None);
        let (heads, held) = futures::try_join!(
            self.store.ledger.heads(&rows),
            self.store.reservations.held_units(&product.id)
        )?;
        let counters: BTreeMap<String, Counts> = product
            .stock
            .iter()
            .map(|l| {
                let u = l.units;
                (l.warehouse_id.as_str().to_string(), Counts { on_hand: u.on_hand, reserved: u.reserved })
            })
            .collect();
        let mut ledger: BTreeMap<String, Counts> = BTreeMap::new();
        for (row, head) in &heads {
            let sums = ledger.entry(row.warehouse_id.clone()).or_default();
            sums.on_hand += head.ledger.on_hand;
            sums.reserved += head.ledger.reserved;
        }
        Ok(Reconciliation::of(&product.id, &counters, &ledger, &held))
    }
}
