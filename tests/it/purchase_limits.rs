//! Purchase limits (`max_per_customer`): the units one customer holds plus the units in
//! their orders that are not cancelled never exceed the limit, under any concurrency.

use futures::future::join_all;
use futures::stream::{self, StreamExt};
use serde_json::json;
use stockhold_tests::*;

async fn limited_product(gw: &TestGateway, units: i64, limit: i64) -> String {
    let admin = token("admin-setup", true);
    let body = json!({"sku": unique("LIM"), "name": "Limited", "price_cents": 100, "stock": {"main": units},
                      "max_per_customer": limit});
    let r = gw.post("/api/products", Some(&admin), body).await;
    assert_eq!((r.status, r.body["max_per_customer"].clone()), (201, json!(limit)), "{}", r.body);
    r.body["id"].as_str().expect("id").to_string()
}

async fn hold(gw: &TestGateway, who: &str, product: &str, q: i64) -> Reply {
    gw.post("/api/reservations", Some(who), json!({"product_id": product, "quantity": q})).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_customer_racing_twenty_holds_against_a_limit_of_two_gets_exactly_two_units() {
    let gw = gateway().await;
    let product = limited_product(&gw, 100, 2).await;
    let alice = token(&unique("alice"), false);
    // More than the limit at once is refused even with nothing held yet.
    let r = hold(&gw, &alice, &product, 3).await;
    assert_eq!((r.status, r.code()), (409, "purchase_limit_reached"), "{}", r.body);
    assert_eq!((r.body["limit"].clone(), r.body["remaining"].clone()), (json!(2), json!(2)));

    let race = join_all((0..20).map(|_| hold(&gw, &alice, &product, 1))).await;
    let won = created_ids(&race);
    assert_eq!(won.len(), 2, "exactly the limit");
    for r in race.iter().filter(|r| r.status != 201) {
        assert_eq!(
            (r.code(), r.body["remaining"].clone()),
            ("purchase_limit_reached", json!(0)),
            "{}",
            r.body
        );
    }
    assert_eq!(gw.stock_of(&product, "main").await, (100, 2, 98));

    // Releasing one lets exactly one more through.
    let released = gw.send("DELETE", &format!("/api/reservations/{}", won[0]), Some(&alice), None).await;
    assert_eq!(released.status, 200);
    let again = join_all((0..5).map(|_| hold(&gw, &alice, &product, 1))).await;
    let second = created_ids(&again);
    assert_eq!(second.len(), 1);

    // Ordered units still count; a cancelled order gives them back.
    let order = gw.order(&alice, &[&won[1], &second[0]]).await;
    assert_eq!(order.status, 201, "{}", order.body);
    assert_eq!(hold(&gw, &alice, &product, 1).await.code(), "purchase_limit_reached");
    let o = order.body["id"].as_str().expect("id");
    assert_eq!(gw.set_status(&alice, o, "cancelled").await.status, 200);
    assert_eq!(hold(&gw, &alice, &product, 2).await.status, 201, "the cancelled units are back");
    // Other customers have allowances of their own.
    assert_eq!(hold(&gw, &token(&unique("bob"), false), &product, 2).await.status, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_customers_racing_for_a_hundred_units_with_a_limit_of_two_never_pass_it() {
    let gw = gateway().await;
    let product = limited_product(&gw, 100, 2).await;
    let customers: Vec<String> = (0..50).map(|_| token(&unique("c"), false)).collect();
    // Each customer tries four single units, all customers at once.
    let attempts: Vec<&String> = customers.iter().flat_map(|c| std::iter::repeat_n(c, 4)).collect();
    let results: Vec<(String, Reply)> = stream::iter(attempts)
        .map(|c| async { (c.clone(), hold(&gw, c, &product, 1).await) })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut per_customer = std::collections::HashMap::<String, i64>::new();
    for (c, r) in &results {
        match r.status {
            201 => *per_customer.entry(c.clone()).or_default() += 1,
            _ => assert!(matches!(r.code(), "purchase_limit_reached" | "conflict"), "{}", r.body),
        }
    }
    assert!(per_customer.values().all(|&n| n <= 2), "{per_customer:?}");
    let sold: i64 = per_customer.values().sum();
    assert!(sold <= 100);
    assert_eq!(gw.stock_of(&product, "main").await, (100, sold, 100 - sold));
}

#[tokio::test]
async fn lowering_the_limit_below_what_a_customer_has_refuses_only_their_new_holds() {
    let gw = gateway().await;
    let product = limited_product(&gw, 10, 3).await;
    let alice = token(&unique("alice"), false);
    let a = hold(&gw, &alice, &product, 2).await.body["id"].as_str().expect("id").to_string();
    let admin = token("limit-admin", true);
    let r = gw
        .send(
            "PATCH",
            &format!("/api/products/{product}"),
            Some(&admin),
            Some(json!({"max_per_customer": 1})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Her hold stands; a new one is refused with nothing remaining.
    assert_eq!(gw.get(&format!("/api/reservations/{a}"), Some(&alice)).await.body["status"], "active");
    let r = hold(&gw, &alice, &product, 1).await;
    assert_eq!(
        (r.code(), r.body["remaining"].clone(), r.body["limit"].clone()),
        ("purchase_limit_reached", json!(0), json!(1))
    );
    assert_eq!(gw.order(&alice, &[&a]).await.status, 201, "held units may still be ordered");
    // Without a limit every customer may hold what is there.
    let r = gw
        .send(
            "PATCH",
            &format!("/api/products/{product}"),
            Some(&admin),
            Some(json!({"max_per_customer": null})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(hold(&gw, &alice, &product, 5).await.status, 201);
}
