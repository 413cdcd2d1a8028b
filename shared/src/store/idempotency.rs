//! Idempotency records. A request with an `Idempotency-Key` first takes a short lease on
//! its record; the business transaction then completes the record in the same
//! transaction as its effect, so "done" and "applied" can never disagree. A request that
//! fails with a 4xx gives the record up so a corrected retry may reuse the key; a crash
//! leaves a lease that expires and lets a retry take over (nothing was applied).

use super::keys::*;
use super::{classify, n, s, values, Item, Store, StoreError};
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use chrono::{DateTime, Duration, Utc};

/// How long a stored response is replayed.
pub const RETENTION: Duration = Duration::hours(24);
/// How long an unfinished request keeps its key before a retry may take over; longer
/// than any request can run (Lambda timeout).
pub const LEASE: Duration = Duration::seconds(60);

/// What a record says when a lease could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// The same key with a different request fingerprint.
    OtherRequest,
    /// The first request has not finished yet.
    InProgress,
    /// The first request finished; replay its response.
    Done { status: u16, body: String },
}

/// The write that marks a record done, added to the business transaction.
#[derive(Debug, Clone)]
pub struct Completion {
    pub pk: String,
    pub token: String,
    pub status: u16,
    pub body: String,
}

impl Completion {
    pub(crate) fn transact_item(&self, table: &str) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(table)
            .key(PK, s(&self.pk))
            .key(SK, s(IDEM_SK))
            .update_expression(
                "SET #state = :done, response_status = :st, response_body = :body REMOVE lease_until",
            )
            .condition_expression("lease_token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":st", n(i64::from(self.status)))
            .expression_attribute_values(":body", s(&self.body))
            .expression_attribute_values(":token", s(&self.token))
            .build()?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

/// What settling a cut-off request's lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The lease was this request's and is gone: nothing of the request applied or will.
    Released,
    /// No record: the lease was never written (nothing applied).
    Gone,
    /// The request completed: its stored response.
    Done { status: u16, body: String },
    /// Another attempt with the same key holds the record now.
    Taken,
    /// Storage did not say.
    Unknown,
}

impl Store {
    /// Takes the lease on `pk` for a request with `fingerprint`, or reports the record
    /// that holds it. Expired records (past retention) and stale leases are taken over.
    pub async fn begin_idempotent(
        &self,
        pk: &str,
        fingerprint: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<(), Existing>, StoreError> {
        let item = values([
            (PK, s(pk)),
            (SK, s(IDEM_SK)),
            ("entity", s("idempotency")),
            ("fingerprint", s(fingerprint)),
            ("state", s("pending")),
            ("lease_token", s(token)),
            ("lease_until", n((now + LEASE).timestamp_millis())),
            (TTL, n((now + RETENTION).timestamp())),
        ]);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR #ttl < :now_s OR (#state = :pending AND lease_until < :now_ms)",
            )
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now_s", n(now.timestamp()))
            .expression_attribute_values(":now_ms", n(now.timestamp_millis()))
            .expression_attribute_values(":pending", s("pending"))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await;
        let old = match result {
            Ok(out) => {
                self.metrics.write(out.consumed_capacity());
                return Ok(Ok(()));
            }
            Err(e) => match e.as_service_error() {
                Some(se) if se.is_conditional_check_failed_exception() => match se {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(
                        c,
                    ) => c.item().cloned().map(Item),
                    _ => None,
                },
                _ => return Err(classify("begin_idempotent", e)),
            },
        };
        let old = match old {
            Some(item) => item,
            None => match self.get_item(pk, IDEM_SK).await? {
                Some(item) => item,
                // Deleted in between (the first request failed): the caller may retry.
                None => return Ok(Err(Existing::InProgress)),
            },
        };
        if old.opt_s("fingerprint") != Some(fingerprint) {
            return Ok(Err(Existing::OtherRequest));
        }
        if old.opt_s("state") == Some("done") {
            let status = u16::try_from(old.n("response_status")?)
                .map_err(|_| StoreError::Internal("bad stored status".into()))?;
            return Ok(Err(Existing::Done { status, body: old.s("response_body")?.to_string() }));
        }
        Ok(Err(Existing::InProgress))
    }

    /// Gives up a lease after a request failed without effect. Best effort: if it fails,
    /// the lease simply runs out.
    pub async fn abandon_idempotent(&self, pk: &str, token: &str) {
        let _ = self.settle_idempotent(pk, token).await;
    }

    /// Settles a lease whose request was cut off: deletes it if it is still this
    /// request's pending lease, which also dooms any transaction of the request still in
    /// flight (its completion requires the lease), so nothing of it can apply afterwards.
    /// Otherwise says what the record holds now.
    pub async fn settle_idempotent(&self, pk: &str, token: &str) -> Settled {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(IDEM_SK))
            .condition_expression("lease_token = :token AND #state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":pending", s("pending"))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await;
        let old = match result {
            Ok(out) => {
                self.metrics.write(out.consumed_capacity());
                return Settled::Released;
            }
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::delete_item::DeleteItemError::ConditionalCheckFailedException(c)) => {
                    c.item().cloned().map(Item)
                }
                _ => {
                    let _ = classify("settle_idempotent", e);
                    return Settled::Unknown;
                }
            },
        };
        let Some(old) = old else { return Settled::Gone };
        if old.opt_s("state") == Some("done") {
            if let (Ok(status), Ok(body)) = (old.n("response_status"), old.s("response_body")) {
                if let Ok(status) = u16::try_from(status) {
                    return Settled::Done { status, body: body.to_string() };
                }
            }
            return Settled::Unknown;
        }
        Settled::Taken
    }
}
