//! Reservation routes: hold, read, release, lazy expiry, visibility.

use chrono::Duration;
use serde_json::json;
use shared::adapters::clock::ManualClock;
use std::sync::Arc;
use stockhold_tests::*;

#[tokio::test]
async fn reserving_holds_units_and_releasing_gives_them_back_once() {
    let (gw, id, alice) = shop(10).await;
    let body = json!({"product_id": id, "quantity": 3, "warehouse_id": "main"});
    let r = gw.post("/api/reservations", Some(&alice), body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        (r.body["status"].clone(), r.body["quantity"].clone(), r.body["warehouse_id"].clone()),
        (json!("active"), json!(3), json!("main"))
    );
    let created =
        chrono::DateTime::parse_from_rfc3339(r.body["created_at"].as_str().expect("t")).expect("time");
    let expires =
        chrono::DateTime::parse_from_rfc3339(r.body["expires_at"].as_str().expect("t")).expect("time");
    assert_eq!(expires - created, Duration::seconds(600));
    assert_eq!(gw.stock_of(&id, "main").await, (10, 3, 7));
    let rid = r.body["id"].as_str().expect("id").to_string();
    let path = format!("/api/reservations/{rid}");

    let got = gw.get(&path, Some(&alice)).await;
    assert_eq!((got.status, got.body.clone()), (200, r.body.clone()));
    let released = gw.send("DELETE", &path, Some(&alice), None).await;
    assert_eq!((released.status, released.body["status"].clone()), (200, json!("released")));
    assert_eq!(gw.stock_of(&id, "main").await, (10, 0, 10));
    let again = gw.send("DELETE", &path, Some(&alice), None).await;
    assert_eq!((again.status, again.body["status"].clone()), (200, json!("released")));
    assert_eq!(gw.stock_of(&id, "main").await, (10, 0, 10));
}

#[tokio::test]
async fn other_users_get_404_for_a_reservation_and_admins_see_it() {
    let (gw, id, alice) = shop(5).await;
    let r = gw.post("/api/reservations", Some(&alice), json!({"product_id": id, "quantity": 1})).await;
    let path = format!("/api/reservations/{}", r.body["id"].as_str().expect("id"));
    let mallory = token(&unique("mallory"), false);
    assert_eq!(gw.get(&path, Some(&mallory)).await.status, 404);
    assert_eq!(gw.send("DELETE", &path, Some(&mallory), None).await.status, 404);
    assert_eq!(gw.stock_of(&id, "main").await, (5, 1, 4));
    assert_eq!(gw.get(&path, Some(&token("root", true))).await.status, 200);
    assert_eq!(gw.get("/api/reservations/01NOPE", Some(&alice)).await.status, 404);
    let by_admin = gw.send("DELETE", &path, Some(&token("root", true)), None).await;
    assert_eq!((by_admin.status, by_admin.body["status"].clone()), (200, json!("released")));
}

#[tokio::test]
async fn without_a_warehouse_the_one_with_most_available_is_picked_ties_by_id() {
    let gw = gateway().await;
    let id = gw.product(json!({"a": 5, "b": 8, "c": 8})).await;
    let u = token(&unique("u"), false);
    let r = gw.post("/api/reservations", Some(&u), json!({"product_id": id, "quantity": 2})).await;
    assert_eq!((r.status, r.body["warehouse_id"].clone()), (201, json!("b")));
    let r = gw.post("/api/reservations", Some(&u), json!({"product_id": id, "quantity": 2})).await;
    assert_eq!(r.body["warehouse_id"], "c");
    // 6/6/5 left: nobody can fill 7, and the body says the most one warehouse could give.
    let r = gw.post("/api/reservations", Some(&u), json!({"product_id": id, "quantity": 7})).await;
    assert_eq!((r.status, r.code(), r.body["available"].clone()), (409, "insufficient_stock", json!(6)));
    let r = gw
        .post("/api/reservations", Some(&u), json!({"product_id": id, "quantity": 6, "warehouse_id": "a"}))
        .await;
    assert_eq!((r.status, r.body["available"].clone()), (409, json!(5)));
}

#[tokio::test]
async fn unknown_products_and_warehouses_are_404_and_bad_quantities_422() {
    let (gw, id, u) = shop(5).await;
    let r = gw.post("/api/reservations", Some(&u), json!({"product_id": "01NOPE", "quantity": 1})).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let body = json!({"product_id": "01NOPE", "quantity": 1, "warehouse_id": "main"});
    let r = gw.post("/api/reservations", Some(&u), body).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let body = json!({"product_id": id, "quantity": 1, "warehouse_id": "nowhere"});
    let r = gw.post("/api/reservations", Some(&u), body).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    for q in [json!(0), json!(10_001), json!(1.5), json!("1"), json!(null)] {
        let r = gw.post("/api/reservations", Some(&u), json!({"product_id": id, "quantity": q})).await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{q}");
    }
    let r =
        gw.post("/api/reservations", Some(&u), json!({"product_id": id, "quantity": 1, "note": "x"})).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"));
    assert_eq!(gw.stock_of(&id, "main").await, (5, 0, 5));
}

#[tokio::test]
async fn a_hold_past_its_time_reads_as_expired_and_cannot_be_released_before_any_job_runs() {
    let clock = ManualClock::new(chrono::Utc::now());
    let gw = gateway_for(app_with_clock(Arc::new(clock.clone())).await).await;
    let id = gw.product(json!({"main": 5})).await;
    let u = token(&unique("u"), false);
    let r = gw.post("/api/reservations", Some(&u), json!({"product_id": id, "quantity": 2})).await;
    let path = format!("/api/reservations/{}", r.body["id"].as_str().expect("id"));
    clock.advance(Duration::seconds(599));
    assert_eq!(gw.get(&path, Some(&u)).await.body["status"], "active");
    clock.advance(Duration::seconds(1));
    let got = gw.get(&path, Some(&u)).await;
    assert_eq!(
        (got.body["status"].clone(), got.body["updated_at"].clone()),
        (json!("expired"), r.body["expires_at"].clone())
    );
    let r = gw.send("DELETE", &path, Some(&u), None).await;
    assert_eq!((r.status, r.code()), (409, "reservation_not_active"));
    // The units stay held until the expiry job (a later issue) returns them.
    assert_eq!(gw.stock_of(&id, "main").await, (5, 2, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_one_user_races_past_the_hold_cap_exactly_the_cap_is_held_and_ending_holds_frees_slots() {
    let mut app = app().await;
    app.config.max_active_holds = 3;
    let gw = gateway_for(app).await;
    let product = gw.product(json!({"main": 100})).await;
    let t = token(&unique("greedy"), false);
    let body = json!({"product_id": product, "quantity": 1});
    let replies =
        futures::future::join_all((0..10).map(|_| gw.post("/api/reservations", Some(&t), body.clone())))
            .await;
    let held = created_ids(&replies);
    assert_eq!(held.len(), 3, "exactly the cap");
    for r in replies.iter().filter(|r| r.status != 201) {
        assert_eq!((r.status, r.code()), (409, "hold_limit_reached"), "{}", r.body);
    }
    assert_eq!(gw.stock_of(&product, "main").await, (100, 3, 97), "refused holds took nothing");
    // Another user is not affected.
    let other = token(&unique("other"), false);
    assert_eq!(gw.post("/api/reservations", Some(&other), body.clone()).await.status, 201);

    // A release gives its slot back, once.
    assert_eq!(
        gw.send("DELETE", &format!("/api/reservations/{}", held[0]), Some(&t), None).await.status,
        200
    );
    gw.send("DELETE", &format!("/api/reservations/{}", held[0]), Some(&t), None).await;
    let again = gw.reserve(&t, &product, 1).await;
    assert_eq!(gw.post("/api/reservations", Some(&t), body.clone()).await.code(), "hold_limit_reached");
    // Converting holds into an order gives their slots back.
    assert_eq!(gw.order(&t, &[&held[1], &again]).await.status, 201);
    gw.reserve(&t, &product, 1).await;
    gw.reserve(&t, &product, 1).await;
    assert_eq!(gw.post("/api/reservations", Some(&t), body).await.code(), "hold_limit_reached");
}

#[tokio::test]
async fn a_one_warehouse_product_is_held_in_one_request_and_once_sold_out_refused_from_a_read() {
    // An instance of its own, so that its requests are counted apart.
    let gw = gateway_for(app_beside(&app().await).await).await;
    let id = gw.product(json!({"main": 3})).await;
    let u = token(&unique("u"), false);
    let hold = |q: i64| gw.post("/api/reservations", Some(&u), json!({"product_id": id, "quantity": q}));
    let counted = || gw.app.store.metrics().snapshot();
    // The first hold learns the product's terms: it has one warehouse.
    assert_eq!(hold(1).await.status, 201);

    let before = counted();
    let r = hold(1).await;
    assert_eq!((r.status, r.body["warehouse_id"].clone()), (201, json!("main")), "{}", r.body);
    assert_eq!((counted() - before).requests, 1, "the hold's transaction alone");

    // One left: its failed condition refuses 2, with what is left.
    let before = counted();
    let r = hold(2).await;
    assert_eq!((r.status, r.code(), r.body["available"].clone()), (409, "insufficient_stock", json!(1)));
    let spent = counted() - before;
    assert_eq!((spent.requests, spent.write_requests), (1, 1), "the failed transaction alone");

    // Sold out for 2: the next hold reads first and is refused without a write.
    let before = counted();
    let r = hold(2).await;
    assert_eq!((r.status, r.body["available"].clone()), (409, json!(1)));
    let spent = counted() - before;
    assert_eq!((spent.requests, spent.write_requests), (1, 0), "one read");

    // A hold the read finds room for is written, and holds write first again after it.
    let before = counted();
    assert_eq!(hold(1).await.status, 201);
    assert_eq!((counted() - before).requests, 2, "the read and the transaction");
    let before = counted();
    let r = hold(1).await;
    assert_eq!((r.status, r.body["available"].clone()), (409, json!(0)));
    let spent = counted() - before;
    assert_eq!((spent.requests, spent.write_requests), (1, 1));
    assert_eq!(gw.stock_of(&id, "main").await, (3, 3, 0));
}

#[tokio::test]
async fn when_a_second_warehouse_opens_a_hold_decided_on_the_first_alone_takes_the_new_one() {
    let gw = gateway().await;
    let admin = token("root", true);
    for k in [1, 4] {
        let id = gw.bucketed_product(json!({"main": 1}), k).await;
        let u = token(&unique("u"), false);
        let body = json!({"product_id": id, "quantity": 1});
        // The reservation function learns that the product has one warehouse and sells it.
        let r = gw.post("/api/reservations", Some(&u), body.clone()).await;
        assert_eq!((r.status, r.body["warehouse_id"].clone()), (201, json!("main")), "k={k}");
        // The stock function opens a second one.
        let opened = json!({"warehouse_id": "north", "delta": 5});
        let r = gw.post(&format!("/api/products/{id}/stock"), Some(&admin), opened).await;
        assert_eq!(r.status, 200, "k={k}: {}", r.body);
        // A hold decided on the memory of one warehouse fails on main's new terms,
        // decides again and takes the new warehouse, rather than finding main sold out.
        let r = gw.post("/api/reservations", Some(&u), body.clone()).await;
        assert_eq!((r.status, r.body["warehouse_id"].clone()), (201, json!("north")), "k={k}: {}", r.body);
        assert_eq!(gw.stock_of(&id, "north").await, (5, 1, 4), "k={k}");
        assert_eq!(gw.stock_of(&id, "main").await, (1, 1, 0), "k={k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warehouses_opened_at_once_or_on_a_product_that_predates_the_list_are_all_listed() {
    let gw = gateway().await;
    let admin = token("root", true);
    let id = gw.product(json!({"main": 2})).await;
    // The product's item as written before it listed its warehouses.
    raw_client()
        .await
        .update_item()
        .table_name(gw.app.store.table())
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(shared::store::keys::product_pk(&id)))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(shared::store::keys::PRODUCT_SK.into()))
        .update_expression("REMOVE warehouses")
        .send()
        .await
        .expect("plant");
    let fresh = app_beside(&gw.app).await;
    let terms = fresh.store.catalogue.terms(&id).await.expect("read").expect("product");
    assert!(terms.warehouses.is_empty(), "{terms:?}");
    // Its holds read the product to pick.
    let u = token(&unique("u"), false);
    let r = gw.post("/api/reservations", Some(&u), json!({"product_id": id, "quantity": 1})).await;
    assert_eq!((r.status, r.body["warehouse_id"].clone()), (201, json!("main")), "{}", r.body);
    // Two admins open two warehouses at once: both land, and the list has all three.
    let path = format!("/api/products/{id}/stock");
    let (a, b) = tokio::join!(
        gw.post(&path, Some(&admin), json!({"warehouse_id": "north", "delta": 3})),
        gw.post(&path, Some(&admin), json!({"warehouse_id": "south", "delta": 4})),
    );
    assert_eq!((a.status, b.status), (200, 200), "{} {}", a.body, b.body);
    let terms = fresh.store.catalogue.terms(&id).await.expect("read").expect("product");
    let listed: Vec<&str> = terms.warehouses.iter().map(|w| w.as_str()).collect();
    assert_eq!(listed, ["main", "north", "south"]);
    assert!(terms.terms > 0, "main had been the only warehouse: its holds take new terms");
    assert_eq!(gw.stock_of(&id, "main").await, (2, 1, 1));
    assert_eq!(gw.stock_of(&id, "north").await, (3, 0, 3));
    assert_eq!(gw.stock_of(&id, "south").await, (4, 0, 4));
}

/// Sets a stock row's `waiting` behind the service's back (what joining a waitlist will
/// write), to see holds beside a queue.
async fn set_waiting(gw: &TestGateway, product: &str, warehouse: &str, waiting: i64) {
    use aws_sdk_dynamodb::types::AttributeValue;
    raw_client()
        .await
        .update_item()
        .table_name(gw.app.store.table())
        .key("pk", AttributeValue::S(format!("P#{product}")))
        .key("sk", AttributeValue::S(format!("STOCK#{warehouse}")))
        .update_expression("SET waiting = :w")
        .expression_attribute_values(":w", AttributeValue::N(waiting.to_string()))
        .send()
        .await
        .expect("update");
}

/// While a warehouse's waitlist asks for units, buyers who did not wait hold only the
/// units beyond those, and a refusal reports that as `available`; a product read shows the
/// queue's units as `waiting`. A queue that grows or shrinks between a hold's read and its
/// write is seen by the write.
#[tokio::test]
async fn holds_beside_a_waitlist_take_only_the_units_beyond_those_it_asks_for() {
    let (gw, product, alice) = shop(5).await;
    set_waiting(&gw, &product, "main", 3).await;
    let r = gw.get(&format!("/api/products/{product}"), None).await;
    let main = &r.body["stock"][0];
    assert_eq!((main["available"].clone(), main["waiting"].clone()), (json!(5), json!(3)), "{}", r.body);

    let hold =
        |q: i64| gw.post("/api/reservations", Some(&alice), json!({"product_id": product, "quantity": q}));
    let short = hold(3).await;
    assert_eq!((short.status, short.code()), (409, "insufficient_stock"), "{}", short.body);
    assert_eq!(short.body["available"], 2, "available beyond the queue");
    assert_eq!(hold(2).await.status, 201);
    let none = hold(1).await;
    assert_eq!((none.status, none.body["available"].clone()), (409, json!(0)), "{}", none.body);
    assert_eq!(gw.stock_of(&product, "main").await, (5, 2, 3), "the queue's 3 untouched");

    // The queue leaves: the next hold sees it gone without anyone telling it.
    set_waiting(&gw, &product, "main", 0).await;
    assert_eq!(hold(3).await.status, 201);
    // A queue larger than what is available leaves nothing to hold.
    let (gw2, other, bob) = shop(2).await;
    set_waiting(&gw2, &other, "main", 7).await;
    let r = gw2.post("/api/reservations", Some(&bob), json!({"product_id": other, "quantity": 1})).await;
    assert_eq!((r.status, r.body["available"].clone()), (409, json!(0)), "{}", r.body);
}
