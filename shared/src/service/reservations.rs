//! Reserving, reading and releasing stock holds, with Idempotency-Key support.

use super::idempotency::{Created, IdempotencyRequest};
use super::ports::{Metric, SchedulerError};
use super::App;
use crate::domain::buckets::{home_bucket, HoldSteps, Step, HOLD_ATTEMPTS};
use crate::domain::caller::Caller;
use crate::domain::ids::{new_id, ReservationId};
use crate::domain::product::Terms;
use crate::domain::reservation::{NewBatch, NewReservation, Reservation, ReservationStatus};
use crate::domain::stock::{
    choose_warehouse, plan_pick, PickPlan, WarehouseChoice, WarehouseId, PICK_ATTEMPTS,
};
use crate::domain::DomainError;
use crate::store::idempotency::Completion;
use crate::store::reservations::{Ended, Extended, HoldEnd, HoldError};
use crate::store::stock::Gathered;
use chrono::{DateTime, Utc};

/// How often an extension reads the hold again after another change got there first.
const EXTEND_ATTEMPTS: usize = 5;

/// The warehouse a hold takes, its product's terms, and how it was chosen.
struct Picked {
    warehouse: WarehouseId,
    terms: Terms,
    by: PickedBy,
}

/// A line of a hold while it is being decided.
#[derive(Default)]
struct LineState {
    /// Its warehouse and terms; `None` until picked, and again when it must pick anew.
    picked: Option<Picked>,
    /// A bucket it was steered to after its home bucket ran short.
    bucket: Option<usize>,
    /// The bucket plan of a bucketed line once its bucket was short.
    steps: Option<HoldSteps>,
    /// Picks a read made that sold out before the write.
    picks: usize,
    /// The units its row's waitlist asks for, as last seen (0 until seen otherwise).
    waiting: i64,
}

impl LineState {
    /// Decide the line again from its pick.
    fn replan(&mut self) {
        (self.picked, self.bucket, self.steps, self.waiting) = (None, None, None, 0);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PickedBy {
    /// The buyer named it.
    Named,
    /// The product's only warehouse, from this instance's memory of its terms.
    Sole,
    /// Chosen from a fresh read of the product.
    Read,
}

impl App {
    /// Holds `quantity` units. With an idempotency request, the first successful response
    /// is stored with the effect and replayed.
    pub async fn create_reservation(
        &self,
        caller: &Caller,
        new: NewReservation,
        idem: Option<IdempotencyRequest<Reservation>>,
    ) -> Result<Created<Reservation>, DomainError> {
        let result = self
            .idempotently(caller, idem, |lease| async move {
                let lines = std::slice::from_ref(&new);
                let complete = |held: &[Reservation]| match held {
                    [r] => self.completion(lease.as_ref(), r),
                    _ => Err(DomainError::Conflict("one line, one hold")),
                };
                let mut held = self.hold_lines(caller, lines, complete).await.map_err(|(_, e)| e)?;
                held.pop().ok_or(DomainError::Conflict("one line, one hold"))
            })
            .await;
        self.count_holds(&result, |_| 1);
        result
    }

    /// Counts created holds (a replay creates none) and refusals for stock or the cap.
    fn count_holds<T>(&self, result: &Result<Created<T>, DomainError>, holds: impl Fn(&T) -> u64) {
        let metric = match result {
            Ok(Created::New(t)) => return self.metrics.count(Metric::ReservationsCreated, holds(t)),
            Ok(Created::Replay(_)) => return,
            Err(DomainError::OnLine { cause, .. }) => &**cause,
            Err(e) => e,
        };
        match metric {
            DomainError::InsufficientStock { .. } => self.metrics.count(Metric::RefusedForStock, 1),
            DomainError::HoldLimitReached { .. } => self.metrics.count(Metric::RefusedForHoldCap, 1),
            _ => {}
        }
    }

    /// The warehouse a hold of `line` takes and the product's terms (`plan_pick`): the
    /// named warehouse, or a one-warehouse product's warehouse, with terms from this
    /// instance's memory and nothing read; else the one `choose_warehouse` picks from a
    /// fresh read of the product, which also refuses what it shows cannot be held without
    /// a write. An archived product is refused here.
    async fn pick(&self, line: &NewReservation) -> Result<Picked, DomainError> {
        let mut terms = self.terms_of(&line.product_id).await?;
        if !terms.active {
            // Refuse on a fresh read only: the product may have been reactivated since
            // this instance learnt its terms (a hold is checked against its row's terms,
            // a refusal against nothing).
            self.forget_terms(&line.product_id);
            terms = self.terms_of(&line.product_id).await?;
        }
        let sold_out = line.warehouse_id.is_none() && self.sold_out(&line.product_id);
        let picked = match plan_pick(line.warehouse_id.as_ref(), terms.sole_warehouse(), sold_out) {
            PickPlan::Named(w) => Picked { warehouse: w, terms, by: PickedBy::Named },
            PickPlan::Sole(w) => Picked { warehouse: w, terms, by: PickedBy::Sole },
            PickPlan::Read => {
                let product = self.get_product(&line.product_id).await?;
                if !product.active {
                    return Err(DomainError::ProductInactive);
                }
                match choose_warehouse(&product.stock, line.quantity) {
                    WarehouseChoice::Fill(w) => {
                        Picked { warehouse: w, terms: Terms::of(&product), by: PickedBy::Read }
                    }
                    WarehouseChoice::Insufficient { available } => {
                        return Err(DomainError::InsufficientStock { available })
                    }
                }
            }
        };
        if !picked.terms.active {
            return Err(DomainError::ProductInactive);
        }
        Ok(picked)
    }

    /// A new active hold of `line` made `now`, in `bucket` (its home bucket when `None`).
    fn new_hold(
        &self,
        caller: &Caller,
        line: &NewReservation,
        warehouse: WarehouseId,
        terms: &Terms,
        now: chrono::DateTime<chrono::Utc>,
        bucket: Option<usize>,
    ) -> Reservation {
        let id = new_id(now);
        Reservation {
            bucket: bucket.unwrap_or_else(|| home_bucket(&id, terms.buckets)),
            id,
            user_id: caller.user_id.clone(),
            product_id: line.product_id.to_string(),
            warehouse_id: warehouse,
            quantity: line.quantity,
            status: ReservationStatus::Active,
            // Every hold ends by MAX_HOLD_SECONDS after its creation, extensions included.
            expires_at: now + self.config.reservation_ttl.min(self.config.max_hold),
            created_at: now,
            updated_at: now,
        }
    }

    /// Holds every line of `new` in one atomic step, or nothing: all reservations share
    /// one `expires_at`; auto-picked warehouses are chosen per line from a read of the
    /// product, re-picked when a race took the units; a bucketed line starts at its home
    /// bucket and re-plans as a single hold does. A failing line is named (the first in
    /// request order); nothing of the batch is held then.
    pub async fn create_reservation_batch(
        &self,
        caller: &Caller,
        new: NewBatch,
        idem: Option<IdempotencyRequest<Vec<Reservation>>>,
    ) -> Result<Created<Vec<Reservation>>, DomainError> {
        let result = self
            .idempotently(caller, idem, |lease| async move {
                let complete = |held: &[Reservation]| self.completion(lease.as_ref(), &held.to_vec());
                self.hold_lines(caller, &new.lines, complete).await.map_err(|(line, cause)| match line {
                    Some(i) => DomainError::OnLine {
                        product_id: new.lines.get(i).map(|l| l.product_id.to_string()).unwrap_or_default(),
                        cause: Box::new(cause),
                    },
                    None => cause,
                })
            })
            .await;
        self.count_holds(&result, |holds| holds.len() as u64);
        result
    }

    /// The one way stock is held: every line of `lines` in one atomic write, or nothing
    /// (a single hold is a batch of one). All holds share one `expires_at`. Each line
    /// picks its warehouse (`pick`) and starts at its home bucket; a line the write
    /// refuses is handled by `refused`, which either re-plans that line (another bucket,
    /// a gather, a fresh pick, fresh terms) or ends the request with the line's error.
    /// `complete` makes the idempotency record's completion from the holds about to be
    /// written. An error names the failing line (request order) when one line caused it.
    pub(super) async fn hold_lines(
        &self,
        caller: &Caller,
        lines: &[NewReservation],
        complete: impl Fn(&[Reservation]) -> Result<Option<Completion>, DomainError>,
    ) -> Result<Vec<Reservation>, (Option<usize>, DomainError)> {
        let mut state: Vec<LineState> = lines.iter().map(|_| LineState::default()).collect();
        // Each line's re-plans are bounded on their own (`HOLD_ATTEMPTS` shorts of its
        // buckets, `PICK_ATTEMPTS` picks); this bounds the writes of the whole request.
        for _ in 0..HOLD_ATTEMPTS * PICK_ATTEMPTS {
            let now = self.clock.now();
            let mut planned = Vec::with_capacity(lines.len());
            for (i, (line, s)) in lines.iter().zip(state.iter_mut()).enumerate() {
                let picked = match s.picked.take() {
                    Some(p) => p,
                    None => self.pick(line).await.map_err(|e| (Some(i), e))?,
                };
                let r = self.new_hold(caller, line, picked.warehouse.clone(), &picked.terms, now, s.bucket);
                planned.push((r, picked.terms.clone(), s.waiting));
                s.picked = Some(picked);
            }
            let held: Vec<Reservation> = planned.iter().map(|(r, _, _)| r.clone()).collect();
            let completion = complete(&held).map_err(|e| (None, e))?;
            let cap = self.config.max_active_holds;
            let (i, why) =
                match self.store.reservations.hold(&planned, &caller.user_id, completion, cap).await {
                    Ok(()) => {
                        for (s, r) in state.iter().zip(&held) {
                            if s.picked.as_ref().is_some_and(|p| p.by == PickedBy::Read) {
                                self.note_sold_out(&r.product_id, false);
                            }
                        }
                        self.schedule_batch_expiry(&held, now).await;
                        return Ok(held);
                    }
                    Err(HoldError::HoldLimit) => {
                        return Err((None, DomainError::HoldLimitReached { limit: cap }))
                    }
                    Err(HoldError::LeaseLost) => return Err((None, DomainError::IdempotencyInProgress)),
                    Err(HoldError::Store(e)) => return Err((None, e.into())),
                    // New ids and a fresh look at every row on the next write.
                    Err(HoldError::Raced) => continue,
                    Err(
                        why @ (HoldError::NoStockRow { line }
                        | HoldError::Insufficient { line, .. }
                        | HoldError::PurchaseLimit { line, .. }
                        | HoldError::TermsChanged { line }
                        | HoldError::Waiting { line, .. }),
                    ) => (line, why),
                };
            let (Some(line), Some(s), Some((r, _, _))) = (lines.get(i), state.get_mut(i), planned.get(i))
            else {
                return Err((None, DomainError::Conflict("stock changed concurrently; retry")));
            };
            self.refused(caller, line, r, s, why).await.map_err(|e| (Some(i), e))?;
        }
        Err((None, DomainError::Conflict("stock changed concurrently; retry")))
    }

    /// What a line's refusal by the hold's write means: `Ok` when the line was re-planned
    /// and the write should run again, else the line's error. The one mapping of a
    /// refusal to an error, for single holds and batch lines alike.
    async fn refused(
        &self,
        caller: &Caller,
        line: &NewReservation,
        r: &Reservation,
        s: &mut LineState,
        why: HoldError,
    ) -> Result<(), DomainError> {
        let Some(picked) = s.picked.as_ref() else {
            return Err(DomainError::Conflict("stock changed concurrently; retry"));
        };
        let (by, k) = (picked.by, picked.terms.buckets);
        let available = match why {
            // The product was archived, its limit or its warehouses changed meanwhile:
            // decide again on fresh terms.
            HoldError::TermsChanged { .. } => {
                self.forget_terms(&line.product_id);
                s.replan();
                return Ok(());
            }
            // Its row's waitlist changed: the same line again, needing what the queue
            // leaves now.
            HoldError::Waiting { waiting, .. } => {
                s.waiting = waiting;
                return Ok(());
            }
            HoldError::PurchaseLimit { limit, counted, .. } => {
                return Err(DomainError::PurchaseLimitReached { limit, remaining: (limit - counted).max(0) })
            }
            // Tell an unknown product from an unknown warehouse.
            HoldError::NoStockRow { .. } => return Err(self.missing_row(&line.product_id).await?),
            HoldError::Insufficient { .. } if k > 1 => match self.replan_buckets(caller, r, s).await? {
                Some(available) => available,
                None => return Ok(()),
            },
            HoldError::Insufficient { available, .. } => available,
            HoldError::HoldLimit | HoldError::LeaseLost | HoldError::Raced | HoldError::Store(_) => {
                return Err(DomainError::Conflict("stock changed concurrently; retry"))
            }
        };
        // The warehouse (all its buckets) is short.
        match by {
            PickedBy::Named => Err(DomainError::InsufficientStock { available }),
            // The only warehouse is short (its row vouched for the terms that make it the
            // only one): the answer, and a reason to read first next time.
            PickedBy::Sole => {
                self.note_sold_out(&line.product_id, true);
                Err(DomainError::InsufficientStock { available })
            }
            // The warehouse the read picked sold out meanwhile: pick again, a few times.
            PickedBy::Read if s.picks + 1 < PICK_ATTEMPTS => {
                s.picks += 1;
                s.replan();
                Ok(())
            }
            // Every pick lost a race: report what is there now.
            PickedBy::Read => {
                let product = self.get_product(&line.product_id).await?;
                Err(match choose_warehouse(&product.stock, line.quantity) {
                    WarehouseChoice::Insufficient { available } => {
                        DomainError::InsufficientStock { available }
                    }
                    WarehouseChoice::Fill(_) => DomainError::Conflict("stock changed concurrently; retry"),
                })
            }
        }
    }

    /// A bucketed line whose bucket was short: plans on a fresh snapshot of all buckets
    /// (`HoldSteps`): takes from another bucket, or first gathers units from several into
    /// one. `None`: re-planned, write again; `Some(available)`: all buckets together are
    /// short. Every step is a conditional write that re-checks its premise, so a race
    /// costs a retry, never a unit.
    async fn replan_buckets(
        &self,
        caller: &Caller,
        r: &Reservation,
        s: &mut LineState,
    ) -> Result<Option<i64>, DomainError> {
        let k = s.picked.as_ref().map_or(1, |p| p.terms.buckets);
        let steps = s.steps.get_or_insert_with(|| HoldSteps::new(r.bucket, r.quantity));
        let mut step = steps.short();
        loop {
            step = match step {
                Step::Hold(bucket) => {
                    s.bucket = Some(bucket);
                    return Ok(None);
                }
                Step::ReadBuckets => {
                    let Some(buckets) = self.store.stock.buckets(&r.product_id, &r.warehouse_id, k).await?
                    else {
                        return Err(self.missing_row(&r.product_id).await?);
                    };
                    steps.read(&buckets)
                }
                Step::Gather { into, donors } => {
                    let (now, actor) = (self.clock.now(), &caller.user_id);
                    let gathered =
                        self.store.stock.gather(&r.product_id, &r.warehouse_id, into, &donors, now, actor);
                    steps.gathered(into, gathered.await? == Gathered::Moved)
                }
                Step::Refuse { available } => return Ok(Some(available)),
                Step::GiveUp => return Err(DomainError::Conflict("stock changed concurrently; retry")),
            }
        }
    }

    /// The error for a hold that found no stock row: the product or the warehouse is unknown.
    async fn missing_row(&self, product_id: &str) -> Result<DomainError, DomainError> {
        Ok(match self.store.catalogue.get(product_id).await? {
            None => DomainError::NotFound("product"),
            Some(_) => DomainError::NotFound("warehouse"),
        })
    }

    /// Creates the hold's expiry schedule, or for an extended hold (`replaced`: the end
    /// the extension replaced) creates the new one and cancels the old. A failure is
    /// logged, never returned: the hold stands, reads as expired on time (lazy expiry),
    /// and the sweep returns its units. Best effort, and within half of the time the
    /// request has left: the hold is committed, and its answer must not be lost to a slow
    /// scheduler (the sweep expires a hold without a schedule).
    pub(super) async fn schedule_expiry(&self, r: &Reservation, replaced: Option<DateTime<Utc>>) {
        let schedule = match replaced {
            Some(from) => self.scheduler.reschedule(&r.id, from, r.expires_at),
            None => self.scheduler.schedule(&r.id, r.expires_at),
        };
        if let Err(e) = in_half_the_time_left(schedule).await {
            tracing::warn!(reservation_id = %r.id, error = %e, "could not create expiry schedule; the sweep will expire it");
        }
    }

    /// One schedule for every line of a batch (they share their end), named by an id of
    /// its own so that releasing or ordering one line (which cancels that line's schedule
    /// by its id) leaves it to end the others; the lines it finds ended it leaves alone.
    /// Best effort like `schedule_expiry`.
    async fn schedule_batch_expiry(&self, held: &[Reservation], now: DateTime<Utc>) {
        let Some(first) = held.first() else { return };
        if held.len() == 1 {
            return self.schedule_expiry(first, None).await;
        }
        let name = new_id(now);
        let ids: Vec<String> = held.iter().map(|r| r.id.clone()).collect();
        let schedule = self.scheduler.schedule_many(&name, &ids, first.expires_at);
        if let Err(e) = in_half_the_time_left(schedule).await {
            tracing::warn!(schedule = %name, lines = ids.len(), error = %e, "could not create the batch's expiry schedule; the sweep will expire it");
        }
    }

    /// The owner's or an admin's view; anyone else gets `NotFound` (existence is not leaked).
    pub async fn get_reservation(
        &self,
        caller: &Caller,
        id: &ReservationId,
    ) -> Result<Reservation, DomainError> {
        let r = self.store.reservations.get(id).await?.filter(|r| caller.may_see(&r.user_id));
        let r = r.ok_or(DomainError::NotFound("reservation"))?;
        Ok(r.as_seen_at(self.clock.now()))
    }

    /// Extends an active hold to a full TTL from now, never past `max_hold` from its
    /// creation (`ExtensionLimitReached` when that is no later than it ends already). One
    /// conditional write decides it against the hold's end as read, so an extension
    /// racing the hold's expiry either lands before `expires_at` or finds it expired.
    /// Extensions racing each other: the one that loses reads the hold again and either
    /// extends it further or finds that the winner already took it as far as it would
    /// have (the answer is then the hold as it is); a hold that keeps changing under it is
    /// `Conflict`. Each applied extension moves the schedule from the end it replaced, so
    /// the last one's stands.
    pub async fn extend_reservation(
        &self,
        caller: &Caller,
        id: &ReservationId,
    ) -> Result<Reservation, DomainError> {
        for attempt in 0..EXTEND_ATTEMPTS {
            let r = self.get_reservation(caller, id).await?;
            if r.status != ReservationStatus::Active {
                return Err(DomainError::ReservationNotActive);
            }
            let now = self.clock.now();
            let Some(until) = r.extended_expiry(now, self.config.reservation_ttl, self.config.max_hold)
            else {
                return match attempt {
                    0 => Err(DomainError::ExtensionLimitReached),
                    // The extension that won the race took it at least this far.
                    _ => Ok(r),
                };
            };
            match self.store.reservations.extend(&r, until, now, &caller.user_id).await? {
                Extended::Now => {
                    let replaced = r.expires_at;
                    let extended = Reservation { expires_at: until, updated_at: now, ..r };
                    self.schedule_expiry(&extended, Some(replaced)).await;
                    return Ok(extended);
                }
                // Another extension, a release, an order or its expiry came in between.
                Extended::Moved => continue,
            }
        }
        Err(DomainError::Conflict("the hold kept changing; retry"))
    }

    /// Releases an active hold. Releasing a released hold is a no-op; an expired or
    /// converted one is `ReservationNotActive`.
    pub async fn release_reservation(
        &self,
        caller: &Caller,
        id: &ReservationId,
    ) -> Result<Reservation, DomainError> {
        let r = self.get_reservation(caller, id).await?;
        match r.status {
            ReservationStatus::Released => return Ok(r),
            ReservationStatus::Expired | ReservationStatus::Converted => {
                return Err(DomainError::ReservationNotActive)
            }
            ReservationStatus::Active => {}
        }
        let now = self.clock.now();
        if self.store.reservations.end_hold(&r, HoldEnd::Release, now, &caller.user_id).await? == Ended::Now {
            if let Err(e) = self.scheduler.cancel(&r.id, r.expires_at).await {
                // A leftover schedule fires, finds the hold not active and does nothing.
                tracing::warn!(reservation_id = %r.id, error = %e, "could not delete expiry schedule");
            }
            return Ok(Reservation { status: ReservationStatus::Released, updated_at: now, ..r });
        }
        // Something else ended it first: a concurrent release is fine, anything else not.
        let again = self.get_reservation(caller, id).await?;
        match again.status {
            ReservationStatus::Released => Ok(again),
            _ => Err(DomainError::ReservationNotActive),
        }
    }
}

/// Runs a scheduler call within half of the time the request has left: the hold is
/// committed, and its answer must not be lost to a slow scheduler.
async fn in_half_the_time_left(
    schedule: impl std::future::Future<Output = Result<(), SchedulerError>>,
) -> Result<(), SchedulerError> {
    match crate::deadline::remaining() {
        Some(left) => tokio::time::timeout(left / 2, schedule)
            .await
            .unwrap_or_else(|_| Err(SchedulerError::Failed("no time left to create it".into()))),
        None => schedule.await,
    }
}
