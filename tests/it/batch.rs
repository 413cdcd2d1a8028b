//! Batch holds: a whole cart in one atomic step, the failing line named, nothing held by
//! a cart that failed.

use futures::stream::{self, StreamExt};
use serde_json::json;
use stockhold_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_buyers_racing_for_twenty_carts_of_three_products_get_exactly_twenty() {
    let gw = gateway().await;
    let products = [
        gw.product(json!({"main": 20})).await,
        gw.product(json!({"main": 20})).await,
        gw.bucketed_product(json!({"main": 20}), 4).await,
    ];
    let cart = json!({"items": products.iter().map(|p| json!({"product_id": p, "quantity": 1})).collect::<Vec<_>>()});
    let buyers: Vec<String> = (0..60).map(|_| token(&unique("cart"), false)).collect();
    let results: Vec<Reply> = stream::iter(&buyers)
        .map(|b| gw.post("/api/reservations/batch", Some(b), cart.clone()))
        .buffer_unordered(16)
        .collect()
        .await;
    let won = results.iter().filter(|r| r.status == 201).count();
    assert_eq!(won, 20, "exactly as many carts as the stock fills");
    for r in results.iter().filter(|r| r.status != 201) {
        assert_eq!((r.status, r.code()), (409, "insufficient_stock"), "{}", r.body);
        assert!(
            products.iter().any(|p| r.body["product_id"] == json!(p)),
            "the failing line is named: {}",
            r.body
        );
    }
    for r in results.iter().filter(|r| r.status == 201) {
        let lines = r.body["reservations"].as_array().expect("reservations");
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l["expires_at"] == lines[0]["expires_at"]), "one expiry for the cart");
    }
    // No unit is held by a cart that failed.
    for p in &products {
        assert_eq!(gw.stock_of(p, "main").await, (20, 20, 0), "{p}");
    }
}

#[tokio::test]
async fn a_cart_with_a_bad_line_holds_nothing_and_names_the_line() {
    let gw = gateway().await;
    let a = gw.product(json!({"main": 5})).await;
    let b = gw.product(json!({"main": 1})).await;
    let alice = token(&unique("alice"), false);
    let post = |body: serde_json::Value| gw.post("/api/reservations/batch", Some(&alice), body);

    let r = post(json!({"items": [{"product_id": a, "quantity": 2}, {"product_id": "01NOSUCHPRODUCT", "quantity": 1}]})).await;
    assert_eq!((r.status, r.body["product_id"].clone()), (404, json!("01NOSUCHPRODUCT")), "{}", r.body);
    let r =
        post(json!({"items": [{"product_id": a, "quantity": 2}, {"product_id": b, "quantity": 2}]})).await;
    assert_eq!((r.status, r.code(), r.body["product_id"].clone()), (409, "insufficient_stock", json!(b)));
    assert_eq!(r.body["available"], 1);
    assert_eq!(gw.stock_of(&a, "main").await, (5, 0, 5), "the good line holds nothing either");

    let r =
        post(json!({"items": [{"product_id": a, "quantity": 1}, {"product_id": a, "quantity": 1}]})).await;
    assert_eq!((r.status, r.body["errors"][0]["field"].clone()), (422, json!("items[1].product_id")));
    let r = post(json!({"items": [{"product_id": a, "quantity": 0}]})).await;
    assert_eq!((r.status, r.body["errors"][0]["field"].clone()), (422, json!("items[0].quantity")));
    assert_eq!(post(json!({"items": []})).await.code(), "validation_failed");
    let r = gw.get("/api/reservations/batch", Some(&alice)).await;
    assert_eq!((r.status, r.headers.get("allow").and_then(|v| v.to_str().ok())), (405, Some("POST")));

    // A good cart: ordinary reservations afterwards, and an idempotent retry replays it.
    let body = json!({"items": [{"product_id": a, "quantity": 2}, {"product_id": b, "quantity": 1, "warehouse_id": "main"}]});
    let send = || async {
        let resp = gw
            .http
            .post(format!("{}/api/reservations/batch", gw.url))
            .bearer_auth(&alice)
            .header("idempotency-key", "cart-1")
            .json(&body)
            .send()
            .await
            .expect("send");
        into_reply(resp).await
    };
    let first = send().await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = send().await;
    assert_eq!((again.status, &again.body), (201, &first.body), "the first response, replayed");
    assert_eq!(gw.stock_of(&a, "main").await, (5, 2, 3));
    let ids: Vec<&str> = first.body["reservations"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        gw.send("DELETE", &format!("/api/reservations/{}", ids[0]), Some(&alice), None).await.status,
        200
    );
    assert_eq!(gw.order(&alice, &[ids[1]]).await.status, 201);
    assert_eq!((gw.stock_of(&a, "main").await, gw.stock_of(&b, "main").await), ((5, 0, 5), (0, 0, 0)));
}

#[tokio::test]
async fn a_cart_makes_one_expiry_schedule_that_ends_every_line_still_held_at_its_time() {
    use std::sync::atomic::Ordering;
    let _lock = sweep_lock().await;
    let clock = past_clock();
    let schedules = std::sync::Arc::new(RecordingScheduler::default());
    let app = app_with_clock(std::sync::Arc::new(clock.clone())).await.with_scheduler(schedules.clone());
    let gw = gateway_for(app.clone()).await;
    let mut products = Vec::new();
    for _ in 0..5 {
        products.push(gw.product(json!({"main": 3})).await);
    }
    let buyer = token(&unique("cart"), false);
    let cart = json!({"items": products.iter().map(|p| json!({"product_id": p, "quantity": 1})).collect::<Vec<_>>()});
    let r = gw.post("/api/reservations/batch", Some(&buyer), cart).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let lines: Vec<String> = r.body["reservations"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(schedules.creates.load(Ordering::SeqCst), 1, "one CreateSchedule for the cart");
    let live = schedules.live.lock().expect("lock").clone();
    let ((name, at), ids) = live.iter().next().expect("the schedule");
    assert_eq!(ids, &lines, "it ends every line");
    assert!(!lines.contains(name), "named apart from its lines, so a line's cancel leaves it");
    assert_eq!(
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        r.body["reservations"][0]["expires_at"]
    );

    // Releasing one line leaves the cart's schedule; ordering another too.
    let released = gw.send("DELETE", &format!("/api/reservations/{}", lines[0]), Some(&buyer), None).await;
    assert_eq!(released.status, 200, "{}", released.body);
    assert_eq!(gw.order(&buyer, &[&lines[1]]).await.status, 201);
    assert_eq!(schedules.live.lock().expect("lock").len(), 1, "the cart's schedule stands");

    // Its run, at its time, ends the three lines still held and leaves the two others.
    clock.advance(chrono::Duration::seconds(601));
    let event = shared::jobs::ExpireEvent::of(ids.clone());
    let done = shared::jobs::expire(&as_function(&app, "expire"), event, None).await.expect("expire");
    let outcomes: Vec<&str> = done
        .reservations
        .iter()
        .map(|e| match e.outcome {
            shared::service::ExpireOutcome::Expired => "expired",
            shared::service::ExpireOutcome::NotActive => "not_active",
            _ => "other",
        })
        .collect();
    assert_eq!(outcomes, ["not_active", "not_active", "expired", "expired", "expired"]);
    for p in &products[2..] {
        assert_eq!(gw.stock_of(p, "main").await, (3, 0, 3), "{p}: its unit is back");
    }
}
