//! Expiry: the `expire` job (one reservation, invoked by its schedule) and the `sweep`
//! (every overdue active reservation, through the sparse sweep index). Both end holds
//! through `Reservations::end_hold`, the same conditional transaction a release uses, so
//! whichever of expire, sweep and release runs first wins and the units come back once.

use super::ports::Metric;
use super::App;
use crate::domain::reservation::ReservationStatus;
use crate::domain::DomainError;
use crate::store::reservations::{Ended, HoldEnd};
use futures::stream::{self, StreamExt};
use serde::Serialize;

/// The actor stamped on writes made by expiry jobs.
pub const SYSTEM_ACTOR: &str = "system";
/// Holds ended concurrently by one sweep run.
const SWEEP_CONCURRENCY: usize = 8;
/// What ending one hold may take; the sweep starts no hold with less time left than
/// twice this.
const SWEEP_ITEM_TIME: std::time::Duration = std::time::Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpireOutcome {
    /// This call ended the hold and returned its units.
    Expired,
    /// Already released, expired or converted: nothing to do.
    NotActive,
    /// Its time has not come (an early or stray invocation): nothing done.
    NotDue,
    /// No such reservation.
    NotFound,
}

/// What one sweep run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Overdue holds found on the index.
    pub found: usize,
    /// Ended by this run.
    pub expired: usize,
    /// Already ended by someone else (the index lags the table).
    pub already_ended: usize,
    /// Could not be ended now (storage trouble); the next run retries them.
    pub failed: usize,
    /// Stopped at the batch limit with more overdue holds left.
    pub more: bool,
}

impl App {
    /// Ends one reservation if it is active and due. Idempotent: repeated or late calls
    /// change nothing and succeed. Storage trouble is an error so the scheduler retries.
    pub async fn expire_reservation(&self, id: &str) -> Result<ExpireOutcome, DomainError> {
        let Some(r) = self.store.reservations.get(id).await? else {
            return Ok(ExpireOutcome::NotFound);
        };
        if r.status != ReservationStatus::Active {
            return Ok(ExpireOutcome::NotActive);
        }
        let now = self.clock.now();
        if r.expires_at > now {
            return Ok(ExpireOutcome::NotDue);
        }
        if self.store.reservations.end_hold(&r, HoldEnd::Expire, now, SYSTEM_ACTOR).await? == Ended::Now {
            tracing::info!(reservation_id = %r.id, quantity = r.quantity, "reservation expired");
            self.metrics.count(Metric::ExpiredBySchedule, 1);
            Ok(ExpireOutcome::Expired)
        } else {
            Ok(ExpireOutcome::NotActive)
        }
    }

    /// Expires up to `per_shard` active reservations from each sweep-index shard that
    /// ended more than `grace` ago, `SWEEP_CONCURRENCY` at a time.
    pub async fn sweep(&self, per_shard: usize, grace: chrono::Duration) -> Result<SweepReport, DomainError> {
        let now = self.clock.now();
        let overdue = self.store.reservations.overdue(now - grace, per_shard).await?;
        let mut report =
            SweepReport { more: overdue.more, found: overdue.holds.len(), ..SweepReport::default() };
        let results: Vec<_> = stream::iter(overdue.holds)
            .map(|r| async move {
                // Near the invocation's deadline no new hold is started on: the next
                // run takes the rest (reported as `more`).
                if !crate::deadline::allows(SWEEP_ITEM_TIME) {
                    return (r.id, None);
                }
                let ended = self.store.reservations.end_hold(&r, HoldEnd::Expire, now, SYSTEM_ACTOR).await;
                (r.id, Some(ended))
            })
            .buffer_unordered(SWEEP_CONCURRENCY)
            .collect()
            .await;
        for (id, result) in results {
            match result {
                None => report.more = true,
                Some(Ok(Ended::Now)) => report.expired += 1,
                Some(Ok(Ended::NotActive)) => report.already_ended += 1,
                Some(Err(e)) => {
                    tracing::warn!(reservation_id = %id, error = %e, "sweep could not expire reservation");
                    report.failed += 1;
                }
            }
        }
        self.metrics.count(Metric::OverdueFound, report.found as u64);
        self.metrics.count(Metric::ExpiredBySweep, report.expired as u64);
        tracing::info!(
            found = report.found,
            expired = report.expired,
            already_ended = report.already_ended,
            failed = report.failed,
            more = report.more,
            "sweep finished"
        );
        Ok(report)
    }
}
