//! The invocation's deadline, as Lambda gives it (`Context::deadline`) and the local
//! gateway plays it (the function's `Timeout` from `template.yaml`). A request runs inside
//! a `Budget`; whatever is still running at its stop time (a margin before the deadline) is
//! cut off, so the caller always gets a problem+json answer and never a platform timeout.
//! Retry loops ask `allows` before they wait, and the store calls `note_write` before it
//! sends a write, so that a cut-off request can say whether its outcome is known.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Time kept free before the deadline to answer (and, for a keyed request, to settle its
/// idempotency lease): 1 s, or a fifth of a shorter budget.
fn margin(total: Duration) -> Duration {
    Duration::from_secs(1).min(total / 5)
}

/// Of what is left, the share a keyed request keeps to settle its lease after its
/// operation was cut off.
fn settle_allowance(left: Duration) -> Duration {
    Duration::from_millis(500).min(left / 4)
}

#[derive(Debug)]
struct Budget {
    stop: Instant,
    wrote: AtomicBool,
}

tokio::task_local! {
    static BUDGET: Arc<Budget>;
}

/// The request ran out of time before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut {
    /// Whether a write had been sent (its outcome is then unknown).
    pub wrote: bool,
}

/// Running out of time, as the services report it: 503, with whether a write was sent.
impl From<TimedOut> for crate::domain::DomainError {
    fn from(cut: TimedOut) -> Self {
        Self::OutOfTime { wrote: cut.wrote }
    }
}

/// Runs `f` under a budget that ends a margin before `deadline`; `None`: no deadline (a
/// test, a tool), `f` runs to the end.
pub async fn run<F: Future>(deadline: Option<Instant>, f: F) -> Result<F::Output, TimedOut> {
    let Some(deadline) = deadline else { return Ok(f.await) };
    let now = Instant::now();
    let stop = deadline.checked_sub(margin(deadline.saturating_duration_since(now))).unwrap_or(now);
    let budget = Arc::new(Budget { stop, wrote: AtomicBool::new(false) });
    let timed = tokio::time::timeout_at(stop, f);
    match BUDGET.scope(budget.clone(), timed).await {
        Ok(out) => Ok(out),
        Err(_) => Err(TimedOut { wrote: budget.wrote.load(Ordering::SeqCst) }),
    }
}

/// Runs `f`, a part of the current request that must leave time after it (to settle an
/// idempotency lease): it is cut off earlier than the request itself.
pub async fn within_settling<F: Future>(f: F) -> Result<F::Output, TimedOut> {
    let Ok(budget) = BUDGET.try_with(Arc::clone) else { return Ok(f.await) };
    let left = budget.stop.saturating_duration_since(Instant::now());
    let stop = budget.stop.checked_sub(settle_allowance(left)).unwrap_or_else(Instant::now);
    match tokio::time::timeout_at(stop, f).await {
        Ok(out) => Ok(out),
        Err(_) => Err(TimedOut { wrote: budget.wrote.load(Ordering::SeqCst) }),
    }
}

/// Time left before the current request's stop time (`None`: no deadline).
pub fn remaining() -> Option<Duration> {
    BUDGET.try_with(|b| b.stop.saturating_duration_since(Instant::now())).ok()
}

/// Whether waiting `wait` (a retry's backoff) still leaves time to try again.
pub fn allows(wait: Duration) -> bool {
    remaining().is_none_or(|left| left > wait * 2)
}

/// Marks that the current request sent a write.
pub fn note_write() {
    let _ = BUDGET.try_with(|b| b.wrote.store(true, Ordering::SeqCst));
}

/// A deadline `timeout` from now.
pub fn after(timeout: Duration) -> Instant {
    Instant::now() + timeout
}

/// Values below this cannot be an epoch deadline (they are before 2001).
const EPOCH_MILLIS_2001: u64 = 978_307_200_000;

/// Lambda's deadline (milliseconds since the epoch) as an instant. cargo-lambda's emulator
/// sends the function's timeout in milliseconds instead (600000 by default), so a value
/// that cannot be a date is taken as the time left.
pub fn from_epoch_millis(deadline_ms: u64) -> Instant {
    if deadline_ms < EPOCH_MILLIS_2001 {
        return Instant::now() + Duration::from_millis(deadline_ms);
    }
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or(0);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_past_the_stop_time_is_cut_off_a_margin_before_the_deadline_and_says_whether_it_wrote() {
        let deadline = after(Duration::from_secs(10));
        let r = run(Some(deadline), async {
            note_write();
            tokio::time::sleep(Duration::from_secs(60)).await;
        })
        .await;
        assert_eq!(r, Err(TimedOut { wrote: true }));
        assert_eq!(deadline - Instant::now(), Duration::from_secs(1), "stopped 1 s before the deadline");
        let quick = run(Some(after(Duration::from_secs(10))), async { 7 }).await;
        assert_eq!(quick, Ok(7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_settling_part_stops_before_the_request_and_retries_stop_asking_in_time() {
        let deadline = after(Duration::from_secs(2));
        let r = run(Some(deadline), async {
            let inner = within_settling(tokio::time::sleep(Duration::from_secs(60))).await;
            (inner, remaining().unwrap_or_default(), allows(Duration::from_millis(100)))
        })
        .await;
        let (inner, left, allowed) = r.expect("the request itself finishes");
        assert_eq!(inner, Err(TimedOut { wrote: false }));
        assert_eq!(left, Duration::from_millis(400), "a quarter of the 1.6 s kept for settling");
        assert!(allowed);
        assert!(run(None, async { allows(Duration::from_secs(3600)) }).await.expect("no deadline"));
    }
}
