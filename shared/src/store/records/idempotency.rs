//! Idempotency records: a lease while the first request runs, then the response it gave,
//! kept for replay. The response is opaque here: the HTTP layer renders and reads it.

use super::{n, s, update_at, Attrs};
use crate::store::keys::*;
use crate::store::{Item, StoreError};
use aws_sdk_dynamodb::types::Update;
use chrono::{DateTime, Duration, Utc};

/// How long a stored response is replayed.
pub const RETENTION: Duration = Duration::hours(24);
/// How long an unfinished request keeps its key before a retry may take over; longer
/// than any request can run (Lambda timeout).
pub const LEASE: Duration = Duration::seconds(60);

/// Taking a lease: the record is new, past retention, or a stale lease.
pub const LEASE_CONDITION: &str =
    "attribute_not_exists(pk) OR #ttl < :now_s OR (#state = :pending AND lease_until < :now_ms)";

/// Settling a lease: it is still this request's, and pending.
pub const SETTLE_CONDITION: &str = "lease_token = :token AND #state = :pending";

pub fn lease_item(pk: &str, fingerprint: &str, token: &str, now: DateTime<Utc>) -> Attrs {
    Attrs::from([
        (PK.into(), s(pk)),
        (SK.into(), s(IDEM_SK)),
        ("entity".into(), s("idempotency")),
        ("fingerprint".into(), s(fingerprint)),
        ("state".into(), s("pending")),
        ("lease_token".into(), s(token)),
        ("lease_until".into(), n((now + LEASE).timestamp_millis())),
        (TTL.into(), n((now + RETENTION).timestamp())),
    ])
}

/// Marks the record done with `response`, on condition that the lease is still `token`'s.
/// It goes into the business transaction, so "done" and "applied" cannot disagree.
pub fn complete(table: &str, pk: &str, token: &str, response: &str) -> Result<Update, StoreError> {
    Ok(update_at(table, pk.to_string(), IDEM_SK)
        .update_expression("SET #state = :done, response_body = :body REMOVE lease_until")
        .condition_expression("lease_token = :token")
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":done", s("done"))
        .expression_attribute_values(":body", s(response))
        .expression_attribute_values(":token", s(token))
        .build()?)
}

/// What a record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// A lease of a request with this fingerprint.
    Pending { fingerprint: Option<String> },
    /// A finished request's fingerprint and response.
    Done { fingerprint: Option<String>, response: String },
}

pub fn held(i: &Item) -> Result<Held, StoreError> {
    let fingerprint = i.opt_s("fingerprint").map(str::to_string);
    if i.opt_s("state") == Some("done") {
        return Ok(Held::Done { fingerprint, response: i.s("response_body")?.to_string() });
    }
    Ok(Held::Pending { fingerprint })
}
