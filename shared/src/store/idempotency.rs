//! Idempotency records. A request with an `Idempotency-Key` first takes a short lease on
//! its record; the business transaction then completes the record in the same
//! transaction as its effect, so "done" and "applied" can never disagree. A request that
//! fails with a 4xx gives the record up so a corrected retry may reuse the key; a crash
//! leaves a lease that expires and lets a retry take over (nothing was applied). What a
//! finished request answered is stored as an opaque response that the HTTP layer made.

use super::exec::Write;
use super::keys::*;
use super::records::idempotency::{self as rec, Held};
use super::records::{n, s};
use super::{Repo, StoreError};
use aws_sdk_dynamodb::types::{ReturnValuesOnConditionCheckFailure, Update};
use chrono::{DateTime, Utc};

pub use rec::{LEASE, RETENTION};

/// The key of one (caller, route, key) triple: a hash of the three, so neither the user
/// nor the key appears in the table's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemKey(String);

impl IdemKey {
    pub fn new(user_id: &str, route: &str, key: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{user_id}\0{route}\0{key}"));
        Self(idempotency_pk(&crate::domain::fingerprint::hex(&digest)))
    }
}

/// The write that marks a record done, for the business transaction to carry.
#[derive(Debug, Clone)]
pub struct Completion(pub(crate) Update);

/// What taking a lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// The lease is this request's.
    Leased,
    /// The same key with a different request fingerprint.
    OtherRequest,
    /// The first request has not finished yet (or its record just went away).
    InProgress,
    /// The first request finished; its stored response.
    Done(String),
}

/// What settling a cut-off request's lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The lease was this request's and is gone: nothing of the request applied or will.
    Released,
    /// No record: the lease was never written (nothing applied).
    Gone,
    /// The request completed: its stored response.
    Done(String),
    /// Another attempt with the same key holds the record now.
    Taken,
    /// Storage did not say.
    Unknown,
}

#[derive(Debug, Clone)]
pub struct Idempotency(pub(crate) Repo);

impl Idempotency {
    /// Takes the lease on `key` for a request with `fingerprint`, or reports the record
    /// that holds it. Expired records (past retention) and stale leases are taken over.
    pub async fn begin(
        &self,
        key: &IdemKey,
        fingerprint: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Begun, StoreError> {
        let put = self
            .0
            .db
            .put_item(&self.0.table)
            .set_item(Some(rec::lease_item(&key.0, fingerprint, token, now)))
            .condition_expression(rec::LEASE_CONDITION)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now_s", n(now.timestamp()))
            .expression_attribute_values(":now_ms", n(now.timestamp_millis()))
            .expression_attribute_values(":pending", s("pending"))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let old = match self.0.db.put("begin_idempotent", put).await? {
            Write::Applied => return Ok(Begun::Leased),
            Write::ConditionFailed(Some(old)) => old,
            Write::ConditionFailed(None) => {
                match self.0.db.get("begin_idempotent", &self.0.table, &key.0, IDEM_SK).await? {
                    Some(item) => item,
                    // Deleted in between (the first request failed): the caller may retry.
                    None => return Ok(Begun::InProgress),
                }
            }
        };
        Ok(match rec::held(&old)? {
            Held::Pending { fingerprint: f } | Held::Done { fingerprint: f, .. }
                if f.as_deref() != Some(fingerprint) =>
            {
                Begun::OtherRequest
            }
            Held::Done { response, .. } => Begun::Done(response),
            Held::Pending { .. } => Begun::InProgress,
        })
    }

    /// The write that marks `key`'s record done with `response`, for the business
    /// transaction; it applies only while the lease is still `token`'s.
    pub fn completion(&self, key: &IdemKey, token: &str, response: &str) -> Result<Completion, StoreError> {
        rec::complete(&self.0.table, &key.0, token, response).map(Completion)
    }

    /// Gives up a lease after a request failed without effect. Best effort: if it fails,
    /// the lease simply runs out.
    pub async fn abandon(&self, key: &IdemKey, token: &str) {
        let _ = self.settle(key, token).await;
    }

    /// Settles a lease whose request was cut off: deletes it if it is still this
    /// request's pending lease, which also dooms any transaction of the request still in
    /// flight (its completion requires the lease), so nothing of it can apply afterwards.
    /// Otherwise says what the record holds now.
    pub async fn settle(&self, key: &IdemKey, token: &str) -> Settled {
        let delete = self
            .0
            .db
            .delete_item(&self.0.table)
            .key(PK, s(&key.0))
            .key(SK, s(IDEM_SK))
            .condition_expression(rec::SETTLE_CONDITION)
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":pending", s("pending"))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match self.0.db.delete("settle_idempotent", delete).await {
            Ok(Write::Applied) => Settled::Released,
            Ok(Write::ConditionFailed(None)) => Settled::Gone,
            Ok(Write::ConditionFailed(Some(old))) => match rec::held(&old) {
                Ok(Held::Done { response, .. }) => Settled::Done(response),
                Ok(Held::Pending { .. }) => Settled::Taken,
                Err(_) => Settled::Unknown,
            },
            Err(_) => Settled::Unknown,
        }
    }
}
