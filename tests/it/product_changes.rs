//! Product changes: `PATCH /api/products/{id}` with `ETag`/`If-Match`, archiving
//! (`active: false`) against racing holds, and orders that carry one consistent price.

use futures::future::join_all;
use serde_json::json;
use stockhold_tests::*;

fn etag(r: &Reply) -> String {
    r.headers.get("etag").and_then(|v| v.to_str().ok()).expect("ETag").to_string()
}

/// `PATCH /api/products/{id}` with an optional `If-Match`.
async fn patch(gw: &TestGateway, id: &str, body: serde_json::Value, if_match: Option<&str>) -> Reply {
    let admin = token("patch-admin", true);
    let mut req = gw.http.patch(format!("{}/api/products/{id}", gw.url)).bearer_auth(admin).json(&body);
    if let Some(tag) = if_match {
        req = req.header("if-match", tag);
    }
    into_reply(req.send().await.expect("send")).await
}

#[tokio::test]
async fn a_change_needs_a_matching_etag_and_a_change_that_changes_nothing_keeps_it() {
    let gw = gateway().await;
    let id = gw.product(json!({"main": 5})).await;
    let read = gw.get(&format!("/api/products/{id}"), None).await;
    let tag = etag(&read);
    assert_eq!(read.body["active"], true);
    assert_eq!(read.body["max_per_customer"], serde_json::Value::Null);

    // Stock movements do not change the tag.
    let alice = token(&unique("alice"), false);
    gw.reserve(&alice, &id, 1).await;
    assert_eq!(etag(&gw.get(&format!("/api/products/{id}"), None).await), tag);

    let r = patch(&gw, &id, json!({"price_cents": 1499, "name": "Cheaper"}), Some(&tag)).await;
    assert_eq!((r.status, r.body["price_cents"].clone()), (200, json!(1499)), "{}", r.body);
    let new_tag = etag(&r);
    assert_ne!(new_tag, tag);
    // The old tag no longer matches: 412 and nothing changes.
    let r = patch(&gw, &id, json!({"price_cents": 1}), Some(&tag)).await;
    assert_eq!((r.status, r.code()), (412, "precondition_failed"), "{}", r.body);
    assert_eq!(gw.get(&format!("/api/products/{id}"), None).await.body["price_cents"], 1499);
    // A list with the current tag, `*`, and no If-Match all match; a weak tag does not.
    let weak = format!("W/{new_tag}");
    assert_eq!(patch(&gw, &id, json!({"price_cents": 1499}), Some(&weak)).await.status, 412);
    let r = patch(&gw, &id, json!({"price_cents": 1499}), Some(&format!("\"999\", {new_tag}"))).await;
    assert_eq!((r.status, etag(&r)), (200, new_tag.clone()), "a change that changes nothing keeps the tag");
    assert_eq!(patch(&gw, &id, json!({"max_per_customer": 2}), Some("*")).await.body["max_per_customer"], 2);
    assert_eq!(
        patch(&gw, &id, json!({"max_per_customer": null}), None).await.body["max_per_customer"],
        json!(null)
    );

    // Only the product's own changeable fields, and at least one.
    for (body, field) in [(json!({"sku": "X"}), "sku"), (json!({"stock": {}}), "stock"), (json!({}), "body")]
    {
        let r = patch(&gw, &id, body, None).await;
        assert_eq!((r.status, r.body["errors"][0]["field"].clone()), (422, json!(field)), "{}", r.body);
    }
}

#[tokio::test]
async fn when_two_admins_patch_with_the_same_if_match_one_wins_and_the_other_gets_412() {
    let gw = gateway().await;
    let id = gw.product(json!({"main": 5})).await;
    let tag = etag(&gw.get(&format!("/api/products/{id}"), None).await);
    let (a, b) = tokio::join!(
        patch(&gw, &id, json!({"name": "From A"}), Some(&tag)),
        patch(&gw, &id, json!({"name": "From B"}), Some(&tag)),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412], "{} / {}", a.body, b.body);
    let winner = if a.status == 200 { "From A" } else { "From B" };
    assert_eq!(gw.get(&format!("/api/products/{id}"), None).await.body["name"], winner);
}

#[tokio::test]
async fn an_archived_product_takes_no_new_holds_but_its_holds_can_still_be_released_or_ordered() {
    let gw = gateway().await;
    // A bucketed one too: its terms reach every bucket's row.
    for k in [1, 4] {
        let id = gw.bucketed_product(json!({"main": 40}), k).await;
        let alice = token(&unique("alice"), false);
        let kept = gw.reserve(&alice, &id, 1).await;
        let released = gw.reserve(&alice, &id, 1).await;
        // Holds racing the archiving: each either applied before it or is refused.
        let body = json!({"product_id": id, "quantity": 1});
        let holds = join_all((0..12).map(|_| gw.post("/api/reservations", Some(&alice), body.clone())));
        let (holds, archived) = tokio::join!(holds, patch(&gw, &id, json!({"active": false}), None));
        assert_eq!(
            (archived.status, archived.body["active"].clone()),
            (200, json!(false)),
            "{}",
            archived.body
        );
        let won = holds.iter().filter(|r| r.status == 201).count() as i64;
        for r in holds.iter().filter(|r| r.status != 201) {
            assert_eq!((r.status, r.code()), (409, "product_inactive"), "{}", r.body);
        }
        // After it, every new hold is refused, named or picked warehouse alike.
        let r = gw.post("/api/reservations", Some(&alice), body.clone()).await;
        assert_eq!(r.code(), "product_inactive", "k={k}: {}", r.body);
        let named = json!({"product_id": id, "quantity": 1, "warehouse_id": "main"});
        assert_eq!(gw.post("/api/reservations", Some(&alice), named).await.code(), "product_inactive");
        assert_eq!(gw.stock_of(&id, "main").await, (40, 2 + won, 38 - won), "k={k}");
        // Existing holds stay usable: released, or ordered at the current price.
        let r = gw.send("DELETE", &format!("/api/reservations/{released}"), Some(&alice), None).await;
        assert_eq!(r.status, 200);
        let r = gw.order(&alice, &[&kept]).await;
        assert_eq!(r.status, 201, "{}", r.body);
        // Reactivated, it sells again, named or picked warehouse alike (the reservation
        // function's memory of the archived terms does not outlive them).
        assert_eq!(patch(&gw, &id, json!({"active": true}), None).await.status, 200);
        gw.reserve(&alice, &id, 1).await;
        let named = json!({"product_id": id, "quantity": 1, "warehouse_id": "main"});
        let r = gw.post("/api/reservations", Some(&alice), named).await;
        assert_eq!(r.status, 201, "k={k}: {}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_converted_while_prices_change_each_carry_a_price_that_was_current() {
    let gw = &gateway().await;
    let a = gw.product(json!({"main": 50})).await;
    let b = gw.product(json!({"main": 50})).await;
    let buyers: Vec<String> = (0..8).map(|_| token(&unique("buyer"), false)).collect();
    let mut carts = Vec::new();
    for t in &buyers {
        carts.push((t.clone(), gw.reserve(t, &a, 1).await, gw.reserve(t, &b, 1).await));
    }
    // Prices move step by step while the carts are ordered.
    let repricing = async {
        for n in 1..=6 {
            let price = 1000 + 10 * n;
            let tag_a = etag(&gw.get(&format!("/api/products/{a}"), None).await);
            let tag_b = etag(&gw.get(&format!("/api/products/{b}"), None).await);
            assert_eq!(patch(gw, &a, json!({"price_cents": price}), Some(&tag_a)).await.status, 200);
            assert_eq!(patch(gw, &b, json!({"price_cents": price}), Some(&tag_b)).await.status, 200);
        }
    };
    let orders =
        join_all(carts.iter().map(|(t, x, y)| async move { gw.order(t, &[x.as_str(), y.as_str()]).await }));
    let ((), orders) = tokio::join!(repricing, orders);
    let prices: Vec<i64> = std::iter::once(1999).chain((1..=6).map(|n| 1000 + 10 * n)).collect();
    let mut placed = Vec::new();
    for (r, (t, x, y)) in orders.into_iter().zip(&carts) {
        // An order that kept meeting new prices gives up with 409 conflict, having
        // changed nothing; its retry goes through.
        let r = match r.status {
            409 => {
                assert_eq!(r.code(), "conflict", "{}", r.body);
                gw.order(t, &[x.as_str(), y.as_str()]).await
            }
            _ => r,
        };
        placed.push(r);
    }
    for r in &placed {
        assert_eq!(r.status, 201, "{}", r.body);
        for line in r.body["items"].as_array().expect("items") {
            let p = line["unit_price_cents"].as_i64().expect("price");
            assert!(prices.contains(&p), "a price that was never set: {p}");
        }
        let total: i64 = r.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|l| l["line_total_cents"].as_i64().unwrap_or(0))
            .sum();
        assert_eq!(r.body["total_cents"].as_i64(), Some(total));
    }
}
