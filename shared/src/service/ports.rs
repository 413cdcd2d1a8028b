//! The ports services use for what lies outside the store: the time, the expiry
//! scheduler and the event bus. Implementations sit at the edge (`adapters`): AWS ones, local ones and the
//! ones tests drive.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use thiserror::Error;

/// A source of the current time. Contract: monotone enough for business timestamps
/// (millisecond precision is what the store keeps); never fails.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// What a scheduler call returns.
pub type Scheduled<'a> = BoxFuture<'a, Result<(), SchedulerError>>;

#[derive(Debug, Error)]
pub enum SchedulerError {
    #[error("scheduler request failed: {0}")]
    Failed(String),
}

/// Arranges for a reservation's expiry job to run.
///
/// Contract: a schedule is named by the reservation and its time (`at`), so each end a
/// hold has ever had has its own schedule and no two writers of a hold's end can leave it
/// at a time the hold no longer has. `schedule` is idempotent (scheduling the same
/// reservation at the same time again is success, so retries are safe) and arranges a
/// run at or after `at`, never before. `cancel` is best effort and idempotent (cancelling
/// a missing schedule is success). Neither guarantees delivery: the sweep is the safety
/// net, and a run whose hold ends later (a leftover of an extension) does nothing.
pub trait ExpiryScheduler: Send + Sync + std::fmt::Debug {
    /// One schedule, named by `name` and `at`, whose run expires every reservation of
    /// `reservation_ids` that is then still active and due: a batch hold's lines, which
    /// share their end, make one schedule instead of one each (the Scheduler's
    /// `CreateSchedule` quota is per request). `name` is the one reservation's id for a
    /// single hold, and an id of its own for a batch, so that cancelling one line's
    /// schedule (`cancel(line, at)`) never cancels the others'.
    fn schedule_many<'a>(&'a self, name: &'a str, ids: &'a [String], at: DateTime<Utc>) -> Scheduled<'a>;
    /// The schedule of one reservation (named by it).
    fn schedule<'a>(&'a self, reservation_id: &'a str, at: DateTime<Utc>) -> Scheduled<'a> {
        Box::pin(async move {
            let ids = [reservation_id.to_string()];
            self.schedule_many(reservation_id, &ids, at).await
        })
    }
    fn cancel<'a>(&'a self, name: &'a str, at: DateTime<Utc>) -> Scheduled<'a>;
    /// Moves a reservation's run from `from` to `to` (an extended hold): the new run is
    /// arranged first, then the old one cancelled, so there is never a moment without one.
    fn reschedule<'a>(
        &'a self,
        reservation_id: &'a str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Scheduled<'a> {
        Box::pin(async move {
            self.schedule(reservation_id, to).await?;
            self.cancel(reservation_id, from).await
        })
    }
    /// The same scheduler with its AWS calls sent through `http` (local IAM enforcement),
    /// or `None` when it makes no AWS calls.
    #[cfg(feature = "local")]
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
    fn schedule_many<'a>(&'a self, _: &'a str, _: &'a [String], _: DateTime<Utc>) -> Scheduled<'a> {
        Box::pin(async { Ok(()) })
    }
    fn cancel<'a>(&'a self, _: &'a str, _: DateTime<Utc>) -> Scheduled<'a> {
        Box::pin(async { Ok(()) })
    }
}

/// What the bus answered for one request: per event, in order, whether it took it.
pub type Put<'a> = BoxFuture<'a, Result<Vec<Result<(), String>>, BusError>>;

#[derive(Debug, Error)]
pub enum BusError {
    #[error("event bus request failed: {0}")]
    Failed(String),
}

/// Where events go out to the shop's other systems (an EventBridge bus in AWS).
///
/// Contract: `put` takes one request's events (`domain::event::bus_requests` cuts them:
/// at most 10, within 256 KiB) and answers, per event and in order, whether the bus took
/// it; an event it refused may be put again. `Err` means the request's outcome is
/// unknown: some or all may have been taken, so a retry may deliver an event twice, which
/// consumers drop by its `event_id`. It never reorders nor alters `detail`.
pub trait EventBus: Send + Sync + std::fmt::Debug {
    fn put<'a>(&'a self, events: &'a [crate::domain::event::Outgoing]) -> Put<'a>;
}

/// A business event operators count (CloudWatch metrics in AWS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// Holds created (a batch counts each of its lines).
    ReservationsCreated,
    /// Holds refused because the product had too few units.
    RefusedForStock,
    /// Holds refused because the buyer already held the most allowed.
    RefusedForHoldCap,
    /// Holds ended by their own schedule (`expire`).
    ExpiredBySchedule,
    /// Overdue holds the sweep found: above zero for long, schedules are failing.
    OverdueFound,
    /// Holds the sweep ended.
    ExpiredBySweep,
    /// Transactions retried after losing to a concurrent one on the same items.
    ConflictRetries,
    /// Orders moved to a status (the dimension).
    OrderStatusChanged(crate::domain::order::OrderStatus),
    /// Audit entries written from the stream.
    AuditWritten,
    /// Stream records whose audit entry could not be written (retried, then queued).
    AuditFailed,
    /// Stream records that can never become an entry, set aside for an operator.
    AuditSetAside,
    /// Stock movements recorded from the stream.
    MovementsWritten,
    /// Products the scheduled reconciliation checked.
    ProductsReconciled,
    /// Warehouses whose counters disagree with their ledger or their holds after the
    /// settle window: above zero, something changed stock without the ledger knowing.
    StockInconsistencies,
    /// Warehouses the reconciliation could not judge because the ledger had not yet
    /// recorded every write they show, after the settle window: the stream consumer is
    /// behind, or a record was lost.
    LedgerBehind,
    /// Events the bus took.
    EventsPublished,
    /// Events the bus refused or that found no time left (their records are retried,
    /// then queued).
    EventsFailed,
    /// Feed items no retry can publish (unreadable, or too large for the bus); the feed
    /// keeps them.
    EventsSetAside,
    /// A function's first invocation in a new execution environment.
    ColdStart,
}

impl Metric {
    /// One of each kind, for checks that every name the template uses is one we emit.
    #[cfg(any(test, feature = "local"))]
    pub const KINDS: [Metric; 19] = [
        Self::ReservationsCreated,
        Self::RefusedForStock,
        Self::RefusedForHoldCap,
        Self::ExpiredBySchedule,
        Self::OverdueFound,
        Self::ExpiredBySweep,
        Self::ConflictRetries,
        Self::OrderStatusChanged(crate::domain::order::OrderStatus::Confirmed),
        Self::AuditWritten,
        Self::AuditFailed,
        Self::AuditSetAside,
        Self::MovementsWritten,
        Self::ProductsReconciled,
        Self::StockInconsistencies,
        Self::LedgerBehind,
        Self::EventsPublished,
        Self::EventsFailed,
        Self::EventsSetAside,
        Self::ColdStart,
    ];

    /// The CloudWatch metric name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ReservationsCreated => "ReservationsCreated",
            Self::RefusedForStock => "ReservationsRefusedForStock",
            Self::RefusedForHoldCap => "ReservationsRefusedForHoldCap",
            Self::ExpiredBySchedule => "HoldsExpiredBySchedule",
            Self::OverdueFound => "OverdueHoldsFoundBySweep",
            Self::ExpiredBySweep => "HoldsExpiredBySweep",
            Self::ConflictRetries => "ConflictRetries",
            Self::OrderStatusChanged(_) => "OrderStatusChanged",
            Self::AuditWritten => "AuditRecordsWritten",
            Self::AuditFailed => "AuditRecordsFailed",
            Self::AuditSetAside => "AuditRecordsSetAside",
            Self::MovementsWritten => "StockMovementsWritten",
            Self::ProductsReconciled => "ProductsReconciled",
            Self::StockInconsistencies => "StockInconsistencies",
            Self::LedgerBehind => "LedgerBehind",
            Self::EventsPublished => "EventsPublished",
            Self::EventsFailed => "EventsFailed",
            Self::EventsSetAside => "EventsSetAside",
            Self::ColdStart => "ColdStarts",
        }
    }

    /// The metric's own dimension beside the function's, if it has one.
    pub fn dimension(&self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::OrderStatusChanged(s) => Some(("Status", s.as_str())),
            _ => None,
        }
    }
}

/// Where business counts go.
///
/// Contract: fire and forget. `count` never fails and never waits on the network (a
/// sink writes a log line at most); a lost count never affects the request. Zero counts
/// are passed on, so a sink can report "none" where an alarm needs a data point.
pub trait Metrics: Send + Sync + std::fmt::Debug {
    fn count(&self, metric: Metric, n: u64);
}

/// Counts nothing: the local gateway and tests that do not look at metrics.
#[derive(Debug, Default)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn count(&self, _: Metric, _: u64) {}
}
