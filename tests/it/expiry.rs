//! Expiry: the expire job, the sweep, their races with release, and a failing scheduler.

use chrono::Duration;
use chrono::{DateTime, Utc};
use futures::future::join_all;
use serde_json::json;
use shared::adapters::clock::ManualClock;
use shared::domain::caller::Caller;
use shared::domain::ids::ReservationId;
use shared::domain::reservation::{NewReservation, ReservationStatus};
use shared::service::ports::Clock;
use shared::service::ports::{ExpiryScheduler, Scheduled, SchedulerError};
use shared::service::{Created, ExpireOutcome};
use std::sync::Arc;
use stockhold_tests::*;

async fn reserve(app: &shared::service::App, user: &str, product: &str, q: i64) -> String {
    let caller = Caller { user_id: user.to_string(), is_admin: false };
    let new = NewReservation { product_id: id(product), quantity: q, warehouse_id: None };
    match as_function(app, "reserve").create_reservation(&caller, new, None).await.expect("reserve") {
        Created::New(r) => r.id,
        Created::Replay(_) => panic!("no key, no replay"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_expire_sweep_and_release_race_each_hold_returns_its_units_exactly_once() {
    // One user holds 60 at once here.
    let (_lock, start, gw, product) = in_the_past_holding(200, Some(1000)).await;
    let user = unique("racer");
    let mut ids = Vec::new();
    let mut total = 0;
    for i in 0..60 {
        let q = 1 + i % 3;
        ids.push(reserve(&gw.app, &user, &product, q).await);
        total += q;
    }
    assert_eq!(gw.stock_of(&product, "main").await, (200, total, 200 - total));

    // Every hold expires at t0 + 600 s (the manual clock stood still). The owner's clock
    // is a hair before that (release allowed), the jobs' clock at it (expire and sweep
    // allowed), as clocks of different machines may be. All three go at once on every hold.
    let expiry = start.now() + Duration::seconds(600);
    let owner_app = with_clock(
        as_function(&gw.app, "reserve"),
        Arc::new(ManualClock::new(expiry - Duration::milliseconds(1))),
    );
    let expire_app = with_clock(as_function(&gw.app, "expire"), Arc::new(ManualClock::new(expiry)));
    let sweep_app = with_clock(as_function(&gw.app, "sweep"), Arc::new(ManualClock::new(expiry)));
    let caller = Caller { user_id: user.clone(), is_admin: false };

    let typed: Vec<ReservationId> = ids.iter().map(|r| id(r)).collect();
    let releases = join_all(typed.iter().map(|r| owner_app.release_reservation(&caller, r)));
    let expires = join_all(ids.iter().map(|id| expire_app.expire_reservation(id)));
    let sweeps = join_all((0..3).map(|_| sweep_app.sweep(100, NO_GRACE)));
    let (releases, expires, sweeps) = tokio::join!(releases, expires, sweeps);

    let released = releases.iter().filter(|r| r.is_ok()).count();
    for r in releases.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(*r, shared::domain::DomainError::ReservationNotActive);
    }
    let expired_by_job =
        expires.iter().filter(|e| *e.as_ref().expect("expire") == ExpireOutcome::Expired).count();
    let expired_by_sweep: usize = sweeps.iter().map(|s| s.as_ref().expect("sweep").expired).sum();
    assert_eq!(released + expired_by_job + expired_by_sweep, ids.len(), "each hold ended exactly once");
    assert_eq!(gw.stock_of(&product, "main").await, (200, 0, 200));
    for id in &ids {
        let r = gw.app.store.reservations.get(id).await.expect("read").expect("exists");
        assert!(matches!(r.status, ReservationStatus::Released | ReservationStatus::Expired), "{id}");
    }
}

#[tokio::test]
async fn expire_is_idempotent_and_leaves_holds_that_are_not_due_or_not_active_alone() {
    let (_lock, clock, gw, product) = in_the_past(10).await;
    let app = gw.app.clone();
    let user = unique("u");
    let id = reserve(&app, &user, &product, 4).await;
    let released = reserve(&app, &user, &product, 1).await;
    let caller = Caller { user_id: user.clone(), is_admin: false };
    as_function(&app, "reserve")
        .release_reservation(&caller, &stockhold_tests::id(&released))
        .await
        .expect("release");
    let (reserve_app, app) = (as_function(&app, "reserve"), as_function(&app, "expire"));

    assert_eq!(app.expire_reservation(&id).await, Ok(ExpireOutcome::NotDue));
    assert_eq!(gw.stock_of(&product, "main").await, (10, 4, 6));
    clock.advance(Duration::seconds(600));
    assert_eq!(app.expire_reservation(&id).await, Ok(ExpireOutcome::Expired));
    assert_eq!(gw.stock_of(&product, "main").await, (10, 0, 10));
    assert_eq!(app.expire_reservation(&id).await, Ok(ExpireOutcome::NotActive));
    assert_eq!(app.expire_reservation(&released).await, Ok(ExpireOutcome::NotActive));
    assert_eq!(app.expire_reservation("01NOPE").await, Ok(ExpireOutcome::NotFound));
    assert_eq!(gw.stock_of(&product, "main").await, (10, 0, 10));
    let r = reserve_app.get_reservation(&caller, &stockhold_tests::id(&id)).await.expect("read");
    assert_eq!(r.status, ReservationStatus::Expired);
}

/// A scheduler that always fails, as EventBridge might.
#[derive(Debug)]
struct BrokenScheduler;

impl ExpiryScheduler for BrokenScheduler {
    fn schedule_many<'a>(&'a self, _: &'a str, _: &'a [String], _: DateTime<Utc>) -> Scheduled<'a> {
        Box::pin(async { Err(SchedulerError::Failed("injected".into())) })
    }
    fn cancel<'a>(&'a self, _: &'a str, _: DateTime<Utc>) -> Scheduled<'a> {
        Box::pin(async { Err(SchedulerError::Failed("injected".into())) })
    }
}

#[tokio::test]
async fn when_creating_the_schedule_fails_the_reservation_stands_and_the_sweep_returns_its_units() {
    let _lock = sweep_lock().await;
    let clock = past_clock();
    let app = app_with_clock(Arc::new(clock.clone())).await.with_scheduler(Arc::new(BrokenScheduler));
    let gw = gateway_for(app.clone()).await;
    let product = gw.product(json!({"main": 5})).await;
    let u = token(&unique("u"), false);
    let r = gw.post("/api/reservations", Some(&u), json!({"product_id": product, "quantity": 3})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let path = format!("/api/reservations/{}", r.body["id"].as_str().expect("id"));
    // Releasing with a failing scheduler still works (deleting the schedule is best effort).
    let other = gw.post("/api/reservations", Some(&u), json!({"product_id": product, "quantity": 1})).await;
    let other_path = format!("/api/reservations/{}", other.body["id"].as_str().expect("id"));
    assert_eq!(gw.send("DELETE", &other_path, Some(&u), None).await.status, 200);
    assert_eq!(gw.stock_of(&product, "main").await, (5, 3, 2));

    clock.advance(Duration::seconds(600));
    let app = as_function(&app, "sweep");
    let report = app.sweep(100, NO_GRACE).await.expect("sweep");
    assert!(report.expired >= 1 && report.failed == 0, "{report:?}");
    assert_eq!(gw.stock_of(&product, "main").await, (5, 0, 5));
    assert_eq!(gw.get(&path, Some(&u)).await.body["status"], "expired");
    let again = app.sweep(100, NO_GRACE).await.expect("sweep");
    assert_eq!(again.expired, 0);
    assert_eq!(gw.stock_of(&product, "main").await, (5, 0, 5));
}

#[tokio::test]
async fn the_sweep_works_in_bounded_batches_and_says_when_more_are_left() {
    let (_lock, clock, gw, product) = in_the_past(40).await;
    let app = gw.app.clone();
    let user = unique("batch");
    for _ in 0..20 {
        reserve(&app, &user, &product, 1).await;
    }
    clock.advance(Duration::seconds(600));
    let app = as_function(&app, "sweep");
    // 1 per shard per run: at most 4 a run, and the run says more are left.
    let first = app.sweep(1, NO_GRACE).await.expect("sweep");
    assert!(first.found <= 4 && first.more, "{first:?}");
    let mut runs = 1;
    let mut last = first;
    while last.more {
        last = app.sweep(1, NO_GRACE).await.expect("sweep");
        runs += 1;
        assert!(runs < 40, "sweep must make progress");
    }
    assert!(runs >= 5);
    assert_eq!(gw.stock_of(&product, "main").await, (40, 0, 40));
}

#[tokio::test]
async fn a_sweep_near_its_deadline_starts_no_hold_it_could_not_finish_and_says_more() {
    let (_lock, clock, gw, product) = in_the_past(3).await;
    let app = gw.app.clone();
    reserve(&app, &unique("late"), &product, 3).await;
    clock.advance(Duration::seconds(600));
    let sweep = as_function(&app, "sweep");

    let almost_over = shared::deadline::after(std::time::Duration::from_millis(300));
    let report = shared::jobs::sweep(
        &sweep,
        shared::jobs::SweepSettings { per_shard: 100, grace: NO_GRACE },
        Some(almost_over),
    )
    .await
    .expect("sweep");
    assert!(report.found >= 1 && report.expired == 0 && report.more, "{report:?}");
    assert_eq!(gw.stock_of(&product, "main").await, (3, 3, 0), "nothing was started");

    let report = shared::jobs::sweep(
        &sweep,
        shared::jobs::SweepSettings { per_shard: 100, grace: NO_GRACE },
        shared::deadline::after(std::time::Duration::from_secs(60)).into(),
    )
    .await
    .expect("sweep");
    assert!(report.expired >= 1, "{report:?}");
    assert_eq!(gw.stock_of(&product, "main").await, (3, 0, 3));
}

#[tokio::test]
async fn the_sweep_leaves_a_hold_to_its_schedule_for_the_grace_period_then_takes_it() {
    let (_lock, clock, gw, product) = in_the_past(4).await;
    let app = gw.app.clone();
    let u = token(&unique("u"), false);
    let r = gw.post("/api/reservations", Some(&u), json!({"product_id": product, "quantity": 2})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let grace = Duration::seconds(120);
    let sweep = as_function(&app, "sweep");

    // Ended 30 s ago: its schedule may be running right now, so the sweep stays away.
    clock.advance(Duration::seconds(630));
    let report = sweep.sweep(100, grace).await.expect("sweep");
    assert_eq!((report.found, report.expired), (0, 0), "{report:?}");
    assert_eq!(gw.stock_of(&product, "main").await, (4, 2, 2), "still held");

    // Past the grace: a schedule that has not ended it by now missed it.
    clock.advance(Duration::seconds(91));
    let report = sweep.sweep(100, grace).await.expect("sweep");
    assert!(report.expired >= 1, "{report:?}");
    assert_eq!(gw.stock_of(&product, "main").await, (4, 0, 4));
}
