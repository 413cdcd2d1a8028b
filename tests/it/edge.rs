//! Routing, size limits, tokens and request ids: the checks before any handler runs.

use serde_json::json;
use stockhold_tests::*;

#[tokio::test]
async fn unknown_routes_are_404_problems_and_known_paths_with_wrong_methods_are_405_with_allow() {
    let gw = gateway().await;
    let r = gw.get("/api/nothing", None).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    assert_eq!(r.headers["content-type"], "application/problem+json");
    let r = gw.send("PUT", "/api/products", Some(&token("u", true)), Some(json!({}))).await;
    assert_eq!((r.status, r.code()), (405, "method_not_allowed"));
    assert_eq!(r.headers["allow"], "GET, POST");
}

#[tokio::test]
async fn bodies_over_256_kib_are_refused_with_413_before_anything_else() {
    let gw = gateway().await;
    let big = "x".repeat(256 * 1024 + 1);
    let resp = gw.http.post(format!("{}/api/nothing", gw.url)).body(big).send().await.expect("send");
    let r = into_reply(resp).await;
    assert_eq!((r.status, r.code()), (413, "payload_too_large"));
    let exact = format!("\"{}\"", "x".repeat(256 * 1024 - 2));
    let resp = gw
        .http
        .post(format!("{}/api/products", gw.url))
        .bearer_auth(token("a", true))
        .body(exact)
        .send()
        .await
        .expect("send");
    assert_eq!(into_reply(resp).await.code(), "invalid_json");
}

#[tokio::test]
async fn private_routes_need_a_valid_token_and_public_routes_ignore_any() {
    let gw = gateway().await;
    let exp = chrono::Utc::now().timestamp() + 600;
    let bad_sig = token_with(json!({"sub": "a", "exp": exp}), "wrong-secret");
    let expired = token_with(json!({"sub": "a", "exp": chrono::Utc::now().timestamp() - 60}), SECRET);
    let no_sub = token_with(json!({"exp": exp}), SECRET);
    // alg "none": header {"alg":"none","typ":"JWT"}, no signature.
    let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhIn0.";
    let body = json!({"product_id": "p", "quantity": 1});
    for t in [bad_sig.as_str(), expired.as_str(), no_sub.as_str(), none, "garbage"] {
        let r = gw.post("/api/reservations", Some(t), body.clone()).await;
        assert_eq!((r.status, r.code()), (401, "unauthorized"), "token {t}");
    }
    let r = gw.post("/api/reservations", None, body.clone()).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"));
    let r = gw.get("/api/products?limit=1", Some("garbage")).await;
    assert_eq!(r.status, 200);
    // A token a few seconds past exp is inside the 5 s leeway.
    let just_expired = token_with(json!({"sub": "a", "exp": chrono::Utc::now().timestamp() - 2}), SECRET);
    let r =
        gw.post("/api/reservations", Some(&just_expired), json!({"product_id": "none", "quantity": 1})).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_errors_repeat_it() {
    let gw = gateway().await;
    let get =
        |path: &str, id: &str| gw.http.get(format!("{}{path}", gw.url)).header("x-request-id", id).send();
    let r = into_reply(get("/api/nothing", "abc.DEF_123-x").await.expect("send")).await;
    assert_eq!(r.headers["x-request-id"], "abc.DEF_123-x");
    assert_eq!(r.body["request_id"], "abc.DEF_123-x");
    let resp = get("/api/products", "bad id!").await.expect("send");
    let id = resp.headers()["x-request-id"].to_str().expect("ascii").to_string();
    assert!(!id.is_empty() && id != "bad id!");
    let long = "a".repeat(129);
    let resp = get("/api/products", &long).await.expect("send");
    assert_ne!(resp.headers()["x-request-id"], long.as_str());
}

#[tokio::test]
async fn checks_run_in_contract_order_json_then_validation_then_role() {
    let gw = gateway().await;
    let customer = token("cust", false);
    let r = gw.send("POST", "/api/products", Some(&customer), None).await;
    assert_eq!((r.status, r.code()), (400, "invalid_json"));
    let r = gw.post("/api/products", Some(&customer), json!([1, 2])).await;
    assert_eq!((r.status, r.code()), (400, "invalid_json"));
    let r = gw.post("/api/products", Some(&customer), json!({"sku": ""})).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"));
    let r =
        gw.post("/api/products", Some(&customer), json!({"sku": "OK", "name": "n", "price_cents": 1})).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
}

/// Path ids of any length or bytes are looked up only when they could exist: a long one
/// would exceed DynamoDB's key size (a ValidationException, a 500) if it reached a call.
#[tokio::test]
async fn any_path_id_of_any_length_or_bytes_is_a_404_never_a_500() {
    let gw = gateway().await;
    let admin = token(&unique("admin"), true);
    let long = "A".repeat(3000);
    for id in [long.as_str(), "%00", "%FF%FE", "%F0%9F%92%A5", "a%2Fb", "..", "'\"", &"\u{e9}".repeat(129)] {
        for (method, path, body) in [
            ("GET", format!("/api/products/{id}"), None),
            ("POST", format!("/api/products/{id}/stock"), Some(json!({"warehouse_id": "main", "delta": 1}))),
            ("GET", format!("/api/reservations/{id}"), None),
            ("DELETE", format!("/api/reservations/{id}"), None),
            ("GET", format!("/api/orders/{id}"), None),
            ("PATCH", format!("/api/orders/{id}"), Some(json!({"status": "confirmed"}))),
        ] {
            let r = gw.send(method, &path, Some(&admin), body).await;
            assert_eq!(
                (r.status, r.code()),
                (404, "not_found"),
                "{method} {}: {}",
                &path[..path.len().min(60)],
                r.body
            );
        }
    }
}

#[tokio::test]
async fn unknown_query_parameters_are_422_on_item_routes_too() {
    let gw = gateway().await;
    let admin = token(&unique("admin"), true);
    let product = gw.product(json!({"main": 3})).await;
    for (method, path, body) in [
        ("GET", format!("/api/products/{product}?verbose=1"), None),
        (
            "POST",
            format!("/api/products/{product}/stock?dry_run=1"),
            Some(json!({"warehouse_id": "main", "delta": 1})),
        ),
        (
            "POST",
            "/api/products?x=1".to_string(),
            Some(json!({"sku": unique("S"), "name": "n", "price_cents": 1})),
        ),
        ("POST", "/api/reservations?x=1".to_string(), Some(json!({"product_id": product, "quantity": 1}))),
        ("GET", "/api/reservations/x?x=1".to_string(), None),
        ("GET", "/api/orders/x?x=1".to_string(), None),
        ("GET", "/api/openapi.json?x=1".to_string(), None),
    ] {
        let r = gw.send(method, &path, Some(&admin), body).await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{method} {path}: {}", r.body);
        let name = path.rsplit('?').next().and_then(|q| q.split('=').next()).unwrap_or("?");
        assert_eq!(r.body["errors"][0]["field"], name, "{}", r.body);
    }
    assert_eq!(gw.stock_of(&product, "main").await, (3, 0, 3), "nothing changed");
}

#[tokio::test]
async fn a_subject_too_long_for_a_key_is_no_user() {
    let gw = gateway().await;
    let r = gw.get("/api/orders", Some(&token(&"u".repeat(3000), false))).await;
    assert_eq!((r.status, r.code()), (401, "unauthorized"), "{}", r.body);
}

/// A client that is still sending a large body when the gateway decides reads its 413,
/// as API Gateway delivers it, never a connection reset (checked with a raw connection, so
/// no client library's own buffering hides a reset), declared or chunked.
#[tokio::test]
async fn a_client_still_sending_an_oversized_body_reads_its_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gw = gateway().await;
    let addr = gw.url.trim_start_matches("http://").to_string();
    let body = vec![b'x'; 4 * 1024 * 1024];
    for chunked in [false, true] {
        let mut conn = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        let framing = if chunked {
            "Transfer-Encoding: chunked".to_string()
        } else {
            format!("Content-Length: {}", body.len())
        };
        let head =
            format!("POST /api/products HTTP/1.1\r\nHost: {addr}\r\n{framing}\r\nConnection: close\r\n\r\n");
        conn.write_all(head.as_bytes()).await.expect("head");
        for piece in body.chunks(64 * 1024) {
            if chunked {
                conn.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).await.expect("chunk size");
                conn.write_all(piece).await.expect("the gateway keeps reading the body");
                conn.write_all(b"\r\n").await.expect("chunk end");
            } else {
                conn.write_all(piece).await.expect("the gateway keeps reading the body");
            }
        }
        if chunked {
            conn.write_all(b"0\r\n\r\n").await.expect("last chunk");
        }
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).await.expect("the answer, not a reset");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "chunked={chunked}: {}",
            &answer[..answer.len().min(200)]
        );
        assert!(answer.contains("payload_too_large"), "{answer}");
    }
}
