//! DynamoDB access: the only module that knows table keys, indexes and condition
//! expressions. Failed conditions come back as `StoreError::ConditionFailed` so that
//! services turn them into domain conflicts; throttling and transport failures become
//! `Unavailable` (503), anything else `Internal` (logged here, never shown).

pub mod audit;
pub mod idempotency;
mod item;
pub mod keys;
pub mod metrics;
pub mod order_list;
pub mod orders;
pub mod products;
pub mod reservations;
pub mod schema;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::time::Duration;
use thiserror::Error;

pub use item::Item;

/// Errors of the storage layer.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A condition expression failed. For a transaction: the index of each failing item
    /// with its current image when DynamoDB returned one.
    #[error("condition failed")]
    ConditionFailed(Vec<(usize, Option<Item>)>),
    /// Throttled, timed out or unreachable after the SDK's retries; nothing was written.
    #[error("storage unavailable")]
    Unavailable,
    /// A transaction kept losing to concurrent transactions on the same items
    /// (`TransactionConflict`) through every retry; it did not apply.
    #[error("concurrent transactions kept winning")]
    Contended,
    /// A stored item does not have the expected shape, or DynamoDB refused the request.
    #[error("storage error: {0}")]
    Internal(String),
}

impl StoreError {
    /// Whether item `index` of a transaction was among those whose condition failed.
    pub fn failed_at(&self, index: usize) -> Option<Option<&Item>> {
        match self {
            Self::ConditionFailed(items) => {
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

/// Handle on the one application table. Cheap to clone; build it once per cold start.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: String,
    audit_table: String,
    metrics: std::sync::Arc<metrics::StoreMetrics>,
}

/// How often a transaction that lost to a concurrent one on the same items is retried.
const CONFLICT_ATTEMPTS: u32 = 8;

impl Store {
    pub fn new(client: Client, table: impl Into<String>, audit_table: impl Into<String>) -> Self {
        Self { client, table: table.into(), audit_table: audit_table.into(), metrics: Default::default() }
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
        Self::new(Client::from_conf(conf.build()), config.table.clone(), config.audit_table.clone())
    }

    /// The same store with its requests sent through `http` (local IAM enforcement).
    pub fn with_http_client(&self, http: aws_smithy_runtime_api::client::http::SharedHttpClient) -> Self {
        let conf = self.client.config().to_builder().http_client(http).build();
        Self { client: Client::from_conf(conf), ..self.clone() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Requests and consumed capacity so far (all clones of this store together).
    pub fn metrics(&self) -> &metrics::StoreMetrics {
        &self.metrics
    }

    pub fn audit_table(&self) -> &str {
        &self.audit_table
    }

    /// Runs one `TransactWriteItems`. Losing to a concurrent transaction on the same items
    /// (`TransactionConflict`) is retried with jittered backoff: the transaction did not
    /// apply, so retrying cannot double-apply it.
    async fn transact(&self, op: &'static str, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            crate::deadline::note_write();
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
                .send()
                .await;
            let err = match result {
                Ok(out) => {
                    self.metrics.write(out.consumed_capacity());
                    return Ok(());
                }
                Err(e) => e,
            };
            if let SdkError::ServiceError(ctx) = &err {
                if let TransactWriteItemsError::TransactionCanceledException(tc) = ctx.err() {
                    let reasons = tc.cancellation_reasons();
                    let failed: Vec<(usize, Option<Item>)> = reasons
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                        .map(|(i, r)| (i, r.item().map(|m| Item(m.clone()))))
                        .collect();
                    if !failed.is_empty() {
                        return Err(StoreError::ConditionFailed(failed));
                    }
                    let retryable = reasons.iter().any(|r| {
                        matches!(
                            r.code(),
                            Some("TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded")
                        )
                    });
                    let wait = backoff(attempt);
                    if retryable && attempt < CONFLICT_ATTEMPTS && crate::deadline::allows(wait) {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    if retryable {
                        let throttled = reasons.iter().any(|r| {
                            matches!(r.code(), Some("ThrottlingError" | "ProvisionedThroughputExceeded"))
                        });
                        tracing::warn!(op, attempt, throttled, "transaction kept conflicting; giving up");
                        // Losing to other writers is a conflict (409: a concurrent change
                        // won); only capacity trouble is unavailability (503).
                        return Err(if throttled { StoreError::Unavailable } else { StoreError::Contended });
                    }
                    let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code()).collect();
                    return Err(StoreError::Internal(format!("{op}: transaction cancelled: {codes:?}")));
                }
                if ctx.err().code() == Some("TransactionInProgressException") {
                    let wait = backoff(attempt);
                    if attempt < CONFLICT_ATTEMPTS && crate::deadline::allows(wait) {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    return Err(StoreError::Contended);
                }
            }
            return Err(classify(op, err));
        }
    }
}

fn backoff(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let base = 10u64 << attempt.min(6);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    Duration::from_millis(base / 2 + h.finish() % base.max(1))
}

/// Maps an SDK error to a store error, logging what the client will not see.
fn classify<E, R>(op: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().unwrap_or("unknown");
            match code {
                "ConditionalCheckFailedException" => StoreError::ConditionFailed(vec![(0, None)]),
                "ThrottlingException"
                | "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable" => {
                    tracing::warn!(op, code, "storage throttled or failing");
                    StoreError::Unavailable
                }
                _ => {
                    let message = ctx.err().message().unwrap_or_default().to_string();
                    tracing::error!(op, code, message, "storage request refused");
                    StoreError::Internal(format!("{op}: {code}"))
                }
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            tracing::warn!(op, error = %aws_smithy_types::error::display::DisplayErrorContext(&err), "storage unreachable");
            StoreError::Unavailable
        }
        _ => {
            tracing::error!(op, error = %aws_smithy_types::error::display::DisplayErrorContext(&err), "storage request failed");
            StoreError::Internal(format!("{op}: request failed"))
        }
    }
}

/// Shorthand for building attribute value maps.
pub(crate) fn values<const N: usize>(pairs: [(&str, AttributeValue); N]) -> HashMap<String, AttributeValue> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Names the stock bucket on an item being written. Bucket 0 is left unwritten, so the
/// items of unbucketed products keep the shape they always had (`Item::bucket` reads it
/// back as 0).
pub(crate) fn set_bucket(item: &mut HashMap<String, AttributeValue>, bucket: usize) {
    if bucket > 0 {
        item.insert(keys::BUCKET.into(), n(bucket as i64));
    }
}
