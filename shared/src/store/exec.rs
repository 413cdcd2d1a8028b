//! The executor: every request the store sends to DynamoDB goes through here, so that
//! error classification, retries of lost transactions, consumed-capacity counting and
//! (on the local stack) the IAM check of the HTTP connector live in one place.
//! Repositories build requests and read outcomes; they never call `send` themselves.

use super::item::Item;
use super::keys::{PK, SK};
use super::metrics::StoreMetrics;
use super::StoreError;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Get, KeysAndAttributes, PutRequest, ReturnConsumedCapacity, TransactGetItem,
    TransactWriteItem, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// A key as DynamoDB returns it (`LastEvaluatedKey`).
pub type Key = HashMap<String, AttributeValue>;

/// How often a transaction that lost to a concurrent one on the same items is retried.
pub const CONFLICT_ATTEMPTS: u32 = 8;
/// How often a snapshot read that met a transaction in progress is retried.
pub const SNAPSHOT_ATTEMPTS: u32 = 6;
/// How often a batch read or write is sent, with what DynamoDB left unprocessed.
const BATCH_ATTEMPTS: u32 = 8;
/// Most keys in one `BatchGetItem`.
const BATCH_GET_KEYS: usize = 100;
/// Most items one `BatchWriteItem` takes.
pub const BATCH_WRITE_ITEMS: usize = 25;

/// One single-item conditional write (`PutItem`, `UpdateItem`, `DeleteItem`): the same
/// sending, counting and reading of a failed condition for each.
macro_rules! conditional_write {
    ($(#[$doc:meta])* $name:ident, $builder:ty, $error:ident) => {
        $(#[$doc])*
        pub async fn $name(&self, op: &'static str, request: $builder) -> Result<Write, StoreError> {
            crate::deadline::note_write();
            let api = stringify!($builder).trim_end_matches("FluentBuilder");
            let send = request.return_consumed_capacity(ReturnConsumedCapacity::Total).send();
            match self.timed(op, api, Access::Write, send).await {
                Ok(out) => {
                    self.metrics.write(out.consumed_capacity());
                    Ok(Write::Applied)
                }
                Err(SdkError::ServiceError(ctx)) if ctx.err().is_conditional_check_failed_exception() => {
                    let old = match ctx.err() {
                        $error::ConditionalCheckFailedException(c) => c.item().cloned().map(Item),
                        _ => None,
                    };
                    Ok(Write::ConditionFailed(old))
                }
                Err(e) => Err(classify(op, Access::Write, e)),
            }
        }
    };
}

/// Whether a request reads or writes, as the counters (and the reading of a failure:
/// `classify`) tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// The outcome of a single conditional write.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Applied,
    /// The condition failed; the item as it was, when DynamoDB returned it
    /// (`ReturnValuesOnConditionCheckFailure: ALL_OLD`), or `None` when there is none.
    ConditionFailed(Option<Item>),
}

/// One page of a `Query`.
#[derive(Debug, Clone, Default)]
pub struct QueryPage {
    pub items: Vec<Item>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Key>,
    /// Items DynamoDB evaluated before any filter expression.
    pub scanned: u64,
    pub read_units: f64,
}

/// The DynamoDB client with its counters. Cheap to clone (the counters are shared).
#[derive(Debug, Clone)]
pub struct Db {
    client: Client,
    metrics: Arc<StoreMetrics>,
}

impl Db {
    pub fn new(client: Client) -> Self {
        Self { client, metrics: Arc::default() }
    }

    /// The same executor with its requests sent through `http` (local IAM enforcement);
    /// the counters stay shared.
    #[cfg(feature = "local")]
    pub fn with_http_client(&self, http: aws_smithy_runtime_api::client::http::SharedHttpClient) -> Self {
        let conf = self.client.config().to_builder().http_client(http).build();
        Self { client: Client::from_conf(conf), metrics: self.metrics.clone() }
    }

    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }

    /// Sends one request (`send`, a future) in its `dynamodb{op, api}` span and counts it
    /// as a read or a write, with the time to its answer, success or not.
    async fn timed<T>(
        &self,
        op: &'static str,
        api: &'static str,
        access: Access,
        send: impl Future<Output = T>,
    ) -> T {
        let started = Instant::now();
        let out = send.instrument(sdk_call(op, api)).await;
        self.metrics.sent(access == Access::Write, started.elapsed());
        out
    }

    /// Waits before a retry, adding the wait to the counters.
    async fn back_off(&self, wait: Duration) {
        self.metrics.backed_off(wait);
        tokio::time::sleep(wait).await;
    }

    /// The client, for the table definitions (`schema`) only.
    #[cfg(feature = "local")]
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// A `Query` on `table` to fill in and hand to `query_page` or `query_all`.
    pub fn query(&self, table: &str) -> QueryFluentBuilder {
        self.client.query().table_name(table)
    }

    /// A `PutItem` on `table` to fill in and hand to `put`.
    pub fn put_item(&self, table: &str) -> PutItemFluentBuilder {
        self.client.put_item().table_name(table)
    }

    /// An `UpdateItem` on `table` to fill in and hand to `update`.
    pub fn update_item(&self, table: &str) -> UpdateItemFluentBuilder {
        self.client.update_item().table_name(table)
    }

    /// A `DeleteItem` on `table` to fill in and hand to `delete`.
    pub fn delete_item(&self, table: &str) -> DeleteItemFluentBuilder {
        self.client.delete_item().table_name(table)
    }

    /// One item by key, read consistently.
    pub async fn get(
        &self,
        op: &'static str,
        table: &str,
        pk: &str,
        sk: &str,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .timed(
                op,
                "GetItem",
                Access::Read,
                self.client
                    .get_item()
                    .table_name(table)
                    .key(PK, AttributeValue::S(pk.into()))
                    .key(SK, AttributeValue::S(sk.into()))
                    .consistent_read(true)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send(),
            )
            .await
            .map_err(|e| classify(op, Access::Read, e))?;
        self.metrics.read(out.consumed_capacity());
        Ok(out.item.map(Item))
    }

    /// One page of `query`, from `start`.
    pub async fn query_page(
        &self,
        op: &'static str,
        query: QueryFluentBuilder,
        start: Option<Key>,
    ) -> Result<QueryPage, StoreError> {
        let out = self
            .timed(
                op,
                "Query",
                Access::Read,
                query
                    .set_exclusive_start_key(start)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send(),
            )
            .await
            .map_err(|e| classify(op, Access::Read, e))?;
        self.metrics.read(out.consumed_capacity());
        self.metrics.scanned(u64::try_from(out.scanned_count).unwrap_or(0));
        Ok(QueryPage {
            read_units: out.consumed_capacity.as_ref().and_then(|c| c.capacity_units).unwrap_or(0.0),
            scanned: u64::try_from(out.scanned_count).unwrap_or(0),
            items: out.items.unwrap_or_default().into_iter().map(Item).collect(),
            next: out.last_evaluated_key,
        })
    }

    /// Every item `query` matches, following pages until `enough` of them are read
    /// (`None`: all).
    pub async fn query_all(
        &self,
        op: &'static str,
        query: QueryFluentBuilder,
        enough: Option<usize>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut q = query.clone();
            if let Some(want) = enough {
                q = q.limit(i32::try_from(want - items.len()).unwrap_or(i32::MAX));
            }
            let page = self.query_page(op, q, start).await?;
            items.extend(page.items);
            start = page.next;
            if start.is_none() || enough.is_some_and(|want| items.len() >= want) {
                return Ok(items);
            }
        }
    }

    /// Consistent reads of many items of `table` by key (100 keys a call, unprocessed keys
    /// asked again). Missing items are simply absent from the result.
    pub async fn batch_get(&self, table: &str, keys: Vec<(String, String)>) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        for chunk in keys.chunks(BATCH_GET_KEYS) {
            let mut request = KeysAndAttributes::builder().consistent_read(true);
            for (pk, sk) in chunk {
                request = request.keys(key(pk, sk));
            }
            let first = HashMap::from([(table.to_string(), request.build()?)]);
            let found = self
                .until_processed(first, HashMap::is_empty, |keys| async move {
                    let res = self
                        .timed(
                            "batch_get",
                            "BatchGetItem",
                            Access::Read,
                            self.client
                                .batch_get_item()
                                .set_request_items(Some(keys))
                                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                                .send(),
                        )
                        .await
                        .map_err(|e| classify("batch_get", Access::Read, e))?;
                    self.metrics.read(res.consumed_capacity());
                    let found = res.responses.and_then(|mut r| r.remove(table)).unwrap_or_default();
                    Ok((found.into_iter().map(Item).collect(), res.unprocessed_keys))
                })
                .await?;
            out.extend(found);
        }
        Ok(out)
    }

    /// Puts `items` into `table` without conditions, 25 a call (`BatchWriteItem`), sending
    /// again what DynamoDB leaves unprocessed (with backoff). Only for items whose rewrite
    /// is harmless: the same key always carries the same content. A call that fails fails
    /// the whole: some items may have been written, and writing them again is harmless.
    pub async fn batch_put(
        &self,
        op: &'static str,
        table: &str,
        items: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<(), StoreError> {
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let requests = items
                .by_ref()
                .take(BATCH_WRITE_ITEMS)
                .map(|item| {
                    let put = PutRequest::builder().set_item(Some(item)).build()?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let first = HashMap::from([(table.to_string(), requests)]);
            let nothing_left = |m: &HashMap<String, Vec<WriteRequest>>| m.values().all(Vec::is_empty);
            self.until_processed(first, nothing_left, |requests| async move {
                crate::deadline::note_write();
                let res = self
                    .timed(
                        op,
                        "BatchWriteItem",
                        Access::Write,
                        self.client
                            .batch_write_item()
                            .set_request_items(Some(requests))
                            .return_consumed_capacity(ReturnConsumedCapacity::Total)
                            .send(),
                    )
                    .await
                    .map_err(|e| classify(op, Access::Write, e))?;
                self.metrics.write(res.consumed_capacity());
                Ok((Vec::new(), res.unprocessed_items))
            })
            .await?;
        }
        Ok(())
    }

    /// Sends `first` with `send`, then again whatever each answer left unprocessed (after
    /// a backoff), until nothing is (`done`), at most `BATCH_ATTEMPTS` sends in all
    /// (`Unavailable` after that); the items the answers carried, in order. The one loop
    /// of `BatchGetItem` and `BatchWriteItem`, whose unprocessed parts DynamoDB hands back
    /// when a partition is busy.
    async fn until_processed<R, Fut>(
        &self,
        first: R,
        done: impl Fn(&R) -> bool,
        send: impl Fn(R) -> Fut,
    ) -> Result<Vec<Item>, StoreError>
    where
        Fut: Future<Output = Result<(Vec<Item>, Option<R>), StoreError>>,
    {
        let mut out = Vec::new();
        let mut pending = Some(first);
        let mut attempt = 0u32;
        while let Some(request) = pending.take().filter(|r| !done(r)) {
            attempt += 1;
            if attempt > BATCH_ATTEMPTS {
                return Err(StoreError::Unavailable);
            }
            if attempt > 1 {
                self.back_off(backoff(attempt)).await;
            }
            let (items, left) = send(request).await?;
            out.extend(items);
            pending = left;
        }
        Ok(out)
    }

    /// The items of `table` at `keys` (at most 100) as of one instant
    /// (`TransactGetItems`); missing ones are absent. A read that meets a transaction in
    /// progress on one of them is cancelled by DynamoDB and retried here with the
    /// transactions' jittered backoff.
    pub async fn snapshot(&self, table: &str, keys: Vec<(String, String)>) -> Result<Vec<Item>, StoreError> {
        let gets = keys
            .iter()
            .map(|(pk, sk)| {
                let get = Get::builder().table_name(table).set_key(Some(key(pk, sk))).build()?;
                Ok(TransactGetItem::builder().get(get).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.until_won("snapshot", Access::Read, SNAPSHOT_ATTEMPTS, || async {
            let out = self
                .timed(
                    "snapshot",
                    "TransactGetItems",
                    Access::Read,
                    self.client
                        .transact_get_items()
                        .set_transact_items(Some(gets.clone()))
                        .return_consumed_capacity(ReturnConsumedCapacity::Total)
                        .send(),
                )
                .await
                .map_err(|e| {
                    if e.as_service_error().is_some_and(|s| s.is_transaction_canceled_exception()) {
                        Attempt::Lost(StoreError::Unavailable)
                    } else {
                        Attempt::Failed(classify("snapshot", Access::Read, e))
                    }
                })?;
            self.metrics.read(out.consumed_capacity());
            let items = out.responses.unwrap_or_default().into_iter().filter_map(|r| r.item);
            Ok(items.filter(|i| !i.is_empty()).map(Item).collect())
        })
        .await
    }

    /// Sends a request (`send`) until it is answered: one that lost to a concurrent
    /// transaction (`Attempt::Lost`: it did not apply, so sending it again cannot apply it
    /// twice) is sent again after a jittered backoff while `attempts` and the deadline
    /// allow, and then ends with the error it lost with. The one retry loop of the
    /// transactions, written and read.
    async fn until_won<T, Fut>(
        &self,
        op: &'static str,
        access: Access,
        attempts: u32,
        send: impl Fn() -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: Future<Output = Result<T, Attempt>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let lost = match send().await {
                Ok(answer) => return Ok(answer),
                Err(Attempt::Failed(e)) => return Err(e),
                Err(Attempt::Lost(e)) => e,
            };
            let wait = backoff(attempt);
            if attempt < attempts && crate::deadline::allows(wait) {
                if access == Access::Write {
                    self.metrics.conflict_retry();
                }
                self.back_off(wait).await;
                continue;
            }
            tracing::warn!(op, attempt, error = %lost, "kept losing to concurrent transactions; giving up");
            return Err(lost);
        }
    }

    /// Runs one `TransactWriteItems`. Losing to a concurrent transaction on the same items
    /// (`TransactionConflict`) is retried with jittered backoff: the transaction did not
    /// apply, so retrying cannot double-apply it. Failed conditions come back as
    /// `ConditionFailed` with the index (and, where asked for, the old image) of each.
    pub async fn transact(&self, op: &'static str, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        self.until_won(op, Access::Write, CONFLICT_ATTEMPTS, || async {
            crate::deadline::note_write();
            let result = self
                .timed(
                    op,
                    "TransactWriteItems",
                    Access::Write,
                    self.client
                        .transact_write_items()
                        .set_transact_items(Some(items.clone()))
                        .return_consumed_capacity(ReturnConsumedCapacity::Total)
                        .send(),
                )
                .await;
            let err = match result {
                Ok(out) => {
                    self.metrics.write(out.consumed_capacity());
                    return Ok(());
                }
                Err(e) => e,
            };
            let lost = match &err {
                SdkError::ServiceError(ctx) => match ctx.err() {
                    TransactWriteItemsError::TransactionCanceledException(tc) => {
                        let reasons = tc.cancellation_reasons();
                        let failed: Vec<(usize, Option<Item>)> = reasons
                            .iter()
                            .enumerate()
                            .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                            .map(|(i, r)| (i, r.item().map(|m| Item(m.clone()))))
                            .collect();
                        if !failed.is_empty() {
                            return Err(Attempt::Failed(StoreError::ConditionFailed { op, items: failed }));
                        }
                        let throttled = reasons
                            .iter()
                            .filter_map(|r| r.code())
                            .any(|c| matches!(c, "ThrottlingError" | "ProvisionedThroughputExceeded"));
                        let conflict =
                            reasons.iter().filter_map(|r| r.code()).any(|c| c == "TransactionConflict");
                        if !throttled && !conflict {
                            let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code()).collect();
                            tracing::error!(op, ?codes, "transaction cancelled");
                            let e = StoreError::Internal(format!("{op}: transaction cancelled: {codes:?}"));
                            return Err(Attempt::Failed(e));
                        }
                        // Losing to other writers is a conflict (409: a concurrent change
                        // won); only capacity trouble is unavailability (503).
                        Some(if throttled { StoreError::Unavailable } else { StoreError::Contended })
                    }
                    e if e.code() == Some("TransactionInProgressException") => Some(StoreError::Contended),
                    _ => None,
                },
                _ => None,
            };
            Err(match lost {
                Some(e) => Attempt::Lost(e),
                None => Attempt::Failed(classify(op, Access::Write, err)),
            })
        })
        .await
    }

    conditional_write!(
        /// Sends a conditional `PutItem`.
        put, PutItemFluentBuilder, PutItemError
    );
    conditional_write!(
        /// Sends a conditional `UpdateItem`.
        update, UpdateItemFluentBuilder, UpdateItemError
    );
    conditional_write!(
        /// Sends a conditional `DeleteItem`.
        delete, DeleteItemFluentBuilder, DeleteItemError
    );
}

fn key(pk: &str, sk: &str) -> Key {
    HashMap::from([
        (PK.to_string(), AttributeValue::S(pk.into())),
        (SK.to_string(), AttributeValue::S(sk.into())),
    ])
}

/// The span of one SDK call: which of our operations made it and which DynamoDB API it
/// called. At `DEBUG` the log gets a line per call when it closes, with its time
/// (`config::init_tracing`), and the request's `request_id` around it.
fn sdk_call(op: &'static str, api: &'static str) -> tracing::Span {
    tracing::debug_span!("dynamodb", op, api)
}

/// How one send of a request that may lose to a concurrent transaction ended
/// (`Db::until_won`).
enum Attempt {
    /// It lost and did not apply: worth sending again.
    Lost(StoreError),
    /// Final: this is the answer.
    Failed(StoreError),
}

/// Exponential backoff with jitter: half the step fixed, half random, so that buyers who
/// lost the same race do not come back together.
pub fn backoff(attempt: u32) -> Duration {
    let base = 10u64 << attempt.min(6);
    Duration::from_millis(base / 2 + fastrand::u64(0..base))
}

/// Maps an SDK error to a store error, logging what the client will not see. A write
/// that was refused (throttled, over a limit) provably did not apply: `Unavailable`. A
/// write sent without an answer that says what became of it (the SDK's own timeout, a
/// connection that failed after sending, an unreadable answer, a 5xx) may have applied:
/// `Unknown`. A read that fails changed nothing either way.
pub(crate) fn classify<E, R>(op: &'static str, access: Access, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let unanswered = || match access {
        Access::Write => StoreError::Unknown,
        Access::Read => StoreError::Unavailable,
    };
    match &err {
        SdkError::ServiceError(ctx) => {
            let code = ctx.err().code().unwrap_or("unknown");
            match code {
                "ConditionalCheckFailedException" => {
                    StoreError::ConditionFailed { op, items: vec![(0, None)] }
                }
                "ThrottlingException" | "ProvisionedThroughputExceededException" | "RequestLimitExceeded" => {
                    tracing::warn!(op, code, "storage throttled");
                    StoreError::Unavailable
                }
                // DynamoDB documents that a request answered 500 may have succeeded.
                "InternalServerError" | "ServiceUnavailable" => {
                    tracing::warn!(op, code, "storage failing");
                    unanswered()
                }
                _ => {
                    let message = ctx.err().message().unwrap_or_default().to_string();
                    tracing::error!(op, code, message, "storage request refused");
                    StoreError::Internal(format!("{op}: {code}"))
                }
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            tracing::warn!(op, error = %aws_smithy_types::error::display::DisplayErrorContext(&err), "storage unreachable or unanswered");
            unanswered()
        }
        _ => {
            tracing::error!(op, error = %aws_smithy_types::error::display::DisplayErrorContext(&err), "storage request failed");
            StoreError::Internal(format!("{op}: request failed"))
        }
    }
}
