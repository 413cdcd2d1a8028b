//! The ports services use for what lies outside the store: the time and the expiry
//! scheduler. Implementations sit at the edge (`adapters`): AWS ones, local ones and the
//! ones tests drive.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use thiserror::Error;

/// A source of the current time. Contract: monotone enough for business timestamps
/// (millisecond precision is what the store keeps); never fails.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Error)]
pub enum SchedulerError {
    #[error("scheduler request failed: {0}")]
    Failed(String),
}

/// Arranges for a reservation's expiry job to run.
///
/// Contract: `schedule` is idempotent (scheduling the same reservation again is success,
/// so retries are safe) and arranges a run at or after `at`, never before. `cancel` is
/// best effort and idempotent (cancelling a missing schedule is success). Neither
/// guarantees delivery: the sweep is the safety net.
pub trait ExpiryScheduler: Send + Sync + std::fmt::Debug {
    fn schedule<'a>(
        &'a self,
        reservation_id: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), SchedulerError>>;
    fn cancel<'a>(&'a self, reservation_id: &'a str) -> BoxFuture<'a, Result<(), SchedulerError>>;
    /// Moves a reservation's run to `at` (an extended hold): the old run is cancelled and a
    /// new one arranged. Between the two there may be none; the sweep covers that, and an
    /// old run that still fires finds the hold not due.
    fn reschedule<'a>(
        &'a self,
        reservation_id: &'a str,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), SchedulerError>> {
        Box::pin(async move {
            self.cancel(reservation_id).await?;
            self.schedule(reservation_id, at).await
        })
    }
    /// The same scheduler with its AWS calls sent through `http` (local IAM enforcement),
    /// or `None` when it makes no AWS calls.
    fn with_http_client(
        &self,
        _http: aws_smithy_runtime_api::client::http::SharedHttpClient,
    ) -> Option<std::sync::Arc<dyn ExpiryScheduler>> {
        None
    }
}

/// Used when no scheduler is configured: holds expire through the sweep alone.
#[derive(Debug, Default)]
pub struct NoScheduler;

impl ExpiryScheduler for NoScheduler {
    fn schedule<'a>(&'a self, _: &'a str, _: DateTime<Utc>) -> BoxFuture<'a, Result<(), SchedulerError>> {
        Box::pin(async { Ok(()) })
    }
    fn cancel<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), SchedulerError>> {
        Box::pin(async { Ok(()) })
    }
}
