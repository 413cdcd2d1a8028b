//! Orders: conversion, atomicity, the state machine over HTTP, and races.

use futures::stream::{self, StreamExt};
use serde_json::json;
use std::collections::BTreeMap;
use stockhold_tests::*;

#[tokio::test]
async fn reservations_become_one_order_at_current_prices_and_it_walks_to_delivered() {
    let gw = gateway().await;
    let tee = gw.product(json!({"main": 10})).await;
    let admin = token("root", true);
    let mug = {
        let r = gw
            .post(
                "/api/products",
                Some(&admin),
                json!({"sku": unique("MUG"), "name": "Mug", "price_cents": 850, "stock": {"east": 5}}),
            )
            .await;
        r.body["id"].as_str().expect("id").to_string()
    };
    let user = unique("buyer");
    let t = token(&user, false);
    let a = gw.reserve(&t, &tee, 2).await;
    let b = gw.reserve(&t, &mug, 3).await;
    let o = gw.order(&t, &[&a, &b]).await;
    assert_eq!(o.status, 201, "{}", o.body);
    assert_eq!(
        (
            o.body["user_id"].clone(),
            o.body["status"].clone(),
            o.body["currency"].clone(),
            o.body["total_cents"].clone()
        ),
        (json!(user), json!("pending"), json!("USD"), json!(2 * 1999 + 3 * 850))
    );
    let items = o.body["items"].as_array().expect("items");
    assert_eq!(items[0]["reservation_id"], a.as_str());
    assert_eq!(
        (
            items[0]["quantity"].clone(),
            items[0]["unit_price_cents"].clone(),
            items[0]["line_total_cents"].clone(),
            items[0]["warehouse_id"].clone()
        ),
        (json!(2), json!(1999), json!(3998), json!("main"))
    );
    assert_eq!(
        (items[1]["sku"].as_str().map(|s| s.starts_with("MUG")), items[1]["name"].clone()),
        (Some(true), json!("Mug"))
    );
    // Sold units leave on_hand and reserved; available is untouched.
    assert_eq!(gw.stock_of(&tee, "main").await, (8, 0, 8));
    assert_eq!(gw.stock_of(&mug, "east").await, (2, 0, 2));
    assert_eq!(gw.get(&format!("/api/reservations/{a}"), Some(&t)).await.body["status"], "converted");
    let id = o.body["id"].as_str().expect("id").to_string();
    assert_eq!(gw.get(&format!("/api/orders/{id}"), Some(&t)).await.body, o.body);
    assert_eq!(gw.get(&format!("/api/orders/{id}"), Some(&token(&unique("other"), false))).await.status, 404);
    assert_eq!(gw.get(&format!("/api/orders/{id}"), Some(&admin)).await.status, 200);

    for status in ["confirmed", "processing", "shipped", "delivered"] {
        let r = gw.set_status(&admin, &id, status).await;
        assert_eq!((r.status, r.body["status"].clone()), (200, json!(status)), "{}", r.body);
    }
    let r = gw.set_status(&admin, &id, "cancelled").await;
    assert_eq!((r.status, r.code(), r.body["allowed"].clone()), (409, "invalid_transition", json!([])));
    assert_eq!(gw.stock_of(&tee, "main").await, (8, 0, 8));
}

#[tokio::test]
async fn one_bad_reservation_converts_nothing_and_the_good_ones_stay_active() {
    let (gw, p, t) = shop(20).await;
    let good = gw.reserve(&t, &p, 1).await;
    let released = gw.reserve(&t, &p, 1).await;
    gw.send("DELETE", &format!("/api/reservations/{released}"), Some(&t), None).await;
    let converted = gw.reserve(&t, &p, 1).await;
    assert_eq!(gw.order(&t, &[&converted]).await.status, 201);
    let foreign = gw.reserve(&token(&unique("other"), false), &p, 1).await;
    let before = gw.stock_of(&p, "main").await;

    for (bad, status, code) in [
        (foreign.as_str(), 404, "not_found"),
        ("01NOPE", 404, "not_found"),
        (released.as_str(), 409, "reservation_not_active"),
        (converted.as_str(), 409, "reservation_not_active"),
    ] {
        let r = gw.order(&t, &[&good, bad]).await;
        assert_eq!((r.status, r.code()), (status, code), "with {bad}");
    }
    assert_eq!(gw.get(&format!("/api/reservations/{good}"), Some(&t)).await.body["status"], "active");
    assert_eq!(gw.stock_of(&p, "main").await, before);
}

#[tokio::test]
async fn an_expired_reservation_cannot_be_converted_even_before_any_job_runs() {
    let (_lock, clock, gw, p) = in_the_past(5).await;
    let t = token(&unique("u"), false);
    let a = gw.reserve(&t, &p, 1).await;
    let b = gw.reserve(&t, &p, 1).await;
    clock.advance(chrono::Duration::seconds(600));
    let r = gw.order(&t, &[&a, &b]).await;
    assert_eq!((r.status, r.code()), (409, "reservation_not_active"));
    assert_eq!(gw.stock_of(&p, "main").await, (5, 2, 3));
}

#[tokio::test]
async fn bad_order_requests_are_422() {
    let gw = gateway().await;
    let usd = gw.product(json!({"main": 5})).await;
    let admin = token("root", true);
    let eur = gw
        .post("/api/products", Some(&admin), json!({"sku": unique("EUR"), "name": "n", "price_cents": 100, "currency": "EUR", "stock": {"main": 5}}))
        .await
        .body["id"]
        .as_str()
        .expect("id")
        .to_string();
    let t = token(&unique("u"), false);
    let a = gw.reserve(&t, &usd, 1).await;
    let b = gw.reserve(&t, &eur, 1).await;
    let r = gw.order(&t, &[&a, &b]).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "mixed currencies");
    let r = gw.order(&t, &[&a, &a]).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "duplicates");
    let r = gw.order(&t, &[]).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "empty");
    let r = gw.post("/api/orders", Some(&t), json!({"reservation_ids": [a], "note": 1})).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "unknown field");
    assert_eq!(gw.get(&format!("/api/reservations/{a}"), Some(&t)).await.body["status"], "active");
}

/// An order of its own in `status`, made by walking the table as an admin.
async fn order_in(gw: &TestGateway, owner: &str, product: &str, status: &str) -> String {
    let t = token(owner, false);
    let r = gw.reserve(&t, product, 1).await;
    let o = gw.order(&t, &[&r]).await;
    assert_eq!(o.status, 201, "{}", o.body);
    let id = o.body["id"].as_str().expect("id").to_string();
    let path: &[&str] = match status {
        "pending" => &[],
        "confirmed" => &["confirmed"],
        "processing" => &["confirmed", "processing"],
        "shipped" => &["confirmed", "processing", "shipped"],
        "delivered" => &["confirmed", "processing", "shipped", "delivered"],
        "cancelled" => &["cancelled"],
        other => panic!("{other}"),
    };
    let admin = token("root", true);
    for s in path {
        assert_eq!(gw.set_status(&admin, &id, s).await.status, 200);
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_pair_for_admin_and_owner_gets_the_contracts_answer() {
    let gw = gateway().await;
    let p = gw.product(json!({"main": 500})).await;
    let owner = unique("owner");
    let statuses = ["pending", "confirmed", "processing", "shipped", "delivered", "cancelled"];
    let table: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("pending", vec!["cancelled", "confirmed"]),
        ("confirmed", vec!["cancelled", "processing"]),
        ("processing", vec!["shipped"]),
        ("shipped", vec!["delivered"]),
        ("delivered", vec![]),
        ("cancelled", vec![]),
    ]);
    let cases: Vec<(&str, &str, bool)> = statuses
        .iter()
        .flat_map(|f| statuses.iter().flat_map(move |t| [(*f, *t, true), (*f, *t, false)]))
        .collect();
    let failures: Vec<String> = stream::iter(cases)
        .map(|(from, to, admin)| {
            let (gw, p, owner, table) = (&gw, &p, &owner, &table);
            async move {
                let id = order_in(gw, owner, p, from).await;
                let who = if admin { token("root", true) } else { token(owner, false) };
                let r = gw.set_status(&who, &id, to).await;
                let in_table = table[from].contains(&to);
                let expected: (u16, &str) = match (admin, from, to) {
                    (true, ..) if in_table => (200, ""),
                    (true, ..) => (409, "invalid_transition"),
                    (false, "pending", "cancelled") => (200, ""),
                    (false, _, "cancelled") if in_table => (403, "forbidden"),
                    (false, _, "cancelled") => (409, "invalid_transition"),
                    (false, ..) => (403, "forbidden"),
                };
                let got = (r.status, r.code());
                let allowed_ok = r.status != 409 || r.body["allowed"] == json!(table[from]);
                let status_ok = r.status != 200 || r.body["status"] == to;
                (got != expected || !allowed_ok || !status_ok).then(|| {
                    format!(
                        "{} {from}->{to}: got {got:?} {} want {expected:?}",
                        if admin { "admin" } else { "owner" },
                        r.body
                    )
                })
            }
        })
        .buffer_unordered(6)
        .filter_map(|f| async move { f })
        .collect()
        .await;
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn other_users_get_404_and_customers_asking_for_admin_moves_get_403_first() {
    let gw = gateway().await;
    let p = gw.product(json!({"main": 5})).await;
    let owner = unique("owner");
    let id = order_in(&gw, &owner, &p, "pending").await;
    let stranger = token(&unique("stranger"), false);
    let r = gw.set_status(&stranger, &id, "cancelled").await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = gw.set_status(&stranger, &id, "confirmed").await;
    assert_eq!((r.status, r.code()), (403, "forbidden"), "role before resource");
    let r = gw.set_status(&token(&owner, false), &id, "lost").await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"));
    let r = gw.set_status(&token("root", true), "01NOPE", "confirmed").await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    assert_eq!(
        gw.get(&format!("/api/orders/{id}"), Some(&token(&owner, false))).await.body["status"],
        "pending"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_20_cancels_race_one_wins_and_units_come_back_once() {
    let (gw, p, t) = shop(10).await;
    let r1 = gw.reserve(&t, &p, 3).await;
    let r2 = gw.reserve(&t, &p, 2).await;
    let id = gw.order(&t, &[&r1, &r2]).await.body["id"].as_str().expect("id").to_string();
    assert_eq!(gw.stock_of(&p, "main").await, (5, 0, 5));
    let admin = token("root", true);
    let replies = futures::future::join_all((0..20).map(|i| {
        let who = if i % 2 == 0 { t.clone() } else { admin.clone() };
        let (gw, id) = (&gw, &id);
        async move { gw.set_status(&who, id, "cancelled").await }
    }))
    .await;
    let wins = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(wins, 1);
    for r in replies.iter().filter(|r| r.status != 200) {
        assert_eq!((r.status, r.code()), (409, "invalid_transition"), "{}", r.body);
    }
    assert_eq!(gw.stock_of(&p, "main").await, (10, 0, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_20_conversions_of_the_same_reservations_race_one_order_is_made() {
    let (gw, p, t) = shop(10).await;
    let a = gw.reserve(&t, &p, 2).await;
    let b = gw.reserve(&t, &p, 1).await;
    let ids = [a.as_str(), b.as_str()];
    let replies = futures::future::join_all((0..20).map(|_| gw.order(&t, &ids))).await;
    let made: Vec<_> = replies.iter().filter(|r| r.status == 201).collect();
    assert_eq!(made.len(), 1);
    for r in replies.iter().filter(|r| r.status != 201) {
        assert_eq!((r.status, r.code()), (409, "reservation_not_active"), "{}", r.body);
    }
    assert_eq!(gw.stock_of(&p, "main").await, (7, 0, 7));
}

#[tokio::test]
async fn an_order_retried_with_its_idempotency_key_is_returned_not_remade() {
    let (gw, p, t) = shop(10).await;
    let a = gw.reserve(&t, &p, 2).await;
    let send = || async {
        let resp = gw
            .http
            .post(format!("{}/api/orders", gw.url))
            .bearer_auth(&t)
            .header("idempotency-key", "checkout-42")
            .json(&json!({"reservation_ids": [a]}))
            .send()
            .await
            .expect("send");
        into_reply(resp).await
    };
    let first = send().await;
    let again = send().await;
    assert_eq!((first.status, again.status), (201, 201));
    assert_eq!(first.body, again.body);
    assert_eq!(gw.stock_of(&p, "main").await, (8, 0, 8));
}

/// A cancellation or a return puts units back only within a row's maximum on hand
/// (1,000,000,000): past it, 409 `conflict` and nothing changes.
#[tokio::test]
async fn units_put_back_never_take_a_warehouse_past_its_maximum() {
    let (gw, product, buyer) = shop(1_000_000_000).await;
    let admin = token("admin-full", true);
    let (a, b) = (gw.reserve(&buyer, &product, 1).await, gw.reserve(&buyer, &product, 1).await);
    let pending = gw.order(&buyer, &[&a]).await.body["id"].as_str().expect("id").to_string();
    let delivered = gw.order(&buyer, &[&b]).await.body["id"].as_str().expect("id").to_string();
    for status in ["confirmed", "processing", "shipped", "delivered"] {
        assert_eq!(gw.set_status(&admin, &delivered, status).await.status, 200);
    }
    let r = gw
        .post(
            &format!("/api/products/{product}/stock"),
            Some(&admin),
            json!({"warehouse_id": "main", "delta": 2}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(gw.stock_of(&product, "main").await, (1_000_000_000, 0, 1_000_000_000));
    let cancel = gw.set_status(&buyer, &pending, "cancelled").await;
    assert_eq!((cancel.status, cancel.code()), (409, "conflict"), "{}", cancel.body);
    let back = json!({"items": [{"product_id": product, "quantity": 1, "restock": true}]});
    let ret = gw.post(&format!("/api/orders/{delivered}/returns"), Some(&admin), back).await;
    assert_eq!((ret.status, ret.code()), (409, "conflict"), "{}", ret.body);
    assert_eq!(gw.stock_of(&product, "main").await, (1_000_000_000, 0, 1_000_000_000), "nothing changed");
    let r = gw.get(&format!("/api/orders/{pending}"), Some(&buyer)).await;
    assert_eq!(r.body["status"], "pending");
}
