//! Waitlists: joining a queue for a hold that cannot be filled now, reading an entry
//! (with its place in the queue), leaving, and an admin's view of a queue. Offers (the
//! first entries whose units are there becoming holds) are the offer job's.

use super::idempotency::{Created, IdempotencyRequest, Lease};
use super::products::Page;
use super::App;
use crate::domain::caller::Caller;
use crate::domain::ids::{new_id, ProductId};
use crate::domain::product::Terms;
use crate::domain::reservation::{Reservation, ReservationStatus};
use crate::domain::stock::WarehouseId;
use crate::domain::waitlist::{may_join, Entry, Leaving, NewEntry, WaitlistStatus, SYSTEM_ACTOR};
use crate::domain::DomainError;
use crate::store::waitlists::JoinError;

/// How often a join is decided again after its write was refused for a reason that a
/// fresh read settles (the queue's size, the product's terms, a race).
const JOIN_ATTEMPTS: usize = 5;

/// Most offers one run of the offer job makes for one warehouse (each is a transaction;
/// a longer queue is left to the next run, which the units' next change triggers).
const OFFERS_PER_RUN: usize = 1_000;

/// How often the job reads a warehouse again after an offer's write found the entry or
/// the units gone, before leaving the queue to its next run.
const OFFER_ATTEMPTS: usize = 5;

/// What one run of the offer job did for one warehouse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfferRun {
    /// (entry id, the hold it became), in queue order.
    pub offered: Vec<(String, String)>,
    /// Entries it found past their time and ended as expired.
    pub expired: Vec<String>,
}

/// An entry with its place in the queue (`None` once it no longer waits).
#[derive(Debug, Clone)]
pub struct Placed {
    pub entry: Entry,
    pub position: Option<i64>,
}

impl App {
    /// Queues the caller for `new` at one warehouse of the product, when a hold of it
    /// could not be filled now. Counts as a hold against the caller's hold cap and the
    /// product's purchase limit, checked as for a hold. With a key, the first response is
    /// stored and replayed.
    pub async fn join_waitlist(
        &self,
        caller: &Caller,
        product_id: &ProductId,
        new: NewEntry,
        idem: Option<IdempotencyRequest<Entry>>,
    ) -> Result<Created<Entry>, DomainError> {
        self.idempotently(caller, idem, |lease| async move {
            self.queue_up(caller, product_id, &new, lease.as_ref()).await
        })
        .await
    }

    async fn queue_up(
        &self,
        caller: &Caller,
        product_id: &ProductId,
        new: &NewEntry,
        lease: Option<&Lease<Entry>>,
    ) -> Result<Entry, DomainError> {
        let mut seen = None;
        for _ in 0..JOIN_ATTEMPTS {
            let product = self.get_product(product_id).await?;
            if !product.active {
                return Err(DomainError::ProductInactive);
            }
            if product.stock_buckets > 1 {
                // A bucketed warehouse is several rows, each with its own units; one
                // queue over them needs every offer and every hold to see all of them.
                return Err(DomainError::invalid(
                    "product_id",
                    "waitlists of a product with stock_buckets > 1 are not supported",
                ));
            }
            let level = new.warehouse(&product.stock)?;
            let waiting = seen.unwrap_or(level.waiting);
            may_join(&crate::domain::stock::StockLevel { waiting, ..level.clone() }, new.quantity)?;
            let now = self.clock.now();
            let entry = Entry {
                id: new_id(now),
                product_id: product.id.clone(),
                warehouse_id: level.warehouse_id.clone(),
                user_id: caller.user_id.clone(),
                quantity: new.quantity,
                status: WaitlistStatus::Waiting,
                reservation_id: None,
                created_at: now,
                updated_at: now,
                expires_at: now + self.config.waitlist_ttl,
                ev: 1,
            };
            let completion = self.completion(lease, &entry)?;
            let cap = self.config.max_active_holds;
            match self.store.waitlists.join(&entry, &Terms::of(&product), waiting, cap, completion).await {
                Ok(()) => return Ok(entry),
                Err(JoinError::Available { available }) => {
                    return Err(DomainError::StockAvailable { available })
                }
                Err(JoinError::Waiting { waiting }) => seen = Some(waiting),
                Err(JoinError::TermsChanged | JoinError::Raced) => seen = None,
                Err(JoinError::HoldLimit) => return Err(DomainError::HoldLimitReached { limit: cap }),
                Err(JoinError::PurchaseLimit { limit, counted }) => {
                    return Err(DomainError::PurchaseLimitReached {
                        limit,
                        remaining: (limit - counted).max(0),
                    })
                }
                Err(JoinError::NoStockRow) => return Err(DomainError::NotFound("warehouse")),
                Err(JoinError::LeaseLost) => return Err(DomainError::IdempotencyInProgress),
                Err(JoinError::Store(e)) => return Err(e.into()),
            }
        }
        Err(DomainError::Conflict("the queue kept changing; retry"))
    }

    /// The owner's or an admin's; anyone else gets `NotFound`. Read as of now (lazy
    /// expiry), with its place while it waits.
    pub async fn get_waitlist_entry(&self, caller: &Caller, id: &str) -> Result<Placed, DomainError> {
        let entry = self.store.waitlists.get(id).await?.filter(|e| caller.may_see(&e.user_id));
        let entry = entry.ok_or(DomainError::NotFound("waitlist entry"))?.as_of(self.clock.now());
        let position = match entry.status {
            WaitlistStatus::Waiting => Some(self.store.waitlists.position(&entry).await?),
            _ => None,
        };
        Ok(Placed { entry, position })
    }

    /// The owner or an admin takes a waiting entry off its queue: its units are no longer
    /// asked for and its place against the caps is given back. A second leave answers the
    /// entry as it is; an offered or expired one is `WaitlistEntryNotWaiting`.
    pub async fn leave_waitlist(&self, caller: &Caller, id: &str) -> Result<Entry, DomainError> {
        let placed = self.get_waitlist_entry(caller, id).await?;
        let now = self.clock.now();
        let after = match placed.entry.leave(now)? {
            Leaving::Already => return Ok(placed.entry),
            Leaving::Leave(after) => after,
        };
        if self.store.waitlists.end(&after, &caller.user_id).await? {
            return Ok(after);
        }
        // Something else ended it first (an offer, an expiry, another leave): say what.
        let now_is = self.get_waitlist_entry(caller, id).await?.entry;
        match now_is.status {
            WaitlistStatus::Left => Ok(now_is),
            s => Err(DomainError::WaitlistEntryNotWaiting { status: s.as_str() }),
        }
    }

    /// The offer job for one warehouse: while the first waiting entry's whole quantity is
    /// available, it becomes an ordinary hold of its user (actor `system`) and the entry
    /// `offered`; then the next. Strictly first come first served: it stops at the first
    /// entry the units cannot fill, so an entry never jumps one that joined before it.
    /// Entries found past their time are ended as expired on the way. Every step is a
    /// conditional write that re-checks its premise, so a run that dies half way, or two
    /// runs at once, offer no entry twice and give no unit twice; a later run continues
    /// where the queue stands.
    pub async fn offer_waiting(
        &self,
        product_id: &str,
        warehouse: &WarehouseId,
    ) -> Result<OfferRun, DomainError> {
        let mut run = OfferRun::default();
        let mut after: Option<String> = None;
        let mut misses = 0;
        while run.offered.len() < OFFERS_PER_RUN && misses < OFFER_ATTEMPTS {
            let (head, _) =
                self.store.waitlists.queue(product_id, warehouse.as_str(), after.as_deref(), 1).await?;
            let Some(listed) = head.into_iter().next() else { break };
            // The queue is an index: read the entry itself.
            let Some(entry) = self.store.waitlists.get(&listed.id).await? else {
                after = Some(listed.id);
                continue;
            };
            let now = self.clock.now();
            match entry.status_at(now) {
                WaitlistStatus::Waiting => {}
                WaitlistStatus::Expired if entry.status == WaitlistStatus::Waiting => {
                    let expired = Entry {
                        status: WaitlistStatus::Expired,
                        updated_at: now,
                        ev: entry.ev + 1,
                        ..entry.clone()
                    };
                    if self.store.waitlists.end(&expired, SYSTEM_ACTOR).await? {
                        run.expired.push(entry.id.clone());
                    }
                    after = Some(entry.id);
                    continue;
                }
                // Offered or left already; the index has not caught up.
                _ => {
                    after = Some(entry.id);
                    continue;
                }
            }
            let Some(product) = self.store.catalogue.get(product_id).await? else { break };
            let available =
                product.stock.iter().find(|l| &l.warehouse_id == warehouse).map_or(0, |l| l.units.available);
            if available < entry.quantity {
                break;
            }
            let hold = Reservation {
                id: new_id(now),
                user_id: entry.user_id.clone(),
                product_id: entry.product_id.clone(),
                warehouse_id: entry.warehouse_id.clone(),
                quantity: entry.quantity,
                bucket: 0,
                status: ReservationStatus::Active,
                expires_at: now + self.config.reservation_ttl.min(self.config.max_hold),
                created_at: now,
                updated_at: now,
            };
            if self.store.waitlists.offer(&entry, &hold).await? {
                self.schedule_expiry(&hold, None).await;
                run.offered.push((entry.id.clone(), hold.id));
                after = Some(entry.id);
                misses = 0;
            } else {
                // The entry left or expired, or the units went, meanwhile: look again.
                misses += 1;
            }
        }
        Ok(run)
    }

    /// Admins only. A warehouse's waiting entries, first come first.
    pub async fn waitlist_queue(
        &self,
        caller: &Caller,
        product_id: &ProductId,
        warehouse: &WarehouseId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Entry>, DomainError> {
        if !caller.is_admin {
            return Err(DomainError::Forbidden);
        }
        let binding =
            format!("waitlist\0{}\0{}\0{}", caller.user_id, product_id.as_str(), warehouse.as_str());
        let after = cursor.map(|c| self.config.cursors.decode(&binding, c)).transpose()?;
        let (items, more) =
            self.store.waitlists.queue(product_id, warehouse.as_str(), after.as_deref(), limit).await?;
        Page::after_last(items, more, |x| x.id.as_str(), &self.config.cursors, &binding)
    }
}
