//! DynamoDB access: the only module that knows tables, keys, indexes and condition
//! expressions. It is built in three parts:
//!
//! - `exec`: the executor. Every request goes through it: error classification, retries
//!   of lost transactions, consumed-capacity counting, and on the local stack the IAM
//!   check of the HTTP connector.
//! - `records` and `keys`: what the items look like, their keys, and the writes with their
//!   conditions.
//! - One repository per aggregate (`catalogue`, `stock`, `reservations`, `orders`,
//!   `order_list`, `idempotency`, `audit`, `ledger`): each composes requests from records, sends
//!   them through the executor and names what came back (outcome enums, per-operation
//!   errors). Failed conditions a repository expects become outcomes; one it does not
//!   expect stays `StoreError::ConditionFailed`, which services log as such.

pub mod audit;
pub mod catalogue;
pub mod events;
pub mod exec;
pub mod idempotency;
mod item;
pub mod keys;
pub mod ledger;
pub mod metrics;
pub mod order_list;
pub mod orders;
pub mod records;
pub mod reservations;
#[cfg(feature = "local")]
pub mod schema;
pub mod stock;
pub mod transfers;
pub mod waitlists;

use aws_sdk_dynamodb::Client;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

pub use exec::Db;
pub use item::Item;

/// Errors of the storage layer.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A condition expression failed that the operation `op` does not turn into an
    /// outcome. For a transaction: the index of each failing item with its current image
    /// when DynamoDB returned one.
    #[error("{op}: condition failed on item(s) {:?}", items.iter().map(|(i, _)| *i).collect::<Vec<_>>())]
    ConditionFailed { op: &'static str, items: Vec<(usize, Option<Item>)> },
    /// Throttled or unreachable after the SDK's retries, or a read that failed: nothing
    /// was written.
    #[error("storage unavailable")]
    Unavailable,
    /// A write was sent and no answer says whether it applied (timed out, the connection
    /// failed after sending, a 5xx): it may have.
    #[error("storage did not answer a write")]
    Unknown,
    /// A transaction kept losing to concurrent transactions on the same items
    /// (`TransactionConflict`) through every retry; it did not apply.
    #[error("concurrent transactions kept winning")]
    Contended,
    /// A stored item does not have the expected shape, or DynamoDB refused the request.
    #[error("storage error: {0}")]
    Internal(String),
}

impl StoreError {
    /// Whether item `index` of a transaction was among those whose condition failed, and
    /// its image if DynamoDB returned one.
    pub fn failed_at(&self, index: usize) -> Option<Option<&Item>> {
        match self {
            Self::ConditionFailed { items, .. } => {
                items.iter().find(|(i, _)| *i == index).map(|(_, item)| item.as_ref())
            }
            _ => None,
        }
    }
}

impl From<aws_sdk_dynamodb::error::BuildError> for StoreError {
    fn from(e: aws_sdk_dynamodb::error::BuildError) -> Self {
        Self::Internal(format!("request build: {e}"))
    }
}

/// Where the tables live.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub table: String,
    pub audit_table: String,
    /// Set for DynamoDB Local; `None` uses the AWS default chain (Lambda).
    pub endpoint: Option<String>,
}

/// The repositories over one application table and its audit table. Cheap to clone;
/// build it once per cold start.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    table: Arc<str>,
    audit_table: Arc<str>,
    pub catalogue: catalogue::Catalogue,
    pub stock: stock::Stock,
    pub reservations: reservations::Reservations,
    pub orders: orders::Orders,
    pub order_lists: order_list::OrderLists,
    pub idempotency: idempotency::Idempotency,
    pub audit: audit::AuditLog,
    pub ledger: ledger::Ledger,
    pub feed: events::Feed,
    pub transfers: transfers::Transfers,
    pub waitlists: waitlists::Waitlists,
}

/// What every repository holds: the executor and the table it works on.
#[derive(Debug, Clone)]
pub(crate) struct Repo {
    pub(crate) db: Db,
    pub(crate) table: Arc<str>,
}

impl Store {
    pub fn new(db: Db, table: impl Into<String>, audit_table: impl Into<String>) -> Self {
        let (table, audit_table): (Arc<str>, Arc<str>) = (table.into().into(), audit_table.into().into());
        let repo = Repo { db: db.clone(), table: table.clone() };
        let stock = stock::Stock(repo.clone());
        let catalogue = catalogue::Catalogue { repo: repo.clone(), stock: stock.clone() };
        // One mark of the feed's hours per process, whichever writer publishes first.
        let hours = events::FeedHours::new(Repo { db: db.clone(), table: audit_table.clone() });
        Self {
            transfers: transfers::Transfers { repo: repo.clone(), catalogue: catalogue.clone() },
            waitlists: waitlists::Waitlists(repo.clone()),
            catalogue,
            stock,
            reservations: reservations::Reservations(repo.clone()),
            orders: orders::Orders(repo.clone()),
            order_lists: order_list::OrderLists(repo.clone()),
            idempotency: idempotency::Idempotency(repo),
            audit: audit::AuditLog(Repo { db: db.clone(), table: audit_table.clone() }),
            ledger: ledger::Ledger(Repo { db: db.clone(), table: audit_table.clone() }, hours.clone()),
            feed: events::Feed(Repo { db: db.clone(), table: audit_table.clone() }, hours),
            db,
            table,
            audit_table,
        }
    }

    /// Builds the client from the process's SDK configuration; `endpoint` points it at
    /// DynamoDB Local.
    pub fn connect(sdk: &aws_config::SdkConfig, config: &StoreConfig) -> Self {
        let mut conf = aws_sdk_dynamodb::config::Builder::from(sdk).retry_config(
            // Throttling and 5xx are retried by the SDK with exponential backoff and full
            // jitter. DynamoDB's throttles clear within milliseconds to a second, and a
            // request must answer well inside the function's 10 s timeout, so four
            // attempts starting at 50 ms (at most ~1 s of waiting) before a 503.
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(4)
                .with_initial_backoff(Duration::from_millis(50))
                .with_max_backoff(Duration::from_millis(800)),
        );
        if let Some(endpoint) = &config.endpoint {
            conf = conf.endpoint_url(endpoint);
        }
        Self::new(Db::new(Client::from_conf(conf.build())), config.table.clone(), config.audit_table.clone())
    }

    /// The same store with its requests sent through `http` (local IAM enforcement).
    #[cfg(feature = "local")]
    pub fn with_http_client(&self, http: aws_smithy_runtime_api::client::http::SharedHttpClient) -> Self {
        Self::new(self.db.with_http_client(http), &*self.table, &*self.audit_table)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn audit_table(&self) -> &str {
        &self.audit_table
    }

    /// Transactions retried after a lost conflict since the last call (all clones).
    pub fn take_conflict_retries(&self) -> u64 {
        self.db.metrics().take_conflict_retries()
    }

    /// Requests and consumed capacity so far (all clones of this store together).
    pub fn metrics(&self) -> &metrics::StoreMetrics {
        self.db.metrics()
    }

    /// Creates both tables where they do not exist yet (DynamoDB Local; in AWS the
    /// template creates them).
    #[cfg(feature = "local")]
    pub async fn ensure_tables(&self) -> Result<(), StoreError> {
        schema::TABLE.create(self.db.client(), &self.table).await?;
        schema::AUDIT_TABLE.create(self.db.client(), &self.audit_table).await
    }
}
