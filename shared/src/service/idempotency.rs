//! The Idempotency-Key flow shared by every create (reservations, orders): take the
//! lease, run the operation (which completes the record inside its own transaction),
//! and give the lease up if the operation failed without effect.

use super::App;
use crate::adapters::identity::Caller;
use crate::adapters::ids::new_id;
use crate::domain::fingerprint::hex;
use crate::domain::DomainError;
use crate::store::idempotency::{Completion, Existing, Settled};
use crate::store::keys::idempotency_pk;
use sha2::{Digest, Sha256};
use std::future::Future;

/// A create request's Idempotency-Key, already validated, and its body's fingerprint.
#[derive(Debug, Clone)]
pub struct IdempotencyRequest {
    pub key: String,
    /// The route the key is scoped to (keys are per user and route).
    pub route: &'static str,
    pub fingerprint: String,
}

/// Result of a create: a new entity, or the stored first response of a retried key.
#[derive(Debug, Clone)]
pub enum Created<T> {
    New(T),
    Replay { status: u16, body: String },
}

/// The lease a keyed request holds on its record while it runs.
#[derive(Debug, Clone)]
pub struct Lease {
    pk: String,
    token: String,
}

impl Lease {
    /// The write that marks the record done with this response; it goes into the
    /// operation's own transaction.
    pub fn complete(&self, (status, body): (u16, String)) -> Completion {
        Completion { pk: self.pk.clone(), token: self.token.clone(), status, body }
    }
}

impl App {
    /// Runs `op` at most once per (caller, route, key): a retry with the same body gets
    /// the stored response, another body `IdempotencyKeyReused`, and a retry while the
    /// first is running `IdempotencyInProgress`. Without a key, `op` just runs.
    pub(crate) async fn idempotently<T, F, Fut>(
        &self,
        caller: &Caller,
        idem: Option<IdempotencyRequest>,
        op: F,
    ) -> Result<Created<T>, DomainError>
    where
        F: FnOnce(Option<Lease>) -> Fut,
        Fut: Future<Output = Result<T, DomainError>>,
    {
        let Some(idem) = idem else {
            return op(None).await.map(Created::New);
        };
        let scope = hex(&Sha256::digest(format!("{}\0{}\0{}", caller.user_id, idem.route, idem.key)));
        let lease = Lease { pk: idempotency_pk(&scope), token: new_id(self.clock.now()) };
        // The lease and the operation run in a part of the request's time that leaves
        // room to settle the lease if they are cut off.
        let attempt = crate::deadline::within_settling(async {
            let begun = match self
                .store
                .begin_idempotent(&lease.pk, &idem.fingerprint, &lease.token, self.clock.now())
                .await
            {
                Ok(begun) => begun,
                Err(e) => return Step::Early(Err(e.into())),
            };
            match begun {
                Ok(()) => Step::Ran(op(Some(lease.clone())).await),
                Err(Existing::OtherRequest) => Step::Early(Err(DomainError::IdempotencyKeyReused)),
                Err(Existing::InProgress) => Step::Early(Err(DomainError::IdempotencyInProgress)),
                Err(Existing::Done { status, body }) => Step::Early(Ok(Created::Replay { status, body })),
            }
        })
        .await;
        match attempt {
            Ok(Step::Early(result)) => result,
            Ok(Step::Ran(Ok(t))) => Ok(Created::New(t)),
            Ok(Step::Ran(Err(e))) => {
                // Lost lease: a retry owns the record now; leave it alone.
                if e != DomainError::IdempotencyInProgress {
                    self.store.abandon_idempotent(&lease.pk, &lease.token).await;
                }
                Err(e)
            }
            // Cut off: the record says what happened, and settling it frees the key.
            Err(_) => match self.store.settle_idempotent(&lease.pk, &lease.token).await {
                Settled::Released | Settled::Gone => Err(DomainError::OutOfTime { wrote: false }),
                Settled::Done { status, body } => Ok(Created::Replay { status, body }),
                Settled::Taken => Err(DomainError::IdempotencyInProgress),
                Settled::Unknown => Err(DomainError::OutOfTime { wrote: true }),
            },
        }
    }
}

/// How far a keyed request got before its operation's outcome.
enum Step<T> {
    /// It ended before running the operation (a replay, a reused key, storage trouble).
    Early(Result<Created<T>, DomainError>),
    Ran(Result<T, DomainError>),
}
