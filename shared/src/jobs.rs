//! Payloads and entry points of the scheduled jobs, shared by the `expire` and `sweep`
//! Lambda functions and the local gateway's scheduler.

use crate::config::{int_var, ConfigError};
use crate::deadline::run;
use crate::domain::DomainError;
use crate::service::{App, ExpireOutcome, SweepReport};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// The binaries (and template functions) of the two jobs.
pub const EXPIRE_FN: &str = "expire";
pub const SWEEP_FN: &str = "sweep";

/// The sweep schedule's payload: whatever EventBridge Scheduler sends, the sweep needs
/// none of it, so any JSON is accepted.
pub type SweepEvent = serde::de::IgnoredAny;

/// The input of each reservation's schedule (see `adapters::scheduler::expire_input`).
#[derive(Debug, Clone, Deserialize)]
pub struct ExpireEvent {
    pub reservation_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpireResponse {
    pub reservation_id: String,
    pub outcome: ExpireOutcome,
}

/// Runs the expiry of one reservation within the invocation's `deadline`. Errors (storage
/// trouble, no time left) fail the invocation so that EventBridge Scheduler retries it,
/// then sends it to the dead-letter queue.
pub async fn expire(
    app: &App,
    event: ExpireEvent,
    deadline: Option<Instant>,
) -> Result<ExpireResponse, DomainError> {
    // Boxed: the job futures nest deep enough that laying them out inline overflows the
    // compiler's query depth in the job binaries.
    let outcome = run(deadline, Box::pin(app.expire_reservation(&event.reservation_id))).await??;
    Ok(ExpireResponse { reservation_id: event.reservation_id, outcome })
}

/// `SWEEP_BATCH_PER_SHARD` (default 250, 1..=10000): how many overdue holds one sweep
/// run ends per index shard. A run that stops at the limit says `more`; the next run
/// (a minute later) continues.
pub fn sweep_batch_from_env() -> Result<usize, ConfigError> {
    Ok(usize::try_from(int_var("SWEEP_BATCH_PER_SHARD", 250, 1, 10_000)?).unwrap_or(250))
}

/// One sweep run within the invocation's `deadline`: it starts no hold it could not
/// finish before it, and says `more` for those it left.
pub async fn sweep(
    app: &App,
    per_shard: usize,
    deadline: Option<Instant>,
) -> Result<SweepReport, DomainError> {
    run(deadline, Box::pin(app.sweep(per_shard))).await?
}
