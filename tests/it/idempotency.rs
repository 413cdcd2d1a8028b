//! Idempotency-Key on POST /api/reservations.

use futures::future::join_all;
use serde_json::{json, Value};
use stockhold_tests::*;

#[tokio::test]
async fn a_sequential_retry_returns_the_first_response_and_holds_nothing_more() {
    let (gw, id, u) = shop(10).await;
    let key = unique("key");
    let first = gw.reserve_with_key(&u, &key, json!({"product_id": id, "quantity": 2})).await;
    assert_eq!(first.status, 201);
    // Same JSON, other key order and spacing.
    let body = format!(r#"{{ "quantity" : 2, "product_id" : "{id}" }}"#);
    let resp = gw
        .http
        .post(format!("{}/api/reservations", gw.url))
        .bearer_auth(&u)
        .header("idempotency-key", &key)
        .body(body)
        .send()
        .await
        .expect("send");
    let again = into_reply(resp).await;
    assert_eq!((again.status, again.body.clone()), (201, first.body.clone()));
    assert_ne!(again.headers["x-request-id"], first.headers["x-request-id"]);
    assert_eq!(gw.stock_of(&id, "main").await, (10, 2, 8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_retries_create_one_reservation() {
    let (gw, id, u) = shop(10).await;
    let key = unique("key");
    let replies =
        join_all((0..20).map(|_| gw.reserve_with_key(&u, &key, json!({"product_id": id, "quantity": 3}))))
            .await;
    let winners: Vec<&Value> = replies.iter().filter(|r| r.status == 201).map(|r| &r.body).collect();
    assert!(!winners.is_empty());
    assert!(winners.iter().all(|b| b["id"] == winners[0]["id"]), "every 201 is the same reservation");
    for r in replies.iter().filter(|r| r.status != 201) {
        assert_eq!((r.status, r.code()), (409, "idempotency_in_progress"));
    }
    assert_eq!(gw.stock_of(&id, "main").await, (10, 3, 7));
    let after = gw.reserve_with_key(&u, &key, json!({"product_id": id, "quantity": 3})).await;
    assert_eq!((after.status, &after.body), (201, winners[0]));
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422_and_changes_nothing() {
    let (gw, id, u) = shop(10).await;
    let key = unique("key");
    assert_eq!(gw.reserve_with_key(&u, &key, json!({"product_id": id, "quantity": 1})).await.status, 201);
    let r = gw.reserve_with_key(&u, &key, json!({"product_id": id, "quantity": 2})).await;
    assert_eq!((r.status, r.code()), (422, "idempotency_key_reused"));
    assert_eq!(gw.stock_of(&id, "main").await, (10, 1, 9));
}

#[tokio::test]
async fn keys_are_scoped_per_user() {
    let gw = gateway().await;
    let id = gw.product(json!({"main": 10})).await;
    let key = unique("key");
    let a = gw
        .reserve_with_key(&token(&unique("a"), false), &key, json!({"product_id": id, "quantity": 1}))
        .await;
    let b = gw
        .reserve_with_key(&token(&unique("b"), false), &key, json!({"product_id": id, "quantity": 1}))
        .await;
    assert_eq!((a.status, b.status), (201, 201));
    assert_ne!(a.body["id"], b.body["id"]);
    assert_eq!(gw.stock_of(&id, "main").await, (10, 2, 8));
}

#[tokio::test]
async fn a_failed_request_stores_nothing_so_a_corrected_retry_may_reuse_the_key() {
    let (gw, id, u) = shop(3).await;
    let key = unique("key");
    let r = gw.reserve_with_key(&u, &key, json!({"product_id": id, "quantity": 5})).await;
    assert_eq!((r.status, r.code()), (409, "insufficient_stock"));
    let r = gw.reserve_with_key(&u, &key, json!({"product_id": id, "quantity": 5})).await;
    assert_eq!((r.status, r.code()), (409, "insufficient_stock"), "failures are not replayed");
    let r = gw.reserve_with_key(&u, &key, json!({"product_id": id, "quantity": 3})).await;
    assert_eq!(r.status, 201);
    assert_eq!(gw.stock_of(&id, "main").await, (3, 3, 0));
}

#[tokio::test]
async fn malformed_keys_are_422() {
    let (gw, id, u) = shop(3).await;
    let r = gw.reserve_with_key(&u, &"k".repeat(256), json!({"product_id": id, "quantity": 1})).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"));
    assert_eq!(gw.stock_of(&id, "main").await, (3, 0, 3));
}
