//! Inputs and races a review threw at a running gateway, each of which once broke it: a
//! product grown past what one request can read, an empty map in the stream, unreadable
//! or loosely compared `If-Match`, racing extensions, numbers compared as text by
//! idempotency, a group named like JSON, and a request line too long for the server.

use futures::future::join_all;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use stockhold_tests::*;

fn warehouses(n: usize) -> Value {
    Value::Object((0..n).map(|i| (format!("w{i}"), json!(1))).collect::<Map<_, _>>())
}

async fn add_stock(gw: &TestGateway, admin: &str, id: &str, warehouse: &str) -> Reply {
    gw.post(&format!("/api/products/{id}/stock"), Some(admin), json!({"warehouse_id": warehouse, "delta": 5}))
        .await
}

#[tokio::test]
async fn a_new_warehouse_past_the_rows_one_request_can_take_is_422_and_writes_nothing() {
    let gw = gateway().await;
    let admin = token("rows-admin", true);
    // 6 warehouses x 16 buckets = 96 rows; a 7th would make 112.
    let id = gw.bucketed_product(warehouses(6), 16).await;
    let r = add_stock(&gw, &admin, &id, "w6").await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.body);
    assert_eq!(r.body["errors"][0]["field"], "warehouse_id", "{}", r.body);
    let read = gw.get(&format!("/api/products/{id}"), None).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["stock"].as_array().map(Vec::len), Some(6), "nothing was written");
    let buyer = token(&unique("b"), false);
    let held = gw.post("/api/reservations", Some(&buyer), json!({"product_id": id, "quantity": 1})).await;
    assert_eq!(held.status, 201, "a picked hold reads the product: {}", held.body);
    let path = format!("/api/products/{id}");
    let archived = gw.send("PATCH", &path, Some(&admin), Some(json!({"active": false}))).await;
    assert_eq!(archived.status, 200, "archiving retags every row in one transaction: {}", archived.body);
    // Stock added to a warehouse it has is no new row.
    assert_eq!(add_stock(&gw, &admin, &id, "w5").await.status, 200);

    // An unbucketed product: at most 50 warehouses, the limit at creation too.
    let flat = gw.product(warehouses(50)).await;
    let r = add_stock(&gw, &admin, &flat, "w50").await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "{}", r.body);
    assert_eq!(
        gw.get(&format!("/api/products/{flat}"), None).await.body["stock"].as_array().map(Vec::len),
        Some(50)
    );
}

#[tokio::test]
async fn a_product_that_grew_past_the_limit_before_it_existed_still_reads() {
    use shared::domain::stock::{StockLevel, Units, WarehouseId};
    let gw = gateway().await;
    let id = gw.bucketed_product(warehouses(6), 16).await;
    // A 7th warehouse in every bucket, as an addition made before the limit would have.
    let client = raw_client().await;
    let level = StockLevel {
        warehouse_id: WarehouseId::parse("w6").expect("id"),
        units: Units { on_hand: 1, reserved: 0, available: 1 },
        incoming: 0,
        waiting: 0,
        updated_at: chrono::Utc::now(),
    };
    let cause = shared::domain::movement::Cause::new(shared::domain::movement::Reason::Received);
    for bucket in 0..16 {
        let at = "2026-12-01T00:00:00.000Z";
        let item =
            shared::store::records::stock::item(&id, bucket, &level, at, "old", 1, &cause).expect("item");
        client.put_item().table_name(gw.app.store.table()).set_item(Some(item)).send().await.expect("put");
    }
    let read = gw.get(&format!("/api/products/{id}"), None).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["available"], 6 + 16);
    assert_eq!(gw.get("/api/products?limit=100", None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_created_without_stock_never_stops_the_audit_log() {
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = gateway_for(app.clone()).await;
    let admin = token("stockless-admin", true);
    for body in [json!({}), json!({"stock": {}})] {
        let mut body = body;
        body["sku"] = json!(unique("EMPTY"));
        body["name"] = json!("No stock yet");
        body["price_cents"] = json!(100);
        let r = gw.post("/api/products", Some(&admin), body).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let later = gw.product(json!({"main": 1})).await;
    let r = audit_entries(&gw, "product", &later, 1).await;
    assert_eq!(r.len(), 1, "the stream went on past the stockless products");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_record_the_sdk_cannot_decode_is_set_aside_and_the_poller_goes_on() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = gateway_for(app.clone()).await;
    // An empty map, which DynamoDB Local hands to the stream as `{}`: only a write behind
    // the service's back makes one now.
    let row = [("pk", "P#odd"), ("sk", "PRODUCT"), ("entity", "product"), ("id", "odd")];
    put_raw(&app, &row, &[("warehouses", AttributeValue::M(Default::default()))]).await;
    let later = gw.product(json!({"main": 1})).await;
    assert_eq!(audit_entries(&gw, "product", &later, 1).await.len(), 1, "the poller went on");
    // The batch sets its odd records aside after writing its entries: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let aside = loop {
        let aside = app.store.audit.set_aside_records().await.expect("set aside");
        if !aside.is_empty() || std::time::Instant::now() > deadline {
            break aside;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(aside.len(), 1, "{aside:?}");
    let record = aside[0].s("record").expect("record");
    assert!(record.contains("P#odd"), "the record as it came: {record}");
    assert!(aside[0].s("reason").expect("reason").contains("decode"), "{:?}", aside[0]);
}

#[tokio::test]
async fn a_record_of_any_shape_is_set_aside_alone_and_a_redelivery_rewrites_it() {
    let gw = gateway_for(app_on_fresh_table().await).await;
    let mut raw = audit_stream_fixture();
    // An attribute without a type, as DynamoDB Local writes an empty map, and a record
    // that is not a record at all.
    raw["Records"][0]["dynamodb"]["NewImage"]["warehouses"] = json!({});
    raw["Records"].as_array_mut().expect("records").push(json!("not a record"));
    let event: shared::jobs::StreamEvent = serde_json::from_value(raw).expect("shape");
    let audit = as_function(&gw.app, "audit");
    for _ in 0..2 {
        let response = shared::jobs::handle_batch(&audit, &event, None).await;
        assert!(response.batch_item_failures.is_empty(), "{:?}", response.batch_item_failures);
        let aside = gw.app.store.audit.set_aside_records().await.expect("set aside");
        assert_eq!(aside.len(), 2, "{aside:?}");
    }
    assert_eq!(
        audit_entries(&gw, "order", "01KFIXTUREORDER00000000000", 1).await.len(),
        1,
        "the others were written"
    );
}

async fn patch_with(gw: &TestGateway, id: &str, if_match: &[u8]) -> Reply {
    let value = reqwest::header::HeaderValue::from_bytes(if_match).expect("a header value");
    let req = gw
        .http
        .patch(format!("{}/api/products/{id}", gw.url))
        .bearer_auth(token("etag-admin", true))
        .header("if-match", value)
        .json(&json!({"price_cents": 1}));
    into_reply(req.send().await.expect("send")).await
}

#[tokio::test]
async fn if_match_is_a_strong_string_comparison_and_an_unreadable_one_changes_nothing() {
    let gw = gateway().await;
    let id = gw.product(json!({"main": 1})).await;
    let tag =
        gw.get(&format!("/api/products/{id}"), None).await.headers["etag"].to_str().expect("tag").to_string();
    assert_eq!(tag, "\"1\"");
    // Another version is a precondition that fails; a header that is no entity tag list
    // is invalid input.
    let other = [&b"\"01\""[..], b"\"+1\"", b"\"1.0\"", b"\"\xff\""];
    let unreadable = [&b"\"1\"\xff"[..], b"1", b"\"1", b"\"1\" \"2\"", b"*, \"1\""];
    let cases = other.map(|t| (t, 412, "precondition_failed")).into_iter();
    for (tag, status, code) in cases.chain(unreadable.map(|t| (t, 422, "validation_failed"))) {
        let r = patch_with(&gw, &id, tag).await;
        assert_eq!((r.status, r.code()), (status, code), "{:?}: {}", String::from_utf8_lossy(tag), r.body);
        if status == 422 {
            assert_eq!(r.body["errors"][0]["field"], "If-Match");
        }
    }
    assert_eq!(
        gw.get(&format!("/api/products/{id}"), None).await.body["price_cents"],
        1999,
        "nothing changed"
    );
    assert_eq!(patch_with(&gw, &id, tag.as_bytes()).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_extensions_of_an_active_hold_all_say_what_happened_and_its_final_end_is_scheduled() {
    let schedules = Arc::new(RecordingScheduler::default());
    let gw = gateway_for(app().await.with_scheduler(schedules.clone())).await;
    let product = gw.product(json!({"main": 5})).await;
    let buyer = token(&unique("ext"), false);
    let id = gw.reserve(&buyer, &product, 1).await;
    // Later than the hold's first end, so that every extension moves it.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let path = format!("/api/reservations/{id}/extend");
    let replies = join_all((0..20).map(|_| gw.post(&path, Some(&buyer), json!({})))).await;
    let mut ends = BTreeSet::new();
    for r in &replies {
        match r.status {
            200 => {
                assert_eq!(r.body["status"], "active", "{}", r.body);
                ends.insert(r.body["expires_at"].as_str().expect("end").to_string());
            }
            // Read after a winner had already taken it as far, or kept losing: either way
            // the answer says so, and never that an active hold is not active.
            _ => assert!(
                r.status == 409 && ["extension_limit_reached", "conflict"].contains(&r.code()),
                "{}",
                r.body
            ),
        }
    }
    assert!(!ends.is_empty());
    let now = gw.get(&format!("/api/reservations/{id}"), Some(&buyer)).await;
    let end = now.body["expires_at"].as_str().expect("end").to_string();
    assert_eq!(ends.last(), Some(&end), "the latest answer is the hold's end");
    let end = chrono::DateTime::parse_from_rfc3339(&end).expect("time").to_utc();
    let mine: Vec<_> =
        schedules.live.lock().expect("lock").keys().filter(|(r, _)| *r == id).map(|(_, at)| *at).collect();
    assert!(mine.contains(&end), "a schedule at the hold's final end: {mine:?} vs {end}");
    assert!(mine.iter().all(|at| *at <= end), "none later than it: {mine:?}");
}

#[tokio::test]
async fn an_idempotent_retry_is_compared_as_validation_reads_it() {
    let (gw, product, buyer) = shop(5).await;
    let key = unique("key");
    let first = gw.reserve_with_key(&buyer, &key, json!({"product_id": product, "quantity": 1})).await;
    assert_eq!(first.status, 201, "{}", first.body);
    for same in [
        json!({"quantity": 1.0, "product_id": product}),
        json!({"product_id": product, "quantity": 1, "warehouse_id": null}),
    ] {
        let again = gw.reserve_with_key(&buyer, &key, same).await;
        assert_eq!(
            (again.status, again.body["id"].clone()),
            (201, first.body["id"].clone()),
            "{}",
            again.body
        );
    }
    let other = gw.reserve_with_key(&buyer, &key, json!({"product_id": product, "quantity": 2})).await;
    assert_eq!((other.status, other.code()), (422, "idempotency_key_reused"));
    assert_eq!(gw.stock_of(&product, "main").await, (5, 1, 4), "held once");
}

#[tokio::test]
async fn no_group_name_but_admin_itself_makes_an_admin() {
    let gw = gateway().await;
    let exp = chrono::Utc::now().timestamp() + 600;
    for groups in
        [json!(["\"admin\""]), json!(["x admin"]), json!(["admin ops"]), json!(["[admin]"]), json!("[admin]")]
    {
        let t = token_with(json!({"sub": unique("g"), "groups": groups, "exp": exp}), SECRET);
        let r = gw
            .post(
                "/api/products",
                Some(&t),
                json!({"sku": unique("G"), "name": "Not yours", "price_cents": 1}),
            )
            .await;
        assert_eq!((r.status, r.code()), (403, "forbidden"), "groups {groups}: {}", r.body);
    }
    let t = token_with(json!({"sub": unique("g"), "groups": ["ops", "admin"], "exp": exp}), SECRET);
    let r = gw
        .post("/api/products", Some(&t), json!({"sku": unique("G"), "name": "Mine", "price_cents": 1}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Sends `request` as raw bytes (no client would build a request this large) and reads
/// the answer to the end: its status line, headers and body.
async fn raw_exchange(url: &str, request: Vec<u8>) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before it has read all of it.
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test]
async fn a_request_head_too_large_for_the_server_gets_a_problem_json_answer() {
    let gw = gateway().await;
    let cursor = "c".repeat(100 * 1024);
    let long_uri = format!("GET /api/products?cursor={cursor} HTTP/1.1\r\nhost: x\r\n\r\n");
    let big_header =
        format!("GET /api/products HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "h".repeat(600 * 1024));
    let bad_line = "GET /api/products HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n".to_string();
    for (request, status, code) in [
        (long_uri, "414", "uri_too_long"),
        (big_header, "431", "headers_too_large"),
        (bad_line, "400", "malformed_request"),
    ] {
        let (head, body) = raw_exchange(&gw.url, request.into_bytes()).await;
        assert!(head.starts_with(&format!("http/1.1 {status} ")), "{head}");
        assert!(head.contains("content-type: application/problem+json"), "{head}");
        assert!(head.contains("x-request-id: "), "{head}");
        let body: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(
            (body["status"].as_u64(), body["code"].as_str()),
            (status.parse().ok(), Some(code)),
            "{body}"
        );
        assert!(body["request_id"].is_string(), "{body}");
    }
    // The gateway serves the next request as ever.
    assert_eq!(gw.get("/api/products?limit=1", None).await.status, 200);
}
