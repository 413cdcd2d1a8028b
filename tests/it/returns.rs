//! Returns of delivered orders: per-line partial returns, restocked or not, the order's
//! `returned_quantity` per line and status `returned` when every unit is back, never more
//! than the order sold under any concurrency, the purchase allowance given back, and one
//! `OrderReturned` event per return.

use futures::future::join_all;
use serde_json::{json, Value};
use stockhold_tests::*;

const ADMIN: &str = "admin-returns";

/// An order of the buyer's holds (`(product, units)`), moved to `delivered`.
async fn delivered(gw: &TestGateway, buyer: &str, lines: &[(&str, i64)]) -> String {
    let mut holds = Vec::new();
    for (product, q) in lines {
        holds.push(gw.reserve(buyer, product, *q).await);
    }
    let r = gw.order(buyer, &holds.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let order = r.body["id"].as_str().expect("id").to_string();
    let admin = token(ADMIN, true);
    for status in ["confirmed", "processing", "shipped", "delivered"] {
        let r = gw.set_status(&admin, &order, status).await;
        assert_eq!(r.status, 200, "{status}: {}", r.body);
    }
    order
}

async fn give_back(gw: &TestGateway, order: &str, lines: &[(&str, i64, bool)]) -> Reply {
    let items: Vec<Value> =
        lines.iter().map(|(p, q, r)| json!({"product_id": p, "quantity": q, "restock": r})).collect();
    gw.post(&format!("/api/orders/{order}/returns"), Some(&token(ADMIN, true)), json!({ "items": items }))
        .await
}

/// (returned_quantity per line, status) of the order.
async fn returned(gw: &TestGateway, order: &str) -> (Vec<i64>, String) {
    let r = gw.get(&format!("/api/orders/{order}"), Some(&token(ADMIN, true))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let lines = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|l| l["returned_quantity"].as_i64().expect("n"));
    (lines.collect(), r.body["status"].as_str().expect("status").to_string())
}

#[tokio::test]
async fn partial_returns_restock_their_lines_and_the_last_unit_back_makes_the_order_returned() {
    let (gw, shoes, buyer) = shop(10).await;
    let socks = gw.product(json!({"main": 10})).await;
    let order = delivered(&gw, &buyer, &[(&shoes, 3), (&socks, 2)]).await;
    assert_eq!(gw.stock_of(&shoes, "main").await, (7, 0, 7));
    assert_eq!(returned(&gw, &order).await, (vec![0, 0], "delivered".into()));

    let first = give_back(&gw, &order, &[(&shoes, 1, true)]).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["order_id"], order.as_str());
    assert_eq!(
        first.body["items"],
        json!([{"product_id": shoes, "warehouse_id": "main", "quantity": 1, "restock": true}])
    );
    assert_eq!(first.body["note"], Value::Null);
    assert!(first.body["created_at"].is_string() && first.body["id"].is_string(), "{}", first.body);
    assert_eq!(gw.stock_of(&shoes, "main").await, (8, 0, 8), "restocked: on hand and on sale at once");
    assert_eq!(returned(&gw, &order).await, (vec![1, 0], "delivered".into()));

    // Not restocked: recorded as returned, not resellable.
    let rest = give_back(&gw, &order, &[(&shoes, 2, false), (&socks, 2, true)]).await;
    assert_eq!(rest.status, 201, "{}", rest.body);
    assert_eq!(gw.stock_of(&shoes, "main").await, (8, 0, 8), "nothing back on sale");
    assert_eq!(gw.stock_of(&socks, "main").await, (10, 0, 10));
    assert_eq!(returned(&gw, &order).await, (vec![3, 2], "returned".into()));

    // A returned order takes no more returns and no status change.
    let more = give_back(&gw, &order, &[(&socks, 1, true)]).await;
    assert_eq!((more.status, more.code()), (409, "order_not_returnable"), "{}", more.body);
    for status in ["delivered", "cancelled", "shipped", "returned"] {
        let r = gw.set_status(&token(ADMIN, true), &order, status).await;
        assert_eq!((r.status, r.code()), (409, "invalid_transition"), "{status}: {}", r.body);
        assert_eq!(r.body["allowed"], json!([]));
    }

    let list = gw.get(&format!("/api/orders/{order}/returns"), Some(&buyer)).await;
    assert_eq!(list.status, 200, "the owner reads them: {}", list.body);
    let ids: Vec<&Value> = list.body["items"].as_array().expect("items").iter().map(|r| &r["id"]).collect();
    assert_eq!(ids, [&first.body["id"], &rest.body["id"]], "oldest first");
    assert_eq!(list.body["items"][1], rest.body);
    let page = gw.get(&format!("/api/orders/{order}/returns?limit=1"), Some(&buyer)).await;
    let cursor = page.body["next_cursor"].as_str().expect("a second page");
    let second = gw.get(&format!("/api/orders/{order}/returns?limit=1&cursor={cursor}"), Some(&buyer)).await;
    assert_eq!(second.body["items"], json!([rest.body]));
    assert_eq!(second.body["next_cursor"], Value::Null);
    let orders = gw.get("/api/orders?status=returned", Some(&buyer)).await;
    assert_eq!(orders.body["items"][0]["id"], order.as_str(), "listed by its new status: {}", orders.body);
}

#[tokio::test]
async fn a_return_that_cannot_be_made_is_refused_and_changes_nothing() {
    let (gw, product, buyer) = shop(10).await;
    let other = gw.product(json!({"main": 10})).await;
    let hold = gw.reserve(&buyer, &product, 3).await;
    let pending = gw.order(&buyer, &[&hold]).await.body["id"].as_str().expect("id").to_string();
    let r = give_back(&gw, &pending, &[(&product, 1, true)]).await;
    assert_eq!((r.status, r.code()), (409, "order_not_returnable"), "{}", r.body);

    let order = delivered(&gw, &buyer, &[(&product, 2)]).await;
    let over = give_back(&gw, &order, &[(&product, 3, true)]).await;
    assert_eq!((over.status, over.code()), (409, "return_exceeds_order"), "{}", over.body);
    assert_eq!(
        (over.body["product_id"].as_str(), over.body["returnable"].as_i64()),
        (Some(product.as_str()), Some(2))
    );
    let stranger = give_back(&gw, &order, &[(&product, 1, true), (&other, 1, true)]).await;
    assert_eq!(stranger.status, 422, "{}", stranger.body);
    assert_eq!(stranger.body["errors"][0]["field"], "items[1].product_id");
    let twice = give_back(&gw, &order, &[(&product, 1, true), (&product, 1, true)]).await;
    assert_eq!(twice.status, 422, "{}", twice.body);
    let path = format!("/api/orders/{order}/returns");
    for bad in [
        json!({"items": []}),
        json!({"items": [{"product_id": product, "quantity": 0, "restock": true}]}),
        json!({"items": [{"product_id": product, "quantity": 1}]}),
        json!({"items": [{"product_id": product, "quantity": 1, "restock": true}], "note": ""}),
        json!({"items": [{"product_id": product, "quantity": 1, "restock": "yes"}]}),
    ] {
        let r = gw.post(&path, Some(&token(ADMIN, true)), bad.clone()).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
    }
    let line = json!({"items": [{"product_id": product, "quantity": 1, "restock": true}]});
    assert_eq!(gw.post(&path, Some(&buyer), line.clone()).await.status, 403, "admins make returns");
    let nobody = gw.post("/api/orders/01NOORDER/returns", Some(&token(ADMIN, true)), line).await;
    assert_eq!(nobody.status, 404, "{}", nobody.body);
    let stranger = token(&unique("mallory"), false);
    assert_eq!(gw.get(&path, Some(&stranger)).await.status, 404, "another user's order reads as unknown");
    assert_eq!(returned(&gw, &order).await, (vec![0], "delivered".into()));
    assert_eq!(gw.stock_of(&product, "main").await, (5, 0, 5), "5 sold, nothing back");
    let none = gw.get(&path, Some(&buyer)).await;
    assert_eq!((none.status, none.body["items"].clone()), (200, json!([])));
}

/// Ten returns of one unit each race for an order of five: exactly five apply, the rest
/// are refused, and the order ends `returned` with every unit back once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_racing_returns_never_take_back_more_than_the_order_sold() {
    let (gw, product, buyer) = shop(5).await;
    let order = delivered(&gw, &buyer, &[(&product, 5)]).await;
    assert_eq!(gw.stock_of(&product, "main").await, (0, 0, 0));
    let one = [(product.as_str(), 1, true)];
    let race = join_all((0..10).map(|_| give_back(&gw, &order, &one))).await;
    let won = race.iter().filter(|r| r.status == 201).count();
    assert_eq!(won, 5, "{:?}", race.iter().map(|r| (r.status, r.code().to_string())).collect::<Vec<_>>());
    for r in race.iter().filter(|r| r.status != 201) {
        assert!(
            r.status == 409 && ["return_exceeds_order", "order_not_returnable"].contains(&r.code()),
            "{}",
            r.body
        );
    }
    assert_eq!(returned(&gw, &order).await, (vec![5], "returned".into()));
    assert_eq!(gw.stock_of(&product, "main").await, (5, 0, 5), "each unit back once");
}

#[tokio::test]
async fn returned_units_give_the_customers_purchase_allowance_back() {
    let gw = gateway().await;
    let admin = token(ADMIN, true);
    let body = json!({"sku": unique("RET"), "name": "Limited", "price_cents": 100, "stock": {"main": 10},
                      "max_per_customer": 2});
    let r = gw.post("/api/products", Some(&admin), body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let product = r.body["id"].as_str().expect("id").to_string();
    let buyer = token(&unique("buyer"), false);
    let order = delivered(&gw, &buyer, &[(&product, 2)]).await;
    let hold = json!({"product_id": product, "quantity": 1});
    let r = gw.post("/api/reservations", Some(&buyer), hold.clone()).await;
    assert_eq!((r.status, r.code()), (409, "purchase_limit_reached"), "{}", r.body);
    // Not restocked: the allowance comes back all the same.
    assert_eq!(give_back(&gw, &order, &[(&product, 2, false)]).await.status, 201);
    let r = gw.post("/api/reservations", Some(&buyer), json!({"product_id": product, "quantity": 2})).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn a_keyed_return_is_made_once_and_its_key_never_replays_on_another_order() {
    let (gw, product, buyer) = shop(10).await;
    let (a, b) =
        (delivered(&gw, &buyer, &[(&product, 2)]).await, delivered(&gw, &buyer, &[(&product, 2)]).await);
    let send = |order: String| {
        let gw = &gw;
        let product = product.clone();
        async move {
            let resp = gw
                .http
                .post(format!("{}/api/orders/{order}/returns", gw.url))
                .bearer_auth(token(ADMIN, true))
                .header("idempotency-key", "return-1")
                .json(&json!({"items": [{"product_id": product, "quantity": 1, "restock": true}], "note": "torn"}))
                .send()
                .await
                .expect("send");
            into_reply(resp).await
        }
    };
    let (first, again) = (send(a.clone()).await, send(a.clone()).await);
    assert_eq!((first.status, again.status), (201, 201), "{} {}", first.body, again.body);
    assert_eq!(first.body, again.body);
    assert_eq!(first.body["note"], "torn");
    assert_eq!(returned(&gw, &a).await.0, [1], "made once");
    let other = send(b.clone()).await;
    assert_eq!(other.status, 201, "{}", other.body);
    assert_eq!(other.body["order_id"], b.as_str(), "the same key on another order is another return");
    assert_eq!(returned(&gw, &b).await.0, [1]);
}

/// Each return is one `OrderReturned` event of the order, its `data` the order with the
/// return; the completing one's `changes` show the status, and no `OrderStatusChanged`
/// comes with it. Restocked units are `return` movements naming the return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_return_is_one_order_returned_event_and_restocks_are_return_movements() {
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = gateway_for(app).await;
    let product = gw.product(json!({"main": 5})).await;
    let buyer = token(&unique("buyer"), false);
    let order = delivered(&gw, &buyer, &[(&product, 3)]).await;
    let first = give_back(&gw, &order, &[(&product, 2, true)]).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let last = give_back(&gw, &order, &[(&product, 1, false)]).await;
    assert_eq!(last.status, 201, "{}", last.body);

    let events = events_of(&gw, "order", &order, 7).await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "OrderCreated",
            "OrderStatusChanged",
            "OrderStatusChanged",
            "OrderStatusChanged",
            "OrderStatusChanged",
            "OrderReturned",
            "OrderReturned"
        ],
        "{events:#?}"
    );
    let (returned_one, completed) = (&events[5], &events[6]);
    assert_eq!(returned_one["data"]["return"], first.body);
    assert_eq!(returned_one["data"]["items"][0]["returned_quantity"], 2);
    assert!(returned_one["changes"].get("status").is_none(), "{returned_one:#}");
    assert_eq!(completed["data"]["return"], last.body);
    assert_eq!(completed["data"]["status"], "returned");
    assert_eq!(completed["changes"]["status"], json!({"old": "delivered", "new": "returned"}));
    assert_eq!(completed["sequence"], 7);

    let ms = movements(&gw, &product, "&reason=return", 1).await;
    assert_eq!(ms.len(), 1, "only the restocked return moves stock: {ms:#?}");
    assert_eq!(ms[0]["on_hand_change"], 2);
    assert_eq!(ms[0]["reference"], json!({"type": "return", "id": first.body["id"]}));
}
