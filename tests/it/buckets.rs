//! Hot items: a product whose stock is split over buckets (`stock_buckets` > 1) reads,
//! reserves, sells, restocks and adjusts like any other, never oversells, and never
//! refuses a buyer while the buckets together still have the units.

use futures::future::join_all;
use serde_json::{json, Value};
use shared::domain::stock::Units as Bucket;
use shared::domain::stock::WarehouseId;
use stockhold_tests::*;

async fn buckets(gw: &TestGateway, product: &str, warehouse: &str, k: usize) -> Vec<Bucket> {
    let w = WarehouseId::parse(warehouse).expect("w");
    let found = gw.app.store.stock.buckets(product, &w, k).await.expect("read buckets");
    let found = found.expect("rows");
    for b in &found {
        assert!(b.on_hand == b.reserved + b.available && b.reserved >= 0 && b.available >= 0, "{found:?}");
    }
    found
}

fn on_hand(bs: &[Bucket]) -> Vec<i64> {
    bs.iter().map(|b| b.on_hand).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucketed_product_splits_its_stock_evenly_and_reads_as_the_sums() {
    let gw = gateway().await;
    let id = gw.bucketed_product(json!({"main": 10, "east": 3}), 4).await;
    assert_eq!(on_hand(&buckets(&gw, &id, "main", 4).await), [3, 3, 2, 2]);
    assert_eq!(on_hand(&buckets(&gw, &id, "east", 4).await), [1, 1, 1, 0]);
    let r = gw.get(&format!("/api/products/{id}"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["available"], 13);
    assert_eq!(r.body["stock"].as_array().map(Vec::len), Some(2), "{}", r.body);
    assert_eq!(gw.stock_of(&id, "main").await, (10, 0, 10));
    assert_eq!(gw.stock_of(&id, "east").await, (3, 0, 3));
    let plain = gw.product(json!({"main": 1})).await;
    assert_eq!(gw.get(&format!("/api/products/{plain}"), None).await.body["stock_buckets"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_buyers_race_for_a_bucketed_item_none_is_oversold_and_no_unit_is_stranded() {
    let gw = gateway().await;
    let id = gw.bucketed_product(json!({"main": 30}), 4).await;
    let run = unique("hot");
    let replies = join_all((0..90).map(|i| {
        let gw = &gw;
        let t = token(&format!("{run}-{i}"), false);
        // Half name the warehouse: no re-pick of the warehouse hides a bucket's refusal.
        let body = if i % 2 == 0 {
            json!({"product_id": id, "quantity": 1 + i % 2})
        } else {
            json!({"product_id": id, "quantity": 1 + i % 2, "warehouse_id": "main"})
        };
        async move { gw.post("/api/reservations", Some(&t), body).await }
    }))
    .await;
    let mut held = 0;
    let mut refused = false;
    for (i, r) in replies.iter().enumerate() {
        match (r.status, r.code()) {
            (201, _) => held += 1 + i as i64 % 2,
            (409, "insufficient_stock") => refused = true,
            (409, "conflict") => {}
            (s, _) => panic!("unexpected {s}: {}", r.body),
        }
    }
    assert!(held <= 30);
    assert_eq!(gw.stock_of(&id, "main").await, (30, held, 30 - held));
    if refused {
        // A refusal means every bucket together was short of 2 units at that moment, and
        // units only left after it.
        assert!(30 - held <= 1, "refused while {} units were available", 30 - held);
    }
    // Whatever the race left is still within reach, one unit at a time, to the last.
    let buyer = token(&unique("late"), false);
    let one = json!({"product_id": id, "quantity": 1, "warehouse_id": "main"});
    for left in (0..30 - held).rev() {
        let r = gw.post("/api/reservations", Some(&buyer), one.clone()).await;
        assert_eq!(r.status, 201, "{left} more were left: {}", r.body);
    }
    let last = gw.post("/api/reservations", Some(&buyer), one).await;
    assert_eq!((last.status, last.code()), (409, "insufficient_stock"), "{}", last.body);
    assert_eq!(last.body["available"], 0);
    let bs = buckets(&gw, &id, "main", 4).await;
    assert_eq!(bs.iter().map(|b| b.reserved).sum::<i64>(), 30, "{bs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_unit_of_a_bucketed_item_can_be_bought_whatever_bucket_a_buyer_starts_at() {
    let gw = gateway().await;
    // One unit per bucket: most buyers' home buckets are empty by the time they come.
    let id = gw.bucketed_product(json!({"main": 8}), 8).await;
    let buyer = token(&unique("drain"), false);
    let one = json!({"product_id": id, "quantity": 1, "warehouse_id": "main"});
    for left in (0..8).rev() {
        let r = gw.post("/api/reservations", Some(&buyer), one.clone()).await;
        assert_eq!(r.status, 201, "refused with {} left: {}", left + 1, r.body);
    }
    let r = gw.post("/api/reservations", Some(&buyer), one).await;
    assert_eq!((r.status, r.code()), (409, "insufficient_stock"), "{}", r.body);
    assert_eq!(r.body["available"], 0);
    assert_eq!(gw.stock_of(&id, "main").await, (8, 8, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quantity_spread_over_buckets_is_gathered_into_one_and_released_back_there() {
    let gw = gateway().await;
    let id = gw.bucketed_product(json!({"main": 4}), 4).await;
    assert_eq!(on_hand(&buckets(&gw, &id, "main", 4).await), [1, 1, 1, 1]);
    let user = token(&unique("gather"), false);
    let rid = gw.reserve(&user, &id, 4).await;
    assert_eq!(gw.stock_of(&id, "main").await, (4, 4, 0));
    let hold = gw.app.store.reservations.get(&rid).await.expect("read").expect("hold");
    let bs = buckets(&gw, &id, "main", 4).await;
    assert_eq!(bs[hold.bucket], Bucket { on_hand: 4, reserved: 4, available: 0 }, "{bs:?}");
    assert_eq!(bs.iter().map(|b| b.on_hand).sum::<i64>(), 4);

    let r = gw.send("DELETE", &format!("/api/reservations/{rid}"), Some(&user), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        buckets(&gw, &id, "main", 4).await[hold.bucket],
        Bucket { on_hand: 4, reserved: 0, available: 4 }
    );
    let r = gw.post("/api/reservations", Some(&user), json!({"product_id": id, "quantity": 5})).await;
    assert_eq!((r.status, r.code()), (409, "insufficient_stock"));
    assert_eq!(r.body["available"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_sells_from_its_reservations_buckets_and_a_cancellation_puts_them_back() {
    let gw = gateway().await;
    let id = gw.bucketed_product(json!({"main": 9}), 3).await;
    let user = token(&unique("buyer"), false);
    let first = gw.reserve(&user, &id, 2).await;
    let second = gw.reserve(&user, &id, 3).await;
    let order = gw.order(&user, &[&first, &second]).await;
    assert_eq!(order.status, 201, "{}", order.body);
    assert_eq!(gw.stock_of(&id, "main").await, (4, 0, 4));
    let sold = on_hand(&buckets(&gw, &id, "main", 3).await);
    assert_eq!(sold.iter().sum::<i64>(), 4);

    let order_id = order.body["id"].as_str().expect("id");
    let r = gw.set_status(&user, order_id, "cancelled").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(gw.stock_of(&id, "main").await, (9, 0, 9));
    assert_eq!(on_hand(&buckets(&gw, &id, "main", 3).await), [3, 3, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stock_adjustments_spread_additions_and_take_removals_from_the_fullest_buckets() {
    let gw = gateway().await;
    let id = gw.bucketed_product(json!({"main": 8}), 4).await;
    let admin = token("admin-stock", true);
    let adjust = |warehouse: &'static str, delta: i64| {
        let gw = &gw;
        let path = format!("/api/products/{id}/stock");
        let admin = admin.clone();
        async move { gw.post(&path, Some(&admin), json!({"warehouse_id": warehouse, "delta": delta})).await }
    };
    let r = adjust("main", 6).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(on_hand(&buckets(&gw, &id, "main", 4).await), [4, 4, 3, 3]);

    let user = token(&unique("holder"), false);
    gw.reserve(&user, &id, 1).await;
    let r = adjust("main", -13).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(gw.stock_of(&id, "main").await, (1, 1, 0));
    let r = adjust("main", -1).await;
    assert_eq!((r.status, r.code()), (409, "insufficient_stock"), "{}", r.body);
    assert_eq!(r.body["available"], 0);

    let r = adjust("east", 3).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(on_hand(&buckets(&gw, &id, "east", 4).await), [1, 1, 1, 0]);
    assert_eq!(gw.stock_of(&id, "east").await, (3, 0, 3));
    let r = adjust("west", -1).await;
    assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_stock_buckets_setting_is_refused_and_creates_nothing() {
    let gw = gateway().await;
    let admin = token("admin-setup", true);
    let sku = unique("BAD");
    let fifty: serde_json::Map<String, Value> = (0..50).map(|i| (format!("w{i}"), json!(1))).collect();
    for (buckets, stock) in [
        (json!(0), json!({"main": 1})),
        (json!(17), json!({"main": 1})),
        (json!("2"), json!({"main": 1})),
        (json!(2.5), json!({"main": 1})),
        (json!(2), Value::Object(fifty)),
    ] {
        let body =
            json!({"sku": sku, "name": "x", "price_cents": 1, "stock": stock, "stock_buckets": buckets});
        let r = gw.post("/api/products", Some(&admin), body).await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{buckets}: {}", r.body);
        let fields: Vec<&str> =
            r.body["errors"].as_array().into_iter().flatten().filter_map(|e| e["field"].as_str()).collect();
        assert_eq!(fields, ["stock_buckets"], "{}", r.body);
    }
    let r = gw.post("/api/products", Some(&admin), json!({"sku": sku, "name": "x", "price_cents": 1})).await;
    assert_eq!(r.status, 201, "the SKU stayed free: {}", r.body);
}

/// A product read is one snapshot of all its bucket rows: units moving between buckets
/// (a gather, one transaction) are never seen half-moved, so the total never wavers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_read_never_shows_units_half_moved_between_buckets() {
    let gw = gateway().await;
    let id = gw.bucketed_product(json!({"main": 12}), 4).await;
    let w = WarehouseId::parse("main").expect("w");
    let store = as_function(&gw.app, "reserve").store;
    let mover = async {
        // [3,3,3,3] -> [5,2,2,3] -> [4,3,2,3] -> [3,3,3,3], over and over.
        let cycle: [(usize, &[(usize, i64)]); 3] = [(0, &[(1, 1), (2, 1)]), (1, &[(0, 1)]), (2, &[(0, 1)])];
        for round in 0..45 {
            let (into, donors) = cycle[round % 3];
            let moved = store.stock.gather(&id, &w, into, donors, chrono::Utc::now(), "mover").await;
            assert_eq!(moved.expect("gather"), shared::store::stock::Gathered::Moved, "round {round}");
        }
    };
    let reader = async {
        let mut totals = std::collections::BTreeSet::new();
        for _ in 0..60 {
            let r = gw.get(&format!("/api/products/{id}"), None).await;
            assert_eq!(r.status, 200, "{}", r.body);
            let rows = r.body["stock"].as_array().cloned().unwrap_or_default();
            totals.insert(rows.iter().map(|s| s["on_hand"].as_i64().unwrap_or(-100)).sum::<i64>());
        }
        totals
    };
    let ((), totals) = tokio::join!(mover, reader);
    assert_eq!(totals.into_iter().collect::<Vec<_>>(), [12], "every read saw all 12 units");
}

#[tokio::test]
async fn a_bucketed_product_without_stock_reads_and_lists() {
    let gw = gateway().await;
    let id = gw.bucketed_product(json!({}), 4).await;
    let r = gw.get(&format!("/api/products/{id}"), None).await;
    assert_eq!((r.status, r.body["available"].as_i64()), (200, Some(0)), "{}", r.body);
    let listed = gw.get("/api/products?limit=100", None).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
}
