//! Local stand-in for EventBridge Scheduler: one timer per reservation and time (the
//! schedule's name in AWS: `adapters::scheduler::schedule_name`) that runs the same
//! `jobs::expire` the `expire` Lambda runs, at that time, and the `sweep` every
//! `SWEEP_INTERVAL_SECONDS` (plus once at start, to pick up holds left over from before
//! a restart, as a missed schedule would be in AWS), and the `reconcile` every
//! `RECONCILE_INTERVAL_SECONDS` (the template's hour by default).

use chrono::{DateTime, Utc};
use shared::iam::IamError;
use shared::jobs::{
    expire, reconcile, sweep, ExpireEvent, ReconcileEvent, ReconcileSettings, SweepSettings, EXPIRE_FN,
    RECONCILE_FN, SWEEP_FN,
};
use shared::service::ports::{ExpiryScheduler, Scheduled, SchedulerError};
use shared::service::{App, ExpireOutcome};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// A reservation whose job found it not yet due (clock skew) is retried this much later.
const NOT_DUE_RETRY: chrono::Duration = chrono::Duration::milliseconds(100);

enum Command {
    /// A schedule's name, the reservations it ends, its time.
    Schedule(String, Vec<String>, DateTime<Utc>),
    Cancel(String, DateTime<Utc>),
}

/// The `ExpiryScheduler` the gateway's App uses: it only queues commands for the timer
/// task, so scheduling never blocks or fails a request.
#[derive(Debug, Clone)]
pub struct LocalScheduler {
    tx: mpsc::UnboundedSender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Schedule(name, ids, at) => write!(f, "Schedule({name}, {ids:?}, {at})"),
            Self::Cancel(id, at) => write!(f, "Cancel({id}, {at})"),
        }
    }
}

impl LocalScheduler {
    /// Hands `command` to the timer task; answered at once, as the Scheduler's API is.
    fn send(&self, command: Command) -> Scheduled<'static> {
        let sent = self.tx.send(command);
        Box::pin(async move { sent.map_err(|_| SchedulerError::Failed("local scheduler stopped".into())) })
    }
}

impl ExpiryScheduler for LocalScheduler {
    fn schedule_many<'a>(&'a self, name: &'a str, ids: &'a [String], at: DateTime<Utc>) -> Scheduled<'a> {
        self.send(Command::Schedule(name.to_string(), ids.to_vec(), at))
    }
    fn cancel<'a>(&'a self, name: &'a str, at: DateTime<Utc>) -> Scheduled<'a> {
        self.send(Command::Cancel(name.to_string(), at))
    }
}

/// Equips `app` with a local scheduler and starts its timer task on the current runtime:
/// expiries run as the `expire` function, sweeps as the `sweep` function (each held to
/// its own IAM policy). The task ends when every handle on the returned App is dropped.
pub fn with_local_scheduler(
    app: App,
    sweep_every: Duration,
    sweep_settings: SweepSettings,
) -> Result<App, IamError> {
    let (tx, rx) = mpsc::unbounded_channel();
    // The timer task never schedules, and holding the queue's sender itself would keep
    // it alive forever, so its jobs run on Apps without one.
    let expire_app = app.for_function(EXPIRE_FN)?;
    let sweep_app = app.for_function(SWEEP_FN)?;
    let slots = Slots { expire: slots(&app, EXPIRE_FN)?, sweep: slots(&app, SWEEP_FN)? };
    let app = app.with_scheduler(Arc::new(LocalScheduler { tx }));
    tokio::spawn(run(expire_app, sweep_app, slots, rx, sweep_every, sweep_settings));
    Ok(app)
}

/// Starts the reconciliation's timer: every `every` (not at start: a run reads every
/// product), one run of the `reconcile` job as the `reconcile` function; a run still
/// going at the next tick delays it.
pub fn spawn_reconcile(app: &App, every: Duration, settings: ReconcileSettings) -> Result<(), IamError> {
    let app = app.for_function(RECONCILE_FN)?;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let deadline = app.local_deadline(RECONCILE_FN);
            if let Err(e) = reconcile(&app, ReconcileEvent::default(), settings, deadline).await {
                tracing::warn!(error = %e, "reconcile failed");
            }
        }
    });
    Ok(())
}

/// Runs of a job allowed at once without a template (no local IAM): a bound all the same.
const DEFAULT_SLOTS: usize = 20;

/// How many runs of each job may go at once: the function's reserved concurrency in the
/// template, as in AWS, where the platform would throttle any more. A due expiry waits
/// for a slot (EventBridge Scheduler retries a throttled invocation); a sweep finding the
/// previous one still running is skipped (the next tick comes a minute later).
struct Slots {
    expire: Arc<Semaphore>,
    sweep: Arc<Semaphore>,
}

fn slots(app: &App, binary: &str) -> Result<Arc<Semaphore>, IamError> {
    let n = match app.local_iam() {
        Some(iam) => {
            iam.template().function(binary)?.reserved_concurrency.map_or(DEFAULT_SLOTS, |n| n as usize)
        }
        None => DEFAULT_SLOTS,
    };
    Ok(Arc::new(Semaphore::new(n.max(1))))
}

async fn run(
    app: App,
    sweep_app: App,
    slots: Slots,
    mut rx: mpsc::UnboundedReceiver<Command>,
    sweep_every: Duration,
    sweep_settings: SweepSettings,
) {
    // Every schedule by time and name (a schedule is its name and time), with the
    // reservations it ends.
    let mut due: BTreeMap<(DateTime<Utc>, String), Vec<String>> = BTreeMap::new();
    let mut sweep_tick = tokio::time::interval(sweep_every);
    sweep_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (retry_tx, mut retry_rx) = mpsc::unbounded_channel::<(String, DateTime<Utc>)>();
    loop {
        let next = due.keys().next().map(|(at, _)| *at);
        let wait = async {
            match next {
                Some(at) => tokio::time::sleep((at - Utc::now()).to_std().unwrap_or_default()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            cmd = rx.recv() => match cmd {
                None => break,
                // Creating an existing schedule is success and changes nothing.
                Some(Command::Schedule(name, ids, at)) => {
                    due.entry((at, name)).or_insert(ids);
                }
                Some(Command::Cancel(id, at)) => {
                    due.remove(&(at, id));
                }
            },
            Some((id, at)) = retry_rx.recv() => {
                due.entry((at, id.clone())).or_insert_with(|| vec![id]);
            }
            () = wait => {
                let now = Utc::now();
                while let Some(((at, name), ids)) = due.first_key_value().map(|(k, v)| (k.clone(), v.clone())) {
                    if at > now {
                        break;
                    }
                    due.remove(&(at, name));
                    // A reservation with a later schedule (the leftover of an extension)
                    // that this run finds not due is that schedule's.
                    let later: Vec<bool> = ids.iter().map(|id| due.values().any(|other| other.contains(id))).collect();
                    let (app, retry_tx, slot) = (app.clone(), retry_tx.clone(), slots.expire.clone());
                    // One run per schedule, as in AWS: a batch's schedule ends all its lines.
                    tokio::spawn(async move {
                        let Ok(_slot) = slot.acquire_owned().await else { return };
                        let deadline = app.local_deadline(EXPIRE_FN);
                        match expire(&app, ExpireEvent::of(ids.clone()), deadline).await {
                            Ok(r) => {
                                for (e, later) in r.reservations.iter().zip(later) {
                                    if e.outcome == ExpireOutcome::NotDue && !later {
                                        let _ = retry_tx.send((e.reservation_id.clone(), Utc::now() + NOT_DUE_RETRY));
                                    }
                                }
                                tracing::debug!(outcome = ?r.reservations, "expire ran");
                            }
                            // As Lambda would, try again a little later; the sweep is the
                            // net under this.
                            Err(e) => {
                                tracing::warn!(reservations = ?ids, error = %e, "expire failed; retrying");
                                for id in ids {
                                    let _ = retry_tx.send((id, Utc::now() + chrono::Duration::seconds(1)));
                                }
                            }
                        }
                    });
                }
            }
            _ = sweep_tick.tick() => {
                let Ok(slot) = slots.sweep.clone().try_acquire_owned() else {
                    tracing::info!("the previous sweep is still running; skipping this one");
                    continue;
                };
                let app = sweep_app.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Err(e) = sweep(&app, sweep_settings, app.local_deadline(SWEEP_FN)).await {
                        tracing::warn!(error = %e, "sweep failed");
                    }
                });
            }
        }
    }
}
