//! Business operations: one implementation of every rule, called by the Lambda handlers
//! and the local gateway alike. Services take validated input and the caller, talk to
//! the store's repositories and the ports, and return entities or a `DomainError`. They
//! know nothing of HTTP: no status codes, no rendering.

mod audit;
mod events;
mod expiry;
mod idempotency;
mod ledger;
mod orders;
pub mod ports;
mod products;
mod reservations;
mod returns;
mod transfers;
mod waitlists;

pub use audit::{AuditQuery, AUDIT_PARAMS};
pub use events::{EventPage, EventQuery, EVENT_PARAMS, FEED_TRAIL};
pub use expiry::{ExpireOutcome, SweepReport};
pub use ledger::{rows_of, Movements, ReconcileReport, ReconcileRun, Recorded, StockAt};
pub use products::Page;
pub use waitlists::{OfferRun, Placed};

pub use idempotency::{Created, IdempotencyRequest};

use crate::domain::cursor::CursorCodec;
use crate::domain::product::Terms;
use crate::domain::DomainError;
#[cfg(feature = "local")]
use crate::iam::{IamError, LocalIam, Service};
use crate::store::{Store, StoreError};
use chrono::Duration;
use ports::{Clock, ExpiryScheduler, Metric, Metrics, NoMetrics, NoScheduler};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// Settings the services need.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// How long a reservation holds its units.
    pub reservation_ttl: Duration,
    /// Key for list cursors.
    pub cursors: CursorCodec,
    /// Most active reservations one user may hold at once (`MAX_ACTIVE_HOLDS_PER_USER`).
    pub max_active_holds: i64,
    /// Longest a hold may last from its creation, extensions included (`MAX_HOLD_SECONDS`).
    pub max_hold: Duration,
    /// Longest a waitlist entry waits (`WAITLIST_TTL_SECONDS`).
    pub waitlist_ttl: Duration,
}

/// Everything a request needs, built once per cold start (or once by the gateway).
#[derive(Debug, Clone)]
pub struct App {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub config: ServiceConfig,
    pub scheduler: Arc<dyn ExpiryScheduler>,
    /// Where business counts go (EMF in Lambda; nowhere on the local gateway).
    pub metrics: Arc<dyn Metrics>,
    /// What governs new holds of each product this instance has seen, so a warm instance
    /// reserves without reading the product first; a stock row refuses a hold decided
    /// under terms that changed meanwhile (and the entry is then read again).
    terms: Arc<Mutex<HashMap<String, Terms>>>,
    /// Products whose last hold on this instance found them sold out: their holds read
    /// the product first (`plan_pick`). A hint for speed only; every hold is decided by
    /// its conditional write.
    sold_out: Arc<Mutex<HashSet<String>>>,
    /// The local stack's IAM (template policies); `None` in AWS, where IAM is AWS's.
    #[cfg(feature = "local")]
    iam: Option<Arc<LocalIam>>,
}

/// More products than this in `App::terms` (or `App::sold_out`) and it starts over: a
/// bound on memory, far above the products one instance sees in its lifetime.
const TERMS_KEPT: usize = 10_000;

impl App {
    /// An application without expiry schedules (the sweep alone expires holds).
    pub fn new(store: Store, clock: Arc<dyn Clock>, config: ServiceConfig) -> Self {
        Self {
            store,
            clock,
            config,
            scheduler: Arc::new(NoScheduler),
            metrics: Arc::new(NoMetrics),
            terms: Arc::default(),
            sold_out: Arc::default(),
            #[cfg(feature = "local")]
            iam: None,
        }
    }

    /// A product's terms (`NotFound` when there is no such product), from this
    /// instance's memory when it has seen the product before.
    async fn terms_of(&self, product_id: &str) -> Result<Terms, DomainError> {
        if let Some(t) = self.terms.lock().ok().and_then(|m| m.get(product_id).cloned()) {
            return Ok(t);
        }
        let t = self.store.catalogue.terms(product_id).await?.ok_or(DomainError::NotFound("product"))?;
        self.remember_terms(product_id, t.clone());
        Ok(t)
    }

    fn remember_terms(&self, product_id: &str, t: Terms) {
        if let Ok(mut m) = self.terms.lock() {
            if m.len() >= TERMS_KEPT {
                m.clear();
            }
            m.insert(product_id.to_string(), t);
        }
    }

    /// Whether the last hold of the product this instance tried found it sold out
    /// (`plan_pick`).
    fn sold_out(&self, product_id: &str) -> bool {
        self.sold_out.lock().is_ok_and(|s| s.contains(product_id))
    }

    fn note_sold_out(&self, product_id: &str, sold_out: bool) {
        if let Ok(mut s) = self.sold_out.lock() {
            if !sold_out {
                s.remove(product_id);
            } else if !s.contains(product_id) {
                if s.len() >= TERMS_KEPT {
                    s.clear();
                }
                s.insert(product_id.to_string());
            }
        }
    }

    /// Forgets what this instance knew of a product's terms (they changed).
    fn forget_terms(&self, product_id: &str) {
        if let Ok(mut m) = self.terms.lock() {
            m.remove(product_id);
        }
    }

    pub fn with_scheduler(self, scheduler: Arc<dyn ExpiryScheduler>) -> Self {
        Self { scheduler, ..self }
    }

    pub fn with_metrics(self, metrics: Arc<dyn Metrics>) -> Self {
        Self { metrics, ..self }
    }

    /// Counts the transactions the store retried since the last call (one invocation's,
    /// in Lambda, where an instance serves one at a time).
    pub fn count_store_retries(&self) {
        let retries = self.store.take_conflict_retries();
        if retries > 0 {
            self.metrics.count(Metric::ConflictRetries, retries);
        }
    }

    /// Enforces `iam` on the applications `for_function` makes (`None`: AWS enforces).
    #[cfg(feature = "local")]
    pub fn with_local_iam(self, iam: Option<Arc<LocalIam>>) -> Self {
        Self { iam, ..self }
    }

    #[cfg(feature = "local")]
    pub fn local_iam(&self) -> Option<&Arc<LocalIam>> {
        self.iam.as_ref()
    }

    /// On the local stack, when an invocation of the function built as `binary` started
    /// now would end: its `Timeout` in the template, as in AWS. `None` elsewhere.
    #[cfg(feature = "local")]
    pub fn local_deadline(&self, binary: &str) -> Option<tokio::time::Instant> {
        let f = self.iam.as_ref()?.template().function(binary).ok()?;
        Some(crate::deadline::after(std::time::Duration::from_secs(f.timeout_seconds)))
    }

    /// This application as the function built as `binary` runs it: on the local stack its
    /// DynamoDB and Scheduler clients answer `AccessDeniedException` to every call that
    /// function's policy in the template does not allow, and it starts with its own
    /// instance caches, as a separate Lambda function would. Without local IAM (AWS) it is
    /// this application with fresh caches. Local platform only: in AWS each function
    /// builds its own application (`Config::function_app_with`).
    #[cfg(feature = "local")]
    pub fn for_function(&self, binary: &str) -> Result<Self, IamError> {
        let mut app = Self { terms: Arc::default(), sold_out: Arc::default(), ..self.clone() };
        if let Some(iam) = &self.iam {
            app.store = self.store.with_http_client(iam.client_for(binary, Service::DynamoDb)?);
            if let Some(s) = self.scheduler.with_http_client(iam.client_for(binary, Service::Scheduler)?) {
                app.scheduler = s;
            }
        }
        Ok(app)
    }
}

/// Store failures that no service handles specially.
impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable => DomainError::Unavailable,
            StoreError::Unknown => DomainError::OutcomeUnknown,
            StoreError::Contended => DomainError::Conflict("a concurrent change won"),
            // A condition the operation does not turn into an outcome failed: a change
            // the code did not foresee won. Said as such in the log; the client gets a
            // conflict (nothing was written) and may retry.
            e @ StoreError::ConditionFailed { .. } => {
                tracing::error!(error = %e, "unexpected failed condition");
                DomainError::Conflict("a concurrent change won")
            }
            StoreError::Internal(detail) => {
                tracing::error!(detail, "internal store error");
                DomainError::Internal
            }
        }
    }
}
