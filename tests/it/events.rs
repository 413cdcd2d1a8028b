//! Events out: every change as an event in the replay feed (`GET /api/events`), made from
//! the stream beside the audit entries, numbered per entity without gap, once per change
//! whatever is delivered again, and resumable exactly from a cursor while events are
//! being published.

use futures::future::join_all;
use serde_json::{json, Value};
use shared::adapters::clock::ManualClock;
use shared::jobs::handle_batch;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use stockhold_tests::*;

/// Polls the feed from `cursor` (none: its start), following `next_cursor`, until `n`
/// events have come (bounded: 30 s). The events and the cursor to go on from. With a
/// manual `clock` (the one the stream job stamps events with), the clock is moved on 3 s
/// (past the feed's trail) once 3 s have passed for real since the last move, never
/// faster: the trail lets a writer take up to 2 s between its stamp and its write, and a
/// clock that ran ahead of real time (it once moved 3 s per 200 ms poll) left a slow
/// writer's event behind the cursor on a loaded machine.
async fn poll_at(
    gw: &TestGateway,
    clock: Option<&ManualClock>,
    query: &str,
    cursor: Option<String>,
    n: usize,
) -> (Vec<Value>, String) {
    let admin = token("feed-reader", true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut all = Vec::new();
    let mut cursor = cursor;
    let mut moved = std::time::Instant::now();
    loop {
        if let Some(c) = clock {
            if moved.elapsed() >= std::time::Duration::from_secs(3) {
                c.advance(chrono::Duration::seconds(3));
                moved = std::time::Instant::now();
            }
        }
        let path = match &cursor {
            Some(c) => format!("/api/events?limit=100{query}&after={c}"),
            None => format!("/api/events?limit=100{query}"),
        };
        let r = gw.get(&path, Some(&admin)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let items = r.body["items"].as_array().cloned().unwrap_or_default();
        let empty = items.is_empty();
        all.extend(items);
        cursor = Some(r.body["next_cursor"].as_str().expect("next_cursor is never null").to_string());
        if all.len() >= n || std::time::Instant::now() > deadline {
            return (all, cursor.unwrap_or_default());
        }
        if empty {
            // The feed trails publication; poll again as a consumer would.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

async fn poll(gw: &TestGateway, query: &str, cursor: Option<String>, n: usize) -> (Vec<Value>, String) {
    poll_at(gw, None, query, cursor, n).await
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap_or("")).collect()
}

/// Each entity's events' sequences, in feed order.
fn sequences(events: &[Value]) -> BTreeMap<(String, String), Vec<u64>> {
    let mut by: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for e in events {
        let key = (
            e["entity_type"].as_str().unwrap_or("").to_string(),
            e["entity_id"].as_str().unwrap_or("").to_string(),
        );
        let key = if key.0 == "stock" {
            (format!("stock/{}", e["data"]["warehouse_id"].as_str().unwrap_or("")), key.1)
        } else {
            key
        };
        by.entry(key).or_default().push(e["sequence"].as_u64().unwrap_or(0));
    }
    by
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_through_the_api_is_one_event_of_the_contract_numbered_per_entity() {
    let clock = ManualClock::new(chrono::Utc::now());
    let app = with_clock(app_on_fresh_table().await, Arc::new(clock.clone()));
    start_audit_poller(&app).await;
    let gw = gateway_for(app).await;
    let admin = token("admin-1", true);
    let alice = token("alice", false);
    let product = gw.product(json!({"main": 3})).await;
    let patched = gw
        .send(
            "PATCH",
            &format!("/api/products/{product}"),
            Some(&admin),
            Some(json!({"name": "Evented, renamed"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let r1 = gw.reserve(&alice, &product, 2).await;
    clock.advance(chrono::Duration::seconds(60));
    let extended = gw.send("POST", &format!("/api/reservations/{r1}/extend"), Some(&alice), None).await;
    assert_eq!(extended.status, 200, "{}", extended.body);
    assert_eq!(gw.send("DELETE", &format!("/api/reservations/{r1}"), Some(&alice), None).await.status, 200);
    let r2 = gw.reserve(&alice, &product, 1).await;
    let order = gw.order(&alice, &[&r2]).await;
    assert_eq!(order.status, 201, "{}", order.body);
    let order_id = order.body["id"].as_str().expect("order id").to_string();
    assert_eq!(gw.set_status(&admin, &order_id, "confirmed").await.status, 200);

    // 1 product created + 1 changed; 4 stock movements (the first stock, hold, release,
    // hold; the sale moves reserved and on_hand at once: 5); reservations 1+1+1, 1+1; order 2.
    let (events, _) = poll_at(&gw, Some(&clock), "", None, 14).await;
    let mut kinds = types(&events);
    kinds.sort();
    let mut expected = vec![
        "ProductCreated",
        "ProductChanged",
        "StockChanged",
        "StockChanged",
        "StockChanged",
        "StockChanged",
        "StockChanged",
        "ReservationCreated",
        "ReservationExtended",
        "ReservationReleased",
        "ReservationCreated",
        "ReservationConverted",
        "OrderCreated",
        "OrderStatusChanged",
    ];
    expected.sort();
    assert_eq!(kinds, expected, "{events:#?}");
    assert_eq!(events.len(), expected.len(), "nothing more after a moment either");

    // The envelope's fields, and `data` as the API renders the entity.
    let converted = events.iter().find(|e| e["type"] == "ReservationConverted").expect("converted");
    assert_eq!(converted["entity_type"], "reservation");
    assert_eq!(converted["entity_id"], r2.as_str());
    assert_eq!(converted["actor"], "alice");
    assert_eq!(converted["data"]["status"], "converted");
    assert_eq!(converted["changes"]["status"], json!({"old": "active", "new": "converted"}));
    assert!(converted["event_id"].as_str().is_some_and(|s| !s.is_empty()));
    let read = gw.get(&format!("/api/reservations/{r2}"), Some(&alice)).await;
    assert_eq!(converted["data"], read.body, "data is the entity as the API returns it");
    let changed = events.iter().find(|e| e["type"] == "OrderStatusChanged").expect("status");
    assert_eq!(changed["data"]["status"], "confirmed");
    assert_eq!(changed["actor"], "admin-1");
    let created = events.iter().find(|e| e["type"] == "ProductCreated").expect("product");
    // A product's event carries its stock as read when the event is made (the stock's own
    // events say how it got there).
    assert_eq!(created["data"]["id"], product.as_str());
    assert_eq!(created["data"]["stock"][0]["warehouse_id"], "main");
    assert_eq!(created["data"]["stock"][0]["on_hand"], 3);
    let stock: Vec<&Value> = events.iter().filter(|e| e["type"] == "StockChanged").collect();
    for s in &stock {
        assert_eq!(s["entity_type"], "stock");
        assert_eq!(s["entity_id"], product.as_str());
        assert_eq!(s["data"]["warehouse_id"], "main");
        assert_eq!(s["sequence"], s["data"]["movement"]["seq"], "numbered by the movement's seq");
        assert_eq!(s["event_id"], s["data"]["movement"]["id"]);
    }
    let hold = stock.iter().find(|s| s["data"]["movement"]["reason"] == "hold").expect("hold");
    assert_eq!(hold["changes"]["available"], json!({"old": 3, "new": 1}));

    // Per entity 1..n without gap, in feed order.
    for (entity, seqs) in sequences(&events) {
        let n = seqs.len() as u64;
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "{entity:?}");
    }

    // Filters: one type, several types, an entity.
    let (only, _) = poll_at(&gw, Some(&clock), "&type=ReservationCreated", None, 2).await;
    assert_eq!(types(&only), ["ReservationCreated", "ReservationCreated"]);
    let (two, _) = poll_at(&gw, Some(&clock), "&type=OrderCreated,ProductChanged", None, 2).await;
    assert_eq!(two.len(), 2, "{two:?}");
    let (one_order, _) =
        poll_at(&gw, Some(&clock), &format!("&entity_type=order&entity_id={order_id}"), None, 2).await;
    assert_eq!(types(&one_order), ["OrderCreated", "OrderStatusChanged"]);
}

#[tokio::test]
async fn a_stream_batch_delivered_again_publishes_nothing_twice() {
    let clock = ManualClock::new(chrono::Utc::now());
    let gw = gateway_for(with_clock(app_on_fresh_table().await, Arc::new(clock.clone()))).await;
    let audit = as_function(&gw.app, "audit");
    let event = serde_json::from_value(audit_stream_fixture()).expect("fixture");
    assert!(handle_batch(&audit, &event, None).await.batch_item_failures.is_empty());
    let (first, cursor) = poll_at(&gw, Some(&clock), "", None, 2).await;
    assert_eq!(types(&first), ["ProductCreated", "OrderStatusChanged"], "{first:#?}");
    assert!(handle_batch(&audit, &event, None).await.batch_item_failures.is_empty());
    assert!(handle_batch(&audit, &event, None).await.batch_item_failures.is_empty());
    // Past the trail of the redeliveries: nothing came.
    let admin = token("feed-reader", true);
    clock.advance(chrono::Duration::seconds(3));
    let again = gw.get(&format!("/api/events?after={cursor}"), Some(&admin)).await;
    assert_eq!(again.body["items"], json!([]), "a redelivery publishes nothing");
    let (all, _) = poll_at(&gw, Some(&clock), "", None, 3).await;
    assert_eq!(all.len(), 2, "from the start too: {all:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_polling_from_its_cursor_while_500_changes_happen_gets_each_event_once() {
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = std::sync::Arc::new(gateway_for(app).await);
    let product = gw.product(json!({"main": 1000})).await;
    let (start, cursor) = poll(&gw, "", None, 2).await;
    assert_eq!(types(&start), ["ProductCreated", "StockChanged"]);

    // 250 holds and their releases (500 reservation changes, 500 stock movements) by 10
    // buyers, while the consumer polls from its cursor.
    let writers = (0..10).map(|b| {
        let gw = gw.clone();
        let product = product.clone();
        tokio::spawn(async move {
            let buyer = token(&format!("feed-buyer-{b}"), false);
            for _ in 0..25 {
                let r = gw.reserve(&buyer, &product, 1).await;
                assert_eq!(
                    gw.send("DELETE", &format!("/api/reservations/{r}"), Some(&buyer), None).await.status,
                    200
                );
            }
        })
    });
    let writers: Vec<_> = writers.collect();
    let reader = {
        let gw = gw.clone();
        tokio::spawn(async move {
            let admin = token("feed-reader", true);
            let mut cursor = cursor;
            let mut got = Vec::new();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            while got.len() < 1000 && std::time::Instant::now() < deadline {
                let r = gw.get(&format!("/api/events?limit=37&after={cursor}"), Some(&admin)).await;
                assert_eq!(r.status, 200, "{}", r.body);
                got.extend(r.body["items"].as_array().cloned().unwrap_or_default());
                cursor = r.body["next_cursor"].as_str().expect("cursor").to_string();
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            (got, cursor)
        })
    };
    for w in writers {
        w.await.expect("writer");
    }
    let (got, cursor) = reader.await.expect("reader");
    let ids: Vec<&str> = got.iter().filter_map(|e| e["event_id"].as_str()).collect();
    let unique_ids: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique_ids.len(), "no event twice");
    assert_eq!(got.len(), 1000, "every event once");
    let (late, _) = poll(&gw, "", Some(cursor), 1).await;
    assert!(late.is_empty(), "none left behind: {late:?}");
    for (entity, seqs) in sequences(&got) {
        if entity.0.starts_with("stock") {
            let n = seqs.len() as u64;
            assert_eq!(seqs, (2..=n + 1).collect::<Vec<_>>(), "the stock's numbering goes on without gap");
        }
    }
}

/// The feed lists the hours that have events, so a page goes from one to the next: a
/// consumer whose cursor is a quiet day behind the next event gets it on its next page,
/// never an empty page (which says that nothing new has been published).
#[tokio::test]
async fn a_consumer_a_quiet_day_behind_gets_the_next_event_on_its_next_page() {
    let clock = ManualClock::new(chrono::Utc::now() - chrono::Duration::days(3));
    let app = with_clock(app_on_fresh_table().await, Arc::new(clock.clone()));
    start_audit_poller(&app).await;
    let gw = gateway_for(app).await;
    let product = gw.product(json!({"main": 1})).await;
    let (first, cursor) = poll_at(&gw, Some(&clock), "", None, 2).await;
    assert_eq!(types(&first), ["ProductCreated", "StockChanged"]);
    clock.advance(chrono::Duration::hours(30));
    // The consumer's cursor is its own (poll_at reads as feed-reader).
    let admin = token("feed-reader", true);
    let patched = gw
        .send(
            "PATCH",
            &format!("/api/products/{product}"),
            Some(&admin),
            Some(json!({"name": "A day later"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    // The same cursor each time: the first page that has anything must have the event.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        clock.advance(chrono::Duration::seconds(3));
        let r = gw.get(&format!("/api/events?limit=100&after={cursor}"), Some(&admin)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        if let Some(items) = r.body["items"].as_array().filter(|i| !i.is_empty()) {
            assert_eq!(types(items), ["ProductChanged"]);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the event never came after a quiet day");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The threshold event each movement should make, judged here from the movement alone
/// (the available before it is the one after it less its change), independently of the
/// service's rule: a warehouse's first movement is its first stock, no crossing.
fn expected_crossing(m: &Value, threshold: i64) -> Option<&'static str> {
    let after = m["available"].as_i64()?;
    let before = after - (m["on_hand_change"].as_i64()? - m["reserved_change"].as_i64()?);
    if m["seq"].as_u64()? == 1 {
        None
    } else if before > 0 && after <= 0 {
        Some("OutOfStock")
    } else if before <= 0 && after > 0 {
        Some("BackInStock")
    } else if before > threshold && after <= threshold && after > 0 {
        Some("StockLow")
    } else {
        None
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyers_racing_for_the_last_units_make_one_threshold_event_per_crossing_of_the_movements() {
    let clock = ManualClock::new(chrono::Utc::now());
    let app = with_clock(app_on_fresh_table().await, Arc::new(clock.clone()));
    start_audit_poller(&app).await;
    let gw = Arc::new(gateway_for(app.clone()).await);
    let admin = token("admin-1", true);
    let created = gw
        .post(
            "/api/products",
            Some(&admin),
            json!({"sku": unique("LOW"), "name": "Last units", "price_cents": 900,
                   "stock": {"main": 6, "east": 4}, "low_stock_threshold": 3}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let product = created.body["id"].as_str().expect("id").to_string();

    // 40 buyers race for 10 units, one each, half at each warehouse.
    let racers = (0..40).map(|b| {
        let gw = gw.clone();
        let product = product.clone();
        tokio::spawn(async move {
            let buyer = token(&format!("last-units-{b}"), false);
            let warehouse = if b % 2 == 0 { "main" } else { "east" };
            let body = json!({"product_id": product, "quantity": 1, "warehouse_id": warehouse});
            let r = gw.post("/api/reservations", Some(&buyer), body).await;
            match r.status {
                201 => Some((buyer, warehouse, r.body["id"].as_str().expect("id").to_string())),
                409 => {
                    assert_eq!(r.code(), "insufficient_stock", "{}", r.body);
                    None
                }
                s => panic!("{s}: {}", r.body),
            }
        })
    });
    let mut held = Vec::new();
    for r in join_all(racers).await {
        held.extend(r.expect("racer"));
    }
    assert_eq!(held.iter().filter(|(_, w, _)| *w == "main").count(), 6);
    assert_eq!(held.iter().filter(|(_, w, _)| *w == "east").count(), 4);

    // Two main holds released (0 -> 2: back in stock), the rest expire, the expire job
    // and the sweep racing for each (east 0 -> 4).
    let first_mains: Vec<usize> = (0..held.len()).filter(|i| held[*i].1 == "main").take(2).collect();
    let (released, expiring): (Vec<_>, Vec<_>) =
        held.iter().enumerate().partition(|(i, _)| first_mains.contains(i));
    for (_, (buyer, _, r)) in &released {
        assert_eq!(gw.send("DELETE", &format!("/api/reservations/{r}"), Some(buyer), None).await.status, 200);
    }
    clock.advance(chrono::Duration::seconds(601));
    let expire = as_function(&app, "expire");
    let sweep = as_function(&app, "sweep");
    let expires = join_all(expiring.iter().map(|(_, (_, _, r))| expire.expire_reservation(r)));
    let sweeps = join_all((0..2).map(|_| sweep.sweep(100, NO_GRACE)));
    let (_, sweeps) = tokio::join!(expires, sweeps);
    assert!(sweeps.iter().all(|s| s.is_ok()), "{sweeps:?}");
    assert_eq!(gw.stock_of(&product, "main").await, (6, 0, 6));
    assert_eq!(gw.stock_of(&product, "east").await, (4, 0, 4));

    // Counts: east counted down to 1 (low), main emptied (out) and restocked (back).
    let stock = format!("/api/products/{product}/stock");
    for body in [
        json!({"warehouse_id": "east", "set_on_hand": 1}),
        json!({"warehouse_id": "main", "delta": -6}),
        json!({"warehouse_id": "main", "delta": 2}),
    ] {
        let r = gw.post(&stock, Some(&admin), body).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }

    // 2 first stocks, 10 holds, 2 releases, 8 expiries, 3 counts.
    let ms = movements(&gw, &product, "", 25).await;
    assert_eq!(ms.len(), 25);
    let mut expected: Vec<(String, u64, &str, i64)> = ms
        .iter()
        .filter_map(|m| {
            let kind = expected_crossing(m, 3)?;
            let warehouse = m["warehouse_id"].as_str()?.to_string();
            Some((warehouse, m["seq"].as_u64()?, kind, m["available"].as_i64()?))
        })
        .collect();
    expected.sort();
    for kind in ["StockLow", "OutOfStock", "BackInStock"] {
        assert_eq!(expected.iter().filter(|e| e.2 == kind).count(), 3, "{kind} in {expected:?}");
    }

    // Every stock event of the product: its 25 `StockChanged` and the crossings.
    let query = format!("&entity_type=stock&entity_id={product}");
    let (events, _) = poll_at(&gw, Some(&clock), &query, None, 25 + expected.len()).await;
    let (changes, crossings): (Vec<Value>, Vec<Value>) =
        events.into_iter().partition(|e| e["type"] == "StockChanged");
    let mut got: Vec<(String, u64, &str, i64)> = crossings
        .iter()
        .map(|e| {
            (
                e["data"]["warehouse_id"].as_str().unwrap_or("").to_string(),
                e["sequence"].as_u64().unwrap_or(0),
                e["type"].as_str().unwrap_or(""),
                e["data"]["available"].as_i64().unwrap_or(i64::MIN),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, expected, "one event per crossing, none more: {crossings:#?}");
    let ids: HashSet<&str> = crossings.iter().filter_map(|e| e["event_id"].as_str()).collect();
    assert_eq!(ids.len(), crossings.len(), "each its own event_id");
    for e in &crossings {
        assert_eq!(e["data"]["low_stock_threshold"], 3, "{e}");
        assert_eq!(e["changes"]["available"]["new"], e["data"]["available"], "{e}");
    }

    // The stock's own events: one per movement, 1..n per warehouse without gap.
    assert_eq!(changes.len(), 25);
    for (entity, seqs) in sequences(&changes) {
        let n = seqs.len() as u64;
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "{entity:?}");
    }
}
