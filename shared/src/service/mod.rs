//! Business operations: one implementation of every rule, called by the Lambda handlers
//! and the local gateway alike. Services take validated input and the caller, talk to
//! the store, and return entities or a `DomainError`.

mod audit;
mod expiry;
mod idempotency;
mod orders;
mod products;
mod reservations;

pub use audit::{AuditQuery, AUDIT_PARAMS};
pub use expiry::{ExpireOutcome, SweepReport};
pub use orders::OrderListPage;
pub use products::Page;

pub use idempotency::{Created, IdempotencyRequest};

use crate::adapters::clock::Clock;
use crate::adapters::scheduler::{ExpiryScheduler, NoScheduler};
use crate::domain::cursor::CursorCodec;
use crate::domain::DomainError;
use crate::store::{Store, StoreError};
use chrono::Duration;
use std::sync::Arc;

/// Settings the services need.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// How long a reservation holds its units.
    pub reservation_ttl: Duration,
    /// Key for list cursors.
    pub cursors: CursorCodec,
}

/// Everything a request needs, built once per cold start (or once by the gateway).
#[derive(Debug, Clone)]
pub struct App {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub config: ServiceConfig,
    pub scheduler: Arc<dyn ExpiryScheduler>,
}

impl App {
    /// An application without expiry schedules (the sweep alone expires holds).
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: ServiceConfig) -> Self {
        Self { store, clock, config, scheduler: Arc::new(NoScheduler) }
    }

    pub fn with_scheduler(self, scheduler: Arc<dyn ExpiryScheduler>) -> Self {
        Self { scheduler, ..self }
    }

    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        Self { clock, ..self }
    }
}

/// Store failures that no service handles specially.
impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable => DomainError::Unavailable,
            // A condition no service anticipated means a concurrent change won.
            StoreError::ConditionFailed(_) => DomainError::Conflict("a concurrent change won"),
            StoreError::Internal(detail) => {
                tracing::error!(detail, "internal store error");
                DomainError::Internal
            }
        }
    }
}
