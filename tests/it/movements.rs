//! The stock ledger: every writer's change read back as a movement with its reason,
//! reference and actor; filters and pages; the stock at an instant; a change behind the
//! service's back recorded as unknown; reconciliation, by request and by its schedule.

use chrono::Duration;
use serde_json::{json, Value};
use shared::adapters::clock::ManualClock;
use std::sync::Arc;
use stockhold_tests::*;

/// (reason, reference type, actor, on_hand_change, reserved_change) of each movement.
fn summary(ms: &[Value]) -> Vec<(String, String, String, i64, i64)> {
    ms.iter()
        .map(|m| {
            (
                m["reason"].as_str().unwrap_or("").to_string(),
                m["reference"]["type"].as_str().unwrap_or("-").to_string(),
                m["actor"].as_str().unwrap_or("").to_string(),
                m["on_hand_change"].as_i64().unwrap_or(0),
                m["reserved_change"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

fn row(
    reason: &str,
    kind: &str,
    actor: &str,
    on_hand: i64,
    reserved: i64,
) -> (String, String, String, i64, i64) {
    (reason.into(), kind.into(), actor.into(), on_hand, reserved)
}

/// `seq` runs 1..n and each movement's after-values follow from the one before.
fn assert_chained(ms: &[Value]) {
    let (mut on_hand, mut reserved) = (0, 0);
    for (i, m) in ms.iter().enumerate() {
        assert_eq!(m["seq"], json!(i as u64 + 1), "{m}");
        on_hand += m["on_hand_change"].as_i64().expect("change");
        reserved += m["reserved_change"].as_i64().expect("change");
        assert_eq!((m["on_hand"].as_i64(), m["reserved"].as_i64()), (Some(on_hand), Some(reserved)), "{m}");
        assert_eq!(m["available"].as_i64(), Some(on_hand - reserved), "{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_writer_records_one_movement_with_its_reason_reference_and_actor() {
    let clock = ManualClock::new(chrono::Utc::now());
    let app = with_clock(app_on_fresh_table().await, Arc::new(clock.clone()));
    start_audit_poller(&app).await;
    let gw = gateway_for(app.clone()).await;
    let admin = token("admin-1", true);
    let alice = token("alice", false);
    let product = gw.product(json!({"main": 10})).await;
    let stock = format!("/api/products/{product}/stock");
    for body in [
        json!({"warehouse_id": "main", "delta": 5, "note": "PO 4711"}),
        json!({"warehouse_id": "main", "delta": -2, "reason": "damaged", "note": "dropped"}),
        json!({"warehouse_id": "main", "delta": -1}),
    ] {
        assert_eq!(gw.post(&stock, Some(&admin), body).await.status, 200);
    }
    let released = gw.reserve(&alice, &product, 2).await;
    assert_eq!(
        gw.send("DELETE", &format!("/api/reservations/{released}"), Some(&alice), None).await.status,
        200
    );
    let expired = gw.reserve(&alice, &product, 3).await;
    clock.advance(Duration::seconds(601));
    assert_eq!(
        as_function(&app, "expire").expire_reservation(&expired).await,
        Ok(shared::service::ExpireOutcome::Expired)
    );
    let sold = gw.reserve(&alice, &product, 1).await;
    let order = gw.order(&alice, &[&sold]).await.body["id"].as_str().expect("order").to_string();
    let back = gw.reserve(&alice, &product, 4).await;
    let cancelled = gw.order(&alice, &[&back]).await.body["id"].as_str().expect("order").to_string();
    assert_eq!(gw.set_status(&alice, &cancelled, "cancelled").await.status, 200);

    let ms = movements(&gw, &product, "", 13).await;
    assert_eq!(
        summary(&ms),
        [
            row("received", "-", "admin-setup", 10, 0),
            row("received", "-", "admin-1", 5, 0),
            row("damaged", "-", "admin-1", -2, 0),
            row("removed", "-", "admin-1", -1, 0),
            row("hold", "reservation", "alice", 0, 2),
            row("release", "reservation", "alice", 0, -2),
            row("hold", "reservation", "alice", 0, 3),
            row("expiry", "reservation", "system", 0, -3),
            row("hold", "reservation", "alice", 0, 1),
            row("sale", "order", "alice", -1, -1),
            row("hold", "reservation", "alice", 0, 4),
            row("sale", "order", "alice", -4, -4),
            row("cancellation", "order", "alice", 4, 0),
        ]
    );
    assert_chained(&ms);
    let refs: Vec<&str> = ms.iter().filter_map(|m| m["reference"]["id"].as_str()).collect();
    assert_eq!(
        refs,
        [&released, &released, &expired, &expired, &sold, &order, &back, &cancelled, &cancelled]
    );
    assert_eq!(
        (ms[1]["note"].as_str(), ms[2]["note"].as_str(), &ms[3]["note"]),
        (Some("PO 4711"), Some("dropped"), &Value::Null)
    );
    assert!(ms.iter().all(|m| m["warehouse_id"] == "main"
        && m["product_id"] == product.as_str()
        && m.get("bucket").is_none()));
    let (on_hand, reserved, _) = gw.stock_of(&product, "main").await;
    assert_eq!((ms[12]["on_hand"].as_i64(), ms[12]["reserved"].as_i64()), (Some(on_hand), Some(reserved)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn movements_filter_by_warehouse_time_and_reason_and_page_with_cursors() {
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = gateway_for(app.clone()).await;
    let admin = token("admin-1", true);
    let alice = token("alice", false);
    let product = gw.product(json!({"main": 5, "east": 3})).await;
    for _ in 0..3 {
        let r = gw.reserve(&alice, &product, 1).await;
        assert_eq!(
            gw.send("DELETE", &format!("/api/reservations/{r}"), Some(&alice), None).await.status,
            200
        );
    }
    let all = movements(&gw, &product, "", 8).await;
    assert_eq!(all.len(), 8);
    // One page at a time gives the same list.
    let mut paged = Vec::new();
    let mut next = format!("/api/products/{product}/movements?limit=3");
    loop {
        let r = gw.get(&next, Some(&admin)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let items = r.body["items"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= 3);
        paged.extend(items);
        match r.body["next_cursor"].as_str() {
            Some(c) => next = format!("/api/products/{product}/movements?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, all);
    let times: Vec<&str> = all.iter().map(|m| m["at"].as_str().expect("at")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first: {times:?}");

    let main = movements(&gw, &product, "&warehouse_id=main", 0).await;
    assert!(main.iter().all(|m| m["warehouse_id"] == "main"));
    assert_chained(&main);
    let east = movements(&gw, &product, "&warehouse_id=east", 0).await;
    assert_eq!(main.len() + east.len(), 8);
    assert_chained(&east);
    let holds = movements(&gw, &product, "&reason=hold,release", 0).await;
    assert_eq!(holds.len(), 6);
    let third = all[2]["at"].as_str().expect("at");
    let from = movements(&gw, &product, &format!("&from={third}"), 0).await;
    assert!(from.iter().all(|m| m["at"].as_str() >= Some(third)) && from.len() >= 6);
    let to = movements(&gw, &product, &format!("&to={third}"), 0).await;
    assert!(to.iter().all(|m| m["at"].as_str() < Some(third)));
    assert_eq!(from.len() + to.len(), 8, "from is inclusive, to exclusive");
    let empty = movements(&gw, &product, &format!("&from={third}&to={third}"), 0).await;
    assert_eq!(empty, Vec::<Value>::new(), "an empty range");

    for bad in ["&reason=sold", "&from=yesterday", "&colour=red", "&limit=0", "&warehouse_id=Main"] {
        let r = gw.get(&format!("/api/products/{product}/movements?{bad}"), Some(&admin)).await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{bad}: {}", r.body);
    }
    let other = gw.get(&format!("/api/products/{product}/movements?limit=2&reason=hold"), Some(&admin)).await;
    let cursor = other.body["next_cursor"].as_str().expect("a second page");
    let r = gw.get(&format!("/api/products/{product}/movements?limit=2&cursor={cursor}"), Some(&admin)).await;
    assert_eq!((r.status, r.code()), (400, "invalid_cursor"), "a cursor is good only for its own filters");
    assert_eq!(gw.get(&format!("/api/products/{product}/movements"), Some(&alice)).await.status, 403);
    assert_eq!(gw.get("/api/products/01KM0000000000000000000000/movements", Some(&admin)).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_as_of_an_instant_is_each_warehouses_counts_after_its_last_movement_by_then() {
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = gateway_for(app.clone()).await;
    let admin = token("admin-1", true);
    let alice = token("alice", false);
    let product = gw.product(json!({"main": 10})).await;
    let first = movements(&gw, &product, "", 1).await;
    let created_at = first[0]["at"].as_str().expect("at").to_string();
    let r = gw.reserve(&alice, &product, 4).await;
    let held = movements(&gw, &product, "", 2).await;
    assert_eq!(held[1]["reference"]["id"], json!(r));
    let opened = gw
        .post(
            &format!("/api/products/{product}/stock"),
            Some(&admin),
            json!({"warehouse_id": "east", "delta": 2}),
        )
        .await;
    assert_eq!(opened.status, 200);
    movements(&gw, &product, "", 3).await;

    let at = |t: &str| format!("/api/products/{product}/stock?as_of={}", t.replace('+', "%2B"));
    let then = gw.get(&at(&created_at), Some(&admin)).await;
    assert_eq!(then.status, 200, "{}", then.body);
    assert_eq!(
        then.body,
        json!({"product_id": product, "as_of": created_at,
               "stock": [{"warehouse_id": "main", "on_hand": 10, "reserved": 0, "available": 10}], "available": 10})
    );
    let held_at = held[1]["at"].as_str().expect("at");
    assert_eq!(gw.get(&at(held_at), Some(&admin)).await.body["available"], json!(6), "east opened later");
    let now = gw.get(&format!("/api/products/{product}/stock"), Some(&admin)).await;
    assert_eq!(now.body["stock"].as_array().map(Vec::len), Some(2));
    assert_eq!(now.body["available"], json!(8));
    let before = gw.get(&at("2020-01-01T00:00:00Z"), Some(&admin)).await;
    assert_eq!((before.body["stock"].clone(), before.body["available"].clone()), (json!([]), json!(0)));

    let future = (chrono::Utc::now() + Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(gw.get(&at(&future), Some(&admin)).await.status, 422);
    assert_eq!(gw.get(&at("last night"), Some(&admin)).await.status, 422);
    assert_eq!(gw.get(&format!("/api/products/{product}/stock?when=now"), Some(&admin)).await.status, 422);
    assert_eq!(gw.get(&at(&created_at), Some(&alice)).await.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_behind_the_services_back_is_recorded_as_unknown() {
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = gateway_for(app.clone()).await;
    let product = gw.product(json!({"main": 10})).await;
    movements(&gw, &product, "", 1).await;
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    raw_client()
        .await
        .update_item()
        .table_name(app.store.table())
        .key("pk", S(shared::store::keys::product_pk(&product)))
        .key("sk", S(shared::store::keys::stock_sk("main")))
        .update_expression("SET on_hand = on_hand + :x, available = available + :x")
        .expression_attribute_values(":x", N("7".into()))
        .send()
        .await
        .expect("raw update");
    let ms = movements(&gw, &product, "", 2).await;
    assert_eq!(summary(&ms)[1], row("unknown", "-", "unknown", 7, 0));
    assert_chained(&ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucketed_products_rows_number_their_own_movements_and_name_their_bucket() {
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = gateway_for(app.clone()).await;
    let alice = token("alice", false);
    let product = gw.bucketed_product(json!({"main": 8}), 2).await;
    for _ in 0..3 {
        gw.reserve(&alice, &product, 1).await;
    }
    let ms = movements(&gw, &product, "", 5).await;
    assert_eq!(ms.len(), 5, "{ms:?}");
    for b in 0..2 {
        let of_bucket: Vec<Value> = ms.iter().filter(|m| m["bucket"] == json!(b)).cloned().collect();
        assert!(!of_bucket.is_empty(), "bucket {b}: {ms:?}");
        assert_chained(&of_bucket);
    }
    let admin = token("admin-1", true);
    let now = gw
        .get(
            &format!("/api/products/{product}/stock?as_of={}", ms[4]["at"].as_str().expect("at")),
            Some(&admin),
        )
        .await;
    assert_eq!(
        now.body["stock"],
        json!([{"warehouse_id": "main", "on_hand": 8, "reserved": 3, "available": 5}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_sets_on_hand_as_one_counted_movement_and_refuses_a_stale_expectation() {
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = gateway_for(app.clone()).await;
    let admin = token("counter", true);
    let alice = token("alice", false);
    let product = gw.product(json!({"main": 10})).await;
    gw.reserve(&alice, &product, 3).await;
    let stock = format!("/api/products/{product}/stock");
    let count = |body: Value| gw.post(&stock, Some(&admin), body);

    let r = count(
        json!({"warehouse_id": "main", "set_on_hand": 8, "expected_on_hand": 10, "note": "cycle count"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["stock"],
        json!([{"warehouse_id": "main", "on_hand": 8, "reserved": 3, "available": 5, "incoming": 0, "waiting": 0}])
    );
    assert_eq!(count(json!({"warehouse_id": "main", "set_on_hand": 8})).await.status, 200, "no change");
    let stale = count(json!({"warehouse_id": "main", "set_on_hand": 12, "expected_on_hand": 10})).await;
    assert_eq!((stale.status, stale.code(), &stale.body["on_hand"]), (409, "stock_changed", &json!(8)));
    let below = count(json!({"warehouse_id": "main", "set_on_hand": 2})).await;
    assert_eq!(
        (below.status, below.code(), &below.body["available"]),
        (409, "insufficient_stock", &json!(5))
    );
    let opened = count(json!({"warehouse_id": "east", "set_on_hand": 4, "expected_on_hand": 0})).await;
    assert_eq!(opened.status, 200, "{}", opened.body);
    let unknown = count(json!({"warehouse_id": "west", "set_on_hand": 4, "expected_on_hand": 3})).await;
    assert_eq!((unknown.status, unknown.code(), &unknown.body["on_hand"]), (409, "stock_changed", &json!(0)));
    for bad in [
        json!({"warehouse_id": "main", "set_on_hand": 4, "delta": 1}),
        json!({"warehouse_id": "main", "set_on_hand": 4, "reason": "counted"}),
        json!({"warehouse_id": "main", "delta": 1, "expected_on_hand": 4}),
        json!({"warehouse_id": "main", "set_on_hand": 1_000_000_001}),
    ] {
        let r = count(bad.clone()).await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{bad}: {}", r.body);
    }
    assert_eq!(gw.stock_of(&product, "main").await, (8, 3, 5), "the refused counts changed nothing");

    let ms = movements(&gw, &product, "", 4).await;
    assert_eq!(
        summary(&ms),
        [
            row("received", "-", "admin-setup", 10, 0),
            row("hold", "reservation", "alice", 0, 3),
            row("counted", "-", "counter", -2, 0),
            row("counted", "-", "counter", 4, 0),
        ]
    );
    assert_eq!(ms[2]["note"], json!("cycle count"));
    assert_eq!(ms[3]["warehouse_id"], json!("east"));
    assert_eq!(
        movements(&gw, &product, "&reason=counted", 0).await.len(),
        2,
        "the unchanged count recorded none"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_racing_holds_and_sales_applies_to_the_number_it_was_based_on_or_answers_409() {
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = Arc::new(gateway_for(app.clone()).await);
    let product = gw.product(json!({"main": 1000})).await;
    let buyers = (0..16).map(|i| {
        let (gw, product) = (gw.clone(), product.clone());
        tokio::spawn(async move {
            let buyer = token(&format!("racer-{i}"), false);
            let r = gw.reserve(&buyer, &product, 1).await;
            assert_eq!(gw.order(&buyer, &[&r]).await.status, 201);
        })
    });
    // Each counter counts again after a 409, as a client would: every count applies once,
    // to the number it read, and some first answer 409 when a sale got in between.
    let counts = (0..8).map(|i| {
        let (gw, product) = (gw.clone(), product.clone());
        tokio::spawn(async move {
            let admin = token(&format!("counter-{i}"), true);
            for attempt in 1..=100 {
                let (on_hand, _, _) = gw.stock_of(&product, "main").await;
                let body =
                    json!({"warehouse_id": "main", "set_on_hand": on_hand + 5, "expected_on_hand": on_hand});
                let r = gw.post(&format!("/api/products/{product}/stock"), Some(&admin), body).await;
                match (r.status, r.code()) {
                    (200, _) => return attempt,
                    (409, "stock_changed") => assert!(r.body["on_hand"].is_i64(), "{}", r.body),
                    other => panic!("a count answered {other:?}: {}", r.body),
                }
            }
            panic!("a count never applied");
        })
    });
    let buyers: Vec<_> = buyers.collect();
    let counts: Vec<_> = counts.collect();
    for b in buyers {
        b.await.expect("buyer");
    }
    let mut applied = 0;
    for c in counts {
        c.await.expect("count");
        applied += 1;
    }
    assert_eq!(applied, 8);
    let (on_hand, reserved, _) = gw.stock_of(&product, "main").await;
    assert_eq!(
        (on_hand, reserved),
        (1000 - 16 + 5 * applied, 0),
        "no hold or sale lost, every count applied once"
    );
    let ms = movements(&gw, &product, "", 1 + 32 + applied as usize).await;
    assert_eq!(ms.len(), 1 + 32 + applied as usize);
    assert_chained(&ms);
    for m in ms.iter().filter(|m| m["reason"] == "counted") {
        assert_eq!(m["on_hand_change"], json!(5), "a count applied to exactly the number it read: {m}");
    }
}

/// `GET /api/products/{id}/reconciliation`, waiting (bounded, 15 s) until it is
/// consistent: movements reach the ledger a moment after the change.
async fn reconciled(gw: &TestGateway, product: &str) -> Value {
    let admin = token("auditor", true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let r = gw.get(&format!("/api/products/{product}/reconciliation"), Some(&admin)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        if r.body["consistent"] == json!(true) || std::time::Instant::now() > deadline {
            return r.body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_buyers_then_releases_expiries_and_a_cancellation_leave_a_gapless_ledger_that_reconciles() {
    let clock = ManualClock::new(chrono::Utc::now());
    let app = with_clock(app_on_fresh_table().await, Arc::new(clock.clone()));
    start_audit_poller(&app).await;
    let gw = Arc::new(gateway_for(app.clone()).await);
    let product = gw.product(json!({"main": 12, "east": 8})).await;
    let buyers = (0..50).map(|i| {
        let (gw, product) = (gw.clone(), product.clone());
        tokio::spawn(async move {
            let buyer = token(&format!("buyer-{i}"), false);
            let warehouse = if i % 2 == 0 { "main" } else { "east" };
            let body = json!({"product_id": product, "quantity": 1, "warehouse_id": warehouse});
            let r = gw.post("/api/reservations", Some(&buyer), body).await;
            match (r.status, r.code()) {
                (201, _) => Some((buyer, r.body["id"].as_str().expect("id").to_string())),
                (409, "insufficient_stock") => None,
                other => panic!("a hold answered {other:?}: {}", r.body),
            }
        })
    });
    let mut held = Vec::new();
    for b in buyers.collect::<Vec<_>>() {
        held.extend(b.await.expect("buyer"));
    }
    assert_eq!(held.len(), 20, "every unit held, none twice");
    let mid = reconciled(&gw, &product).await;
    assert_eq!(mid["consistent"], json!(true), "{mid}");
    let held_units: i64 = mid["warehouses"]
        .as_array()
        .expect("warehouses")
        .iter()
        .filter_map(|w| w["held_by_reservations"].as_i64())
        .sum();
    assert_eq!(held_units, 20, "{mid}");

    let (released, rest) = held.split_at(5);
    let (sold, expiring) = rest.split_at(4);
    for (buyer, id) in released {
        assert_eq!(
            gw.send("DELETE", &format!("/api/reservations/{id}"), Some(buyer), None).await.status,
            200
        );
    }
    let mut orders = Vec::new();
    for (buyer, id) in sold {
        let r = gw.order(buyer, &[id]).await;
        assert_eq!(r.status, 201, "{}", r.body);
        orders.push((buyer.clone(), r.body["id"].as_str().expect("order").to_string()));
    }
    assert_eq!(gw.set_status(&orders[0].0, &orders[0].1, "cancelled").await.status, 200);
    // The rest expire, their schedules and two sweeps all going for them at once.
    clock.advance(Duration::seconds(601));
    let expire_app = as_function(&app, "expire");
    let sweep_app = as_function(&app, "sweep");
    let expires = futures::future::join_all(expiring.iter().map(|(_, id)| expire_app.expire_reservation(id)));
    let sweeps = futures::future::join_all((0..2).map(|_| sweep_app.sweep(100, Duration::zero())));
    let (expires, sweeps) = tokio::join!(expires, sweeps);
    let by_schedule = expires
        .iter()
        .filter(|e| *e.as_ref().expect("expire") == shared::service::ExpireOutcome::Expired)
        .count();
    let by_sweep: usize = sweeps.iter().map(|s| s.as_ref().expect("sweep").expired).sum();
    assert_eq!(by_schedule + by_sweep, expiring.len(), "each hold expired once");

    // 2 received, 20 holds, 5 releases, 4 sales, 1 cancellation, 11 expiries.
    let ms = movements(&gw, &product, "", 43).await;
    assert_eq!(ms.len(), 43, "{ms:?}");
    let mut per_warehouse = std::collections::BTreeMap::new();
    for w in ["main", "east"] {
        let of: Vec<Value> = ms.iter().filter(|m| m["warehouse_id"] == w).cloned().collect();
        assert_chained(&of);
        let sums = of.iter().fold((0, 0), |(h, r), m| {
            (h + m["on_hand_change"].as_i64().unwrap_or(0), r + m["reserved_change"].as_i64().unwrap_or(0))
        });
        let (on_hand, reserved, _) = gw.stock_of(&product, w).await;
        assert_eq!(sums, (on_hand, reserved), "{w}: the sums are the counters");
        per_warehouse.insert(w, (on_hand, reserved));
    }
    assert_eq!(per_warehouse.values().map(|(h, _)| h).sum::<i64>(), 20 - 4 + 1, "4 sold, 1 back");
    let reasons = |id: &str| -> Vec<String> {
        ms.iter()
            .filter(|m| m["reference"]["id"] == id)
            .map(|m| m["reason"].as_str().unwrap_or("").to_string())
            .collect()
    };
    for (_, id) in &held {
        let of = reasons(id);
        assert_eq!(of.iter().filter(|r| *r == "hold").count(), 1, "{id}: {of:?}");
        assert!(of.iter().filter(|r| *r == "release" || *r == "expiry").count() <= 1, "{id}: {of:?}");
    }
    for (i, (_, order)) in orders.iter().enumerate() {
        let expected = if i == 0 { vec!["sale", "cancellation"] } else { vec!["sale"] };
        assert_eq!(reasons(order), expected, "{order}");
    }

    let end = reconciled(&gw, &product).await;
    assert_eq!(end["consistent"], json!(true), "{end}");
    for w in end["warehouses"].as_array().expect("warehouses") {
        let (on_hand, reserved) = per_warehouse[w["warehouse_id"].as_str().expect("id")];
        assert_eq!(
            w,
            &json!({"warehouse_id": w["warehouse_id"], "on_hand": on_hand, "reserved": reserved,
                    "ledger_on_hand": on_hand, "ledger_reserved": reserved, "held_by_reservations": 0,
                    "consistent": true})
        );
    }
}

/// One run of the reconciliation job as `job` (the `reconcile` function's application),
/// with no settle window.
async fn reconcile_now(
    job: &shared::service::App,
    event: shared::jobs::ReconcileEvent,
) -> shared::service::ReconcileReport {
    let settings = shared::jobs::ReconcileSettings { settle: std::time::Duration::ZERO };
    shared::jobs::reconcile(job, event, settings, None).await.expect("reconcile")
}

/// Counts what the reconciliation reports.
#[derive(Debug, Default)]
struct Inconsistencies(std::sync::atomic::AtomicU64);

impl shared::service::ports::Metrics for Inconsistencies {
    fn count(&self, metric: shared::service::ports::Metric, n: u64) {
        if matches!(metric, shared::service::ports::Metric::StockInconsistencies) {
            self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_behind_the_services_back_makes_reconciliation_report_that_warehouse_with_its_figures() {
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = gateway_for(app.clone()).await;
    let alice = token("alice", false);
    let product = gw.bucketed_product(json!({"main": 10, "east": 5}), 2).await;
    let body = json!({"product_id": product, "quantity": 2, "warehouse_id": "main"});
    assert_eq!(gw.post("/api/reservations", Some(&alice), body).await.status, 201);
    let before = reconciled(&gw, &product).await;
    assert_eq!(before["consistent"], json!(true), "{before}");

    // Units appear in bucket 0 of main and one is marked reserved, with no reason.
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    raw_client()
        .await
        .update_item()
        .table_name(app.store.table())
        .key("pk", S(shared::store::keys::product_pk(&product)))
        .key("sk", S(shared::store::keys::stock_sk("main")))
        .update_expression(
            "SET on_hand = on_hand + :x, reserved = reserved + :one, available = available + :y",
        )
        .expression_attribute_values(":x", N("7".into()))
        .expression_attribute_values(":one", N("1".into()))
        .expression_attribute_values(":y", N("6".into()))
        .send()
        .await
        .expect("raw update");
    // Main's two buckets received, the hold, and the unknown change.
    let ms = movements(&gw, &product, "&warehouse_id=main", 4).await;
    // The raw write moved no `updated_at`, so the unknown change is dated at the row's
    // previous movement and sorts before the later hold.
    let unknown: Vec<_> = ms.iter().filter(|m| m["reason"] == "unknown").collect();
    assert_eq!(unknown.len(), 1, "{ms:?}");
    assert_eq!((unknown[0]["bucket"].clone(), unknown[0]["on_hand_change"].clone()), (json!(0), json!(7)));
    let admin = token("auditor", true);
    let r = gw.get(&format!("/api/products/{product}/reconciliation"), Some(&admin)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"product_id": product, "consistent": false, "warehouses": [
            {"warehouse_id": "east", "on_hand": 5, "reserved": 0, "ledger_on_hand": 5, "ledger_reserved": 0,
             "held_by_reservations": 0, "consistent": true},
            {"warehouse_id": "main", "on_hand": 17, "reserved": 3, "ledger_on_hand": 10, "ledger_reserved": 2,
             "held_by_reservations": 2, "consistent": false}]})
    );

    // The scheduled run finds it too, after its settle window, and counts it.
    let seen = Arc::new(Inconsistencies::default());
    let job = as_function(&app, "reconcile").with_metrics(seen.clone());
    let report = reconcile_now(&job, shared::jobs::ReconcileEvent::default()).await;
    assert_eq!((report.checked, report.more), (1, false));
    let found: Vec<_> = report.inconsistent.iter().flat_map(|c| c.inconsistent()).collect();
    assert_eq!(found.len(), 1, "{report:?}");
    assert_eq!(
        (
            found[0].warehouse_id.as_str(),
            found[0].counters.on_hand,
            found[0].ledger.on_hand,
            found[0].held_by_reservations
        ),
        ("main", 17, 10, 2)
    );
    assert_eq!(seen.0.load(std::sync::atomic::Ordering::Relaxed), 1);
    let limited = shared::jobs::ReconcileEvent { after: None, limit: Some(0) };
    let none = reconcile_now(&job, limited).await;
    assert_eq!((none.checked, none.more), (0, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_on_a_bucketed_product_racing_holds_judge_the_total_of_one_instant() {
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = Arc::new(gateway_for(app.clone()).await);
    // Holds move units between the four buckets (gathers) while the counts read them: on
    // a total read bucket by bucket, a count would find a number that never was.
    let product = gw.bucketed_product(json!({"main": 40}), 4).await;
    let buyers = (0..30).map(|i| {
        let (gw, product) = (gw.clone(), product.clone());
        tokio::spawn(async move {
            let buyer = token(&format!("bucket-buyer-{i}"), false);
            let body = json!({"product_id": product, "quantity": 1, "warehouse_id": "main"});
            let r = gw.post("/api/reservations", Some(&buyer), body).await;
            assert!(matches!((r.status, r.code()), (201, _) | (409, "conflict")), "{}", r.body);
        })
    });
    let counter = {
        let (gw, product) = (gw.clone(), product.clone());
        tokio::spawn(async move {
            // Only this counter changes on_hand (holds move reserved, gathers keep the
            // total): each count expects the number the one before set.
            let admin = token("bucket-counter", true);
            let mut on_hand = 40;
            for _ in 0..12 {
                let body =
                    json!({"warehouse_id": "main", "set_on_hand": on_hand + 1, "expected_on_hand": on_hand});
                loop {
                    let r =
                        gw.post(&format!("/api/products/{product}/stock"), Some(&admin), body.clone()).await;
                    match (r.status, r.code()) {
                        (200, _) => break,
                        // Lost to a gather four times over: counted again, as a client would.
                        (409, "conflict") => continue,
                        other => panic!("a count of {on_hand} answered {other:?}: {}", r.body),
                    }
                }
                on_hand += 1;
            }
        })
    };
    for b in buyers.collect::<Vec<_>>() {
        b.await.expect("buyer");
    }
    counter.await.expect("counter");
    let (on_hand, _, _) = gw.stock_of(&product, "main").await;
    assert_eq!(on_hand, 52, "every count applied");
    // A count moves each bucket row it changes: its movements add up to its change.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let total = loop {
        let counted = movements(&gw, &product, "&reason=counted", 12).await;
        let total: i64 = counted.iter().filter_map(|m| m["on_hand_change"].as_i64()).sum();
        if total >= 12 || std::time::Instant::now() > deadline {
            break total;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(total, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_whose_ledger_head_does_not_decode_fails_alone_and_the_reconciliation_goes_on() {
    let app = app_on_fresh_table().await;
    let gw = gateway_for(app.clone()).await;
    let bad = gw.product(json!({"main": 3})).await;
    let row = shared::domain::movement::RowKey { product_id: bad, warehouse_id: "main".into(), bucket: 0 };
    put_unreadable_ledger_head(&app, &row).await;
    start_audit_poller(&app).await;
    let good = gw.product(json!({"main": 4})).await;
    assert_eq!(reconciled(&gw, &good).await["consistent"], json!(true));
    let report =
        reconcile_now(&as_function(&app, "reconcile"), shared::jobs::ReconcileEvent::default()).await;
    assert_eq!((report.checked, report.failed, report.inconsistent.len()), (2, 1, 0), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciliation_while_holds_are_still_in_the_stream_reports_no_inconsistency() {
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = Arc::new(gateway_for(app.clone()).await);
    let product = gw.product(json!({"main": 30, "east": 30})).await;
    assert_eq!(reconciled(&gw, &product).await["consistent"], json!(true));
    let burst = (0..24).map(|i| {
        let (gw, product) = (gw.clone(), product.clone());
        tokio::spawn(async move {
            let buyer = token(&format!("burst-{i}"), false);
            let warehouse = if i % 2 == 0 { "main" } else { "east" };
            let body = json!({"product_id": product, "quantity": 1, "warehouse_id": warehouse});
            assert_eq!(gw.post("/api/reservations", Some(&buyer), body).await.status, 201);
        })
    });
    let burst: Vec<_> = burst.collect();
    // Checked over and over while the holds go in and their records go through the
    // stream (no settle window at all): a difference the ledger has not caught up with is
    // never an inconsistency.
    let job = as_function(&app, "reconcile");
    let run = || reconcile_now(&job, shared::jobs::ReconcileEvent::default());
    let mut behind = 0;
    while !burst.iter().all(|b| b.is_finished()) {
        let report = run().await;
        assert!(report.inconsistent.is_empty(), "{report:?}");
        behind += report.behind;
    }
    for b in burst {
        b.await.expect("hold");
    }
    for _ in 0..3 {
        let report = run().await;
        assert!(report.inconsistent.is_empty(), "{report:?}");
        behind += report.behind;
    }
    assert!(behind > 0, "some check ran while the ledger was behind");
    assert_eq!(reconciled(&gw, &product).await["consistent"], json!(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recount_reads_only_what_came_after_the_last_checkpoint_and_catches_a_movement_changed_since() {
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = gateway_for(app.clone()).await;
    let product = gw.product(json!({"main": 10})).await;
    for i in 0..6 {
        gw.reserve(&token(&format!("recount-{i}"), false), &product, 1).await;
    }
    assert_eq!(reconciled(&gw, &product).await["consistent"], json!(true));
    let admin = token("auditor", true);
    let path = format!("/api/products/{product}/reconciliation");
    let scanned = || async {
        let before = gw.app.store.metrics().snapshot();
        let r = gw.get(&path, Some(&admin)).await;
        assert_eq!(r.status, 200);
        ((gw.app.store.metrics().snapshot() - before).scanned, r.body)
    };
    let (from_start, _) = scanned().await;
    // The hourly run finds the product consistent and moves its row's checkpoint to the
    // head: a recount now reads none of the 7 movements.
    let job = as_function(&app, "reconcile");
    let run = || reconcile_now(&job, shared::jobs::ReconcileEvent::default());
    assert!(run().await.inconsistent.is_empty());
    let (after_checkpoint, body) = scanned().await;
    assert_eq!(from_start - after_checkpoint, 7, "received + 6 holds no longer read");
    assert_eq!(body["consistent"], json!(true), "{body}");

    // A movement after the checkpoint changed behind the service's back: the recount no
    // longer sums to the head, and the ledger's figures show it.
    gw.reserve(&token("recount-late", false), &product, 1).await;
    let ms = movements(&gw, &product, "", 8).await;
    let last = ms.last().expect("movements");
    assert_eq!(last["reason"], json!("hold"));
    let at = last["at"].as_str().expect("at");
    let seq = last["seq"].as_u64().expect("seq");
    let (one_more, body) = scanned().await;
    assert_eq!(body["consistent"], json!(true), "{body}");
    assert_eq!(one_more - after_checkpoint, 2, "the movement since the checkpoint, and one more hold held");
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    raw_client()
        .await
        .update_item()
        .table_name(app.store.audit_table())
        .key("pk", S(format!("M#{product}#main#0")))
        .key("sk", S(format!("{at}#{seq:012}")))
        .update_expression("SET reserved_change = :two")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(":two", N("2".into()))
        .send()
        .await
        .expect("the movement is there");
    let (_, body) = scanned().await;
    assert_eq!(
        (
            body["consistent"].clone(),
            body["warehouses"][0]["reserved"].clone(),
            body["warehouses"][0]["ledger_reserved"].clone()
        ),
        (json!(false), json!(7), json!(8)),
        "{body}"
    );
    let report = run().await;
    assert_eq!(report.inconsistent.len(), 1, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_changed_behind_the_services_back_shows_in_held_by_reservations() {
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = gateway_for(app.clone()).await;
    let product = gw.product(json!({"main": 10, "east": 4})).await;
    let id = gw.reserve(&token("held-changed", false), &product, 2).await;
    let before = reconciled(&gw, &product).await;
    assert_eq!(before["consistent"], json!(true), "{before}");
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    raw_client()
        .await
        .update_item()
        .table_name(app.store.table())
        .key("pk", S(shared::store::keys::reservation_pk(&id)))
        .key("sk", S(shared::store::keys::RESERVATION_SK.into()))
        .update_expression("SET quantity = :q")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(":q", N("5".into()))
        .send()
        .await
        .expect("the reservation is there");
    let admin = token("auditor", true);
    let r = gw.get(&format!("/api/products/{product}/reconciliation"), Some(&admin)).await;
    let held = |w: &str| {
        r.body["warehouses"].as_array().and_then(|ws| ws.iter().find(|x| x["warehouse_id"] == w)).cloned()
    };
    let main = held("main").expect("main");
    assert_eq!(
        (
            main["reserved"].clone(),
            main["ledger_reserved"].clone(),
            main["held_by_reservations"].clone(),
            main["consistent"].clone()
        ),
        (json!(2), json!(2), json!(5), json!(false)),
        "{}",
        r.body
    );
    assert_eq!(held("east").expect("east")["consistent"], json!(true), "the other warehouse still agrees");
    assert_eq!(r.body["consistent"], json!(false));
}
