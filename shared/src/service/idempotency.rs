//! The Idempotency-Key flow shared by every create (reservations, orders): take the
//! lease, run the operation (which completes the record inside its own transaction),
//! and give the lease up if the operation failed without effect. What is stored for
//! replay is opaque here: the caller's `encode` makes it from the new entity.

use super::App;
use crate::domain::caller::Caller;
use crate::domain::ids::new_id;
use crate::domain::DomainError;
use crate::store::idempotency::{Begun, Completion, IdemKey, Settled};
use std::future::Future;

/// A create request's Idempotency-Key, already validated, its body's fingerprint, and how
/// its first response is stored.
pub struct IdempotencyRequest<T> {
    pub key: String,
    /// The route the key is scoped to (keys are per user and route).
    pub route: String,
    pub fingerprint: String,
    /// What a retry gets back: the new entity as the caller would show it.
    pub encode: fn(&T) -> String,
}

/// Result of a create: a new entity, or the stored first response of a retried key.
#[derive(Debug, Clone)]
pub enum Created<T> {
    New(T),
    Replay(String),
}

/// The lease a keyed request holds on its record while it runs.
pub struct Lease<T> {
    key: IdemKey,
    token: String,
    encode: fn(&T) -> String,
}

impl App {
    /// The write that marks the lease's record done with `t`'s stored response; it goes
    /// into the operation's own transaction.
    pub(crate) fn completion<T>(
        &self,
        lease: Option<&Lease<T>>,
        t: &T,
    ) -> Result<Option<Completion>, DomainError> {
        let Some(l) = lease else { return Ok(None) };
        Ok(Some(self.store.idempotency.completion(&l.key, &l.token, &(l.encode)(t))?))
    }

    /// Runs `op` at most once per (caller, route, key): a retry with the same body gets
    /// the stored response, another body `IdempotencyKeyReused`, and a retry while the
    /// first is running `IdempotencyInProgress`. Without a key, `op` just runs.
    pub(crate) async fn idempotently<T, F, Fut>(
        &self,
        caller: &Caller,
        idem: Option<IdempotencyRequest<T>>,
        op: F,
    ) -> Result<Created<T>, DomainError>
    where
        F: FnOnce(Option<Lease<T>>) -> Fut,
        Fut: Future<Output = Result<T, DomainError>>,
    {
        let Some(idem) = idem else {
            return op(None).await.map(Created::New);
        };
        let key = IdemKey::new(&caller.user_id, &idem.route, &idem.key);
        let token = new_id(self.clock.now());
        let repo = &self.store.idempotency;
        // The lease and the operation run in a part of the request's time that leaves
        // room to settle the lease if they are cut off.
        let attempt = crate::deadline::within_settling(async {
            match repo.begin(&key, &idem.fingerprint, &token, self.clock.now()).await {
                Err(e) => Step::Early(Err(e.into())),
                Ok(Begun::Leased) => Step::Ran(
                    op(Some(Lease { key: key.clone(), token: token.clone(), encode: idem.encode })).await,
                ),
                Ok(Begun::OtherRequest) => Step::Early(Err(DomainError::IdempotencyKeyReused)),
                Ok(Begun::InProgress) => Step::Early(Err(DomainError::IdempotencyInProgress)),
                Ok(Begun::Done(stored)) => Step::Early(Ok(Created::Replay(stored))),
            }
        })
        .await;
        match attempt {
            Ok(Step::Early(result)) => result,
            Ok(Step::Ran(Ok(t))) => Ok(Created::New(t)),
            // The operation's write went unanswered: the record says what happened.
            Ok(Step::Ran(Err(DomainError::OutcomeUnknown))) => settled(
                repo.settle(&key, &token).await,
                DomainError::Unavailable,
                DomainError::OutcomeUnknown,
            ),
            Ok(Step::Ran(Err(e))) => {
                // Lost lease: a retry owns the record now; leave it alone.
                if e != DomainError::IdempotencyInProgress {
                    repo.abandon(&key, &token).await;
                }
                Err(e)
            }
            // Cut off: the record says what happened, and settling it frees the key.
            Err(_) => settled(
                repo.settle(&key, &token).await,
                DomainError::OutOfTime { wrote: false },
                DomainError::OutOfTime { wrote: true },
            ),
        }
    }
}

/// What a keyed request answers once its lease was settled after its operation's outcome
/// went unknown: the stored response when the operation applied, `untouched` when the
/// lease was given up (nothing applied, the key is free), `unknown` when even the record
/// could not be read.
fn settled<T>(s: Settled, untouched: DomainError, unknown: DomainError) -> Result<Created<T>, DomainError> {
    match s {
        Settled::Released | Settled::Gone => Err(untouched),
        Settled::Done(stored) => Ok(Created::Replay(stored)),
        Settled::Taken => Err(DomainError::IdempotencyInProgress),
        Settled::Unknown => Err(unknown),
    }
}

/// How far a keyed request got before its operation's outcome.
enum Step<T> {
    /// It ended before running the operation (a replay, a reused key, storage trouble).
    Early(Result<Created<T>, DomainError>),
    Ran(Result<T, DomainError>),
}
