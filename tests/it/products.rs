//! Product routes: create, read, list, adjust stock.

use serde_json::{json, Value};
use std::collections::HashSet;
use stockhold_tests::*;

#[tokio::test]
async fn when_an_admin_creates_a_product_it_reads_back_with_stock_sorted_by_warehouse() {
    let gw = gateway().await;
    let sku = unique("TEE");
    let r = gw
        .post(
            "/api/products",
            Some(&token("root", true)),
            json!({"sku": sku, "name": "Red tee M", "price_cents": 1999, "currency": "EUR", "stock": {"main": 100, "east": 20}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().expect("id");
    let got = gw.get(&format!("/api/products/{id}"), None).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, r.body);
    assert_eq!(got.body["sku"], sku.as_str());
    assert_eq!(got.body["currency"], "EUR");
    assert_eq!(got.body["available"], 120);
    assert_eq!(
        got.body["stock"],
        json!([{"warehouse_id": "east", "on_hand": 20, "reserved": 0, "available": 20, "incoming": 0, "waiting": 0},
               {"warehouse_id": "main", "on_hand": 100, "reserved": 0, "available": 100, "incoming": 0, "waiting": 0}])
    );
    let created = got.body["created_at"].as_str().expect("time");
    assert!(created.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(created).is_ok());
}

#[tokio::test]
async fn currency_defaults_to_usd_and_stock_to_none() {
    let gw = gateway().await;
    let r = gw
        .post(
            "/api/products",
            Some(&token("root", true)),
            json!({"sku": unique("S"), "name": "n", "price_cents": 0}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        (r.body["currency"].clone(), r.body["stock"].clone(), r.body["available"].clone()),
        (json!("USD"), json!([]), json!(0))
    );
}

#[tokio::test]
async fn invalid_product_bodies_get_422_naming_each_field_and_create_nothing() {
    let gw = gateway().await;
    let admin = token("root", true);
    let many: serde_json::Map<String, Value> = (0..51).map(|i| (format!("w{i}"), json!(1))).collect();
    let cases = [
        (json!({"sku": "has space", "name": "n", "price_cents": 1}), "sku"),
        (json!({"sku": "x".repeat(65), "name": "n", "price_cents": 1}), "sku"),
        (json!({"sku": "A", "name": "", "price_cents": 1}), "name"),
        (json!({"sku": "A", "name": "n".repeat(201), "price_cents": 1}), "name"),
        (json!({"sku": "A", "name": "n", "price_cents": -1}), "price_cents"),
        (json!({"sku": "A", "name": "n", "price_cents": 1_000_000_001}), "price_cents"),
        (json!({"sku": "A", "name": "n", "price_cents": 19.99}), "price_cents"),
        (json!({"sku": "A", "name": "n", "price_cents": "1999"}), "price_cents"),
        (json!({"sku": "A", "name": "n", "price_cents": 1, "currency": "usd"}), "currency"),
        (json!({"sku": "A", "name": "n", "price_cents": 1, "stock": {"Main": 1}}), "stock.Main"),
        (json!({"sku": "A", "name": "n", "price_cents": 1, "stock": {"main": -1}}), "stock.main"),
        (json!({"sku": "A", "name": "n", "price_cents": 1, "stock": {"main": 1_000_000_001}}), "stock.main"),
        (json!({"sku": "A", "name": "n", "price_cents": 1, "stock": many}), "stock"),
        (json!({"sku": "A", "name": "n", "price_cents": 1, "stock": [1]}), "stock"),
        (json!({"sku": "A", "name": "n", "price_cents": 1, "colour": "red"}), "colour"),
        (json!({"name": "n", "price_cents": 1}), "sku"),
        // The contract gives these no null: a null is refused, not read as absent.
        (json!({"sku": "A", "name": "n", "price_cents": 1, "stock_buckets": null}), "stock_buckets"),
        (json!({"sku": "A", "name": "n", "price_cents": 1, "currency": null}), "currency"),
        (json!({"sku": "A", "name": "n", "price_cents": 1, "stock": null}), "stock"),
    ];
    for (body, field) in cases {
        let r = gw.post("/api/products", Some(&admin), body.clone()).await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{body}");
        let fields: Vec<&str> =
            r.body["errors"].as_array().expect("errors").iter().filter_map(|e| e["field"].as_str()).collect();
        assert!(fields.contains(&field), "{body} -> {fields:?}");
    }
}

#[tokio::test]
async fn a_second_product_with_the_same_sku_is_a_conflict() {
    let gw = gateway().await;
    let admin = token("root", true);
    let sku = unique("DUP");
    let body = json!({"sku": sku, "name": "n", "price_cents": 1, "stock": {"main": 1}});
    assert_eq!(gw.post("/api/products", Some(&admin), body.clone()).await.status, 201);
    let r = gw.post("/api/products", Some(&admin), body).await;
    assert_eq!((r.status, r.code()), (409, "conflict"));
}

#[tokio::test]
async fn unknown_products_are_404() {
    let gw = gateway().await;
    let r = gw.get("/api/products/01NOPE", None).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = gw
        .post(
            "/api/products/01NOPE/stock",
            Some(&token("root", true)),
            json!({"warehouse_id": "main", "delta": 5}),
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
}

#[tokio::test]
async fn stock_adjustments_add_open_remove_and_refuse_what_would_break_the_invariant() {
    let gw = gateway().await;
    let admin = token("root", true);
    let id = gw.product(json!({"main": 10})).await;
    let path = format!("/api/products/{id}/stock");
    let r = gw.post(&path, Some(&admin), json!({"warehouse_id": "west", "delta": 7})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["stock"][1],
        json!({"warehouse_id": "west", "on_hand": 7, "reserved": 0, "available": 7, "incoming": 0, "waiting": 0})
    );
    assert_eq!(r.body["available"], 17);
    // Hold 4 of main; only 6 may be removed.
    let r = gw
        .post(
            "/api/reservations",
            Some(&token(&unique("u"), false)),
            json!({"product_id": id, "quantity": 4, "warehouse_id": "main"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = gw.post(&path, Some(&admin), json!({"warehouse_id": "main", "delta": -7})).await;
    assert_eq!((r.status, r.code(), r.body["available"].clone()), (409, "insufficient_stock", json!(6)));
    let r = gw.post(&path, Some(&admin), json!({"warehouse_id": "main", "delta": -6})).await;
    assert_eq!(r.status, 200);
    assert_eq!(gw.stock_of(&id, "main").await, (4, 4, 0));
    let r = gw.post(&path, Some(&admin), json!({"warehouse_id": "north", "delta": -1})).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = gw.post(&path, Some(&admin), json!({"warehouse_id": "west", "delta": 1_000_000_000})).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"));
    assert_eq!(gw.stock_of(&id, "west").await, (7, 0, 7));
    for bad in [
        json!({"warehouse_id": "west", "delta": 0}),
        json!({"warehouse_id": "west", "delta": 1.5}),
        json!({"warehouse_id": "West", "delta": 1}),
        json!({"delta": 1}),
    ] {
        let r = gw.post(&path, Some(&admin), bad.clone()).await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{bad}");
    }
    let r = gw.post(&path, Some(&token("cust", false)), json!({"warehouse_id": "west", "delta": 1})).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
}

#[tokio::test]
async fn walking_the_product_list_visits_each_product_once_oldest_first_with_full_pages() {
    let gw = gateway().await;
    let mut mine = Vec::new();
    for _ in 0..5 {
        mine.push(gw.product(json!({"main": 1})).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/products?limit=2&cursor={c}"),
            None => "/api/products?limit=2".to_string(),
        };
        let r = gw.get(&path, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let items = r.body["items"].as_array().expect("items");
        seen.extend(items.iter().map(|p| p["id"].as_str().expect("id").to_string()));
        match r.body["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(items.len(), 2, "every page but the last is full");
                cursor = Some(c.to_string());
            }
            None => break,
        }
    }
    let unique_ids: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique_ids.len(), seen.len(), "no product twice");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "oldest first");
    let positions: Vec<usize> =
        mine.iter().map(|id| seen.iter().position(|s| s == id).expect("listed")).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn bad_list_parameters_are_422_and_bad_cursors_400() {
    let gw = gateway().await;
    for q in ["limit=0", "limit=101", "limit=x", "sort=newest", "limit=1&limit=2"] {
        let r = gw.get(&format!("/api/products?{q}"), None).await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{q}");
    }
    for c in ["garbage", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ""] {
        let r = gw.get(&format!("/api/products?cursor={c}"), None).await;
        assert_eq!((r.status, r.code()), (400, "invalid_cursor"), "{c}");
    }
}

#[tokio::test]
async fn a_creation_may_give_null_where_the_contract_allows_it_and_gets_the_defaults() {
    let gw = gateway().await;
    let sku = unique("NULLS");
    let body = json!({"sku": sku, "name": "n", "price_cents": 1, "active": null, "max_per_customer": null});
    let r = gw.post("/api/products", Some(&token("root", true)), body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!((r.body["active"].clone(), r.body["max_per_customer"].clone()), (json!(true), json!(null)));
}

/// `low_stock_threshold`: set at creation and by PATCH, null clears it, out of range is
/// 422 and changes nothing, and a change of it alone keeps the `ETag` (it is a setting
/// of the product's events, not one of the fields the tag is made of).
#[tokio::test]
async fn a_low_stock_threshold_is_set_changed_and_cleared_without_moving_the_etag() {
    let gw = gateway().await;
    let admin = token("admin-1", true);
    let body = json!({"sku": unique("LOW"), "name": "Low", "price_cents": 100,
                      "stock": {"main": 10}, "low_stock_threshold": 3});
    let created = gw.post("/api/products", Some(&admin), body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["low_stock_threshold"], 3);
    let id = created.body["id"].as_str().expect("id").to_string();
    let path = format!("/api/products/{id}");
    let tag = gw.get(&path, None).await.headers["etag"].clone();

    for bad in [json!(-1), json!(1_000_000_001), json!("3"), json!(2.5)] {
        let r = gw.send("PATCH", &path, Some(&admin), Some(json!({"low_stock_threshold": bad}))).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
    }
    let changed = gw.send("PATCH", &path, Some(&admin), Some(json!({"low_stock_threshold": 5}))).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["low_stock_threshold"], 5);
    assert_eq!(changed.headers["etag"], tag, "the tag leaves the threshold out");
    let cleared = gw.send("PATCH", &path, Some(&admin), Some(json!({"low_stock_threshold": null}))).await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert_eq!(cleared.body["low_stock_threshold"], Value::Null);
    let read = gw.get(&path, None).await;
    assert_eq!(read.body["low_stock_threshold"], Value::Null);
    assert_eq!(read.headers["etag"], tag);
    let plain = gw.product(json!({"main": 1})).await;
    let plain = gw.get(&format!("/api/products/{plain}"), None).await;
    assert_eq!(plain.body["low_stock_threshold"], Value::Null, "null by default");
}
