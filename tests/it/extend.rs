//! Extending a hold: a full TTL from now, never past the longest hold, and racing expiry
//! and the sweep without ever ending a hold twice or at the wrong time.

use chrono::Duration;
use futures::future::join_all;
use serde_json::json;
use shared::adapters::clock::ManualClock;
use shared::domain::caller::Caller;
use shared::domain::ids::ReservationId;
use shared::domain::reservation::{NewReservation, ReservationStatus};
use shared::domain::DomainError;
use shared::service::ports::Clock;
use shared::service::{Created, ExpireOutcome};
use std::sync::Arc;
use stockhold_tests::*;

fn at(r: &Reply) -> chrono::DateTime<chrono::Utc> {
    let s =
        r.body["expires_at"].as_str().unwrap_or_else(|| panic!("no expires_at in {} {}", r.status, r.body));
    chrono::DateTime::parse_from_rfc3339(s).expect("time").with_timezone(&chrono::Utc)
}

#[tokio::test]
async fn an_extension_gives_a_full_ttl_from_now_never_past_the_longest_hold() {
    let (_lock, clock, gw, product) = in_the_past(10).await;
    let t0 = clock.now();
    let alice = token(&unique("alice"), false);
    let id = gw.reserve(&alice, &product, 2).await;
    let extend = format!("/api/reservations/{id}/extend");

    // TTL 600 s, longest hold 3 x TTL = 1,800 s.
    clock.advance(Duration::seconds(300));
    let r = gw.send("POST", &extend, Some(&alice), None).await;
    assert_eq!((r.status, at(&r)), (200, t0 + Duration::seconds(900)), "{}", r.body);
    assert_eq!(r.body["status"], "active");
    // At the same instant it would end no later: the limit, whatever the body.
    let r = gw.post(&extend, Some(&alice), json!({})).await;
    assert_eq!((r.status, r.code()), (409, "extension_limit_reached"), "{}", r.body);
    assert_eq!(gw.post(&extend, Some(&alice), json!({"minutes": 5})).await.code(), "validation_failed");
    assert_eq!(gw.post(&extend, Some(&alice), json!([1])).await.code(), "invalid_json");

    clock.advance(Duration::seconds(500));
    let r = gw.send("POST", &extend, Some(&alice), None).await;
    assert_eq!((r.status, at(&r)), (200, t0 + Duration::seconds(1_400)));
    clock.advance(Duration::seconds(500));
    let r = gw.send("POST", &extend, Some(&alice), None).await;
    assert_eq!((r.status, at(&r)), (200, t0 + Duration::seconds(1_800)), "capped at the longest hold");
    clock.advance(Duration::seconds(10));
    assert_eq!(gw.send("POST", &extend, Some(&alice), None).await.code(), "extension_limit_reached");
    assert_eq!(gw.stock_of(&product, "main").await, (10, 2, 8), "extensions move no units");

    // At its end it is over: it reads as expired and cannot be extended.
    clock.advance(Duration::seconds(490));
    assert_eq!(gw.get(&format!("/api/reservations/{id}"), Some(&alice)).await.body["status"], "expired");
    assert_eq!(gw.send("POST", &extend, Some(&alice), None).await.code(), "reservation_not_active");
    let expire = with_clock(as_function(&gw.app, "expire"), Arc::new(clock.clone()));
    assert_eq!(expire.expire_reservation(&id).await, Ok(ExpireOutcome::Expired));
    assert_eq!(gw.stock_of(&product, "main").await, (10, 0, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_extensions_race_expiry_and_the_sweep_each_hold_ends_once_at_its_own_time() {
    // One user holds 40 at once here.
    let (_lock, start, gw, product) = in_the_past_holding(100, Some(1000)).await;
    let user = unique("extender");
    let caller = Caller { user_id: user.clone(), is_admin: false };
    let reserve = as_function(&gw.app, "reserve");
    let mut ids = Vec::new();
    for _ in 0..40 {
        let new = NewReservation { product_id: id(&product), quantity: 1, warehouse_id: None };
        match reserve.create_reservation(&caller, new, None).await.expect("reserve") {
            Created::New(r) => ids.push(r.id),
            Created::Replay(_) => panic!("no key, no replay"),
        }
    }
    // Every hold ends at t0 + 600 s. The owner extends each a hair before that; the
    // hold's schedule and three sweeps run at that instant, all at once on every hold.
    let end = start.now() + Duration::seconds(600);
    let owner = with_clock(
        as_function(&gw.app, "reserve"),
        Arc::new(ManualClock::new(end - Duration::milliseconds(1))),
    );
    let jobs = Arc::new(ManualClock::new(end));
    let expire = with_clock(as_function(&gw.app, "expire"), jobs.clone());
    let sweep = with_clock(as_function(&gw.app, "sweep"), jobs.clone());
    let typed: Vec<ReservationId> = ids.iter().map(|r| id(r)).collect();
    let extensions = join_all(typed.iter().map(|r| owner.extend_reservation(&caller, r)));
    let expiries = join_all(ids.iter().map(|id| expire.expire_reservation(id)));
    let sweeps = join_all((0..3).map(|_| sweep.sweep(100, NO_GRACE)));
    let (extensions, expiries, sweeps) = tokio::join!(extensions, expiries, sweeps);

    let extended: Vec<&String> =
        ids.iter().zip(&extensions).filter(|(_, e)| e.is_ok()).map(|(id, _)| id).collect();
    for e in extensions.iter().filter_map(|e| e.as_ref().err()) {
        assert_eq!(*e, DomainError::ReservationNotActive, "an extension that lost found the hold expired");
    }
    let by_job = expiries.iter().filter(|e| *e.as_ref().expect("expire") == ExpireOutcome::Expired).count();
    let by_sweep: usize = sweeps.iter().map(|s| s.as_ref().expect("sweep").expired).sum();
    assert_eq!(extended.len() + by_job + by_sweep, ids.len(), "every hold was extended or ended, never both");
    let held = i64::try_from(extended.len()).expect("count");
    assert_eq!(gw.stock_of(&product, "main").await, (100, held, 100 - held));

    // The old schedule firing late changes nothing: the extended holds are not due.
    for id in &extended {
        assert_eq!(expire.expire_reservation(id).await, Ok(ExpireOutcome::NotDue), "{id}");
    }
    assert_eq!(sweep.sweep(100, NO_GRACE).await.expect("sweep").expired, 0);
    assert_eq!(gw.stock_of(&product, "main").await, (100, held, 100 - held));

    // At their new end (a full TTL after the extension) they end, each exactly once.
    jobs.advance(Duration::seconds(600) - Duration::milliseconds(1));
    let again = join_all(extended.iter().map(|id| expire.expire_reservation(id)));
    let (again, swept) = tokio::join!(again, sweep.sweep(100, NO_GRACE));
    let by_job = again.iter().filter(|e| *e.as_ref().expect("expire") == ExpireOutcome::Expired).count();
    // (The sweep may also end holds other tests left behind; ours are counted by stock.)
    assert!(by_job + swept.expect("sweep").expired >= extended.len());
    assert_eq!(gw.stock_of(&product, "main").await, (100, 0, 100));
    for id in &ids {
        let r = gw.app.store.reservations.get(id).await.expect("read").expect("exists");
        assert_eq!(r.status, ReservationStatus::Expired, "{id}");
    }
}
