//! Transfers between warehouses: the units leave the source at once, are `incoming` at
//! the destination while in transit, and are received or cancelled exactly once; a
//! transfer and holds racing for the source's last units never both get them.

use futures::future::join_all;
use serde_json::{json, Value};
use std::sync::Arc;
use stockhold_tests::*;

/// (on_hand, reserved, available, incoming) of `warehouse`; all -1 when the product has
/// no stock there.
async fn entry(gw: &TestGateway, product: &str, warehouse: &str) -> (i64, i64, i64, i64) {
    let r = gw.get(&format!("/api/products/{product}"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let row = r.body["stock"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["warehouse_id"] == warehouse).cloned())
        .unwrap_or(Value::Null);
    let n = |k: &str| row[k].as_i64().unwrap_or(-1);
    (n("on_hand"), n("reserved"), n("available"), n("incoming"))
}

async fn transfer(gw: &TestGateway, product: &str, from: &str, to: &str, q: i64) -> Reply {
    let admin = token("admin-1", true);
    let body =
        json!({"product_id": product, "from_warehouse_id": from, "to_warehouse_id": to, "quantity": q});
    gw.post("/api/transfers", Some(&admin), body).await
}

fn id_of(r: &Reply) -> String {
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn a_transfer_leaves_the_source_at_once_is_incoming_until_received_and_goes_back_when_cancelled() {
    let gw = gateway().await;
    let admin = token("admin-1", true);
    let product = gw.product(json!({"main": 10})).await;

    // To a warehouse the product does not have yet: it appears at once, nothing on hand.
    let sent = transfer(&gw, &product, "main", "east", 4).await;
    let first = id_of(&sent);
    assert_eq!(sent.body["status"], "in_transit");
    assert_eq!(sent.body["quantity"], 4);
    assert_eq!(sent.body["note"], Value::Null);
    assert_eq!(entry(&gw, &product, "main").await, (6, 0, 6, 0));
    assert_eq!(entry(&gw, &product, "east").await, (0, 0, 0, 4));
    let read = gw.get(&format!("/api/transfers/{first}"), Some(&admin)).await;
    assert_eq!(read.body, sent.body);

    let received = gw.post(&format!("/api/transfers/{first}/receive"), Some(&admin), json!({})).await;
    assert_eq!(received.status, 200, "{}", received.body);
    assert_eq!(received.body["status"], "received");
    assert_eq!(entry(&gw, &product, "east").await, (4, 0, 4, 0));
    let again = gw.send("POST", &format!("/api/transfers/{first}/cancel"), Some(&admin), None).await;
    assert_eq!((again.status, again.code()), (409, "transfer_not_in_transit"), "{}", again.body);
    assert_eq!(again.body["status"], "received", "the body names the status the transfer is in");
    assert_eq!(entry(&gw, &product, "east").await, (4, 0, 4, 0), "a refused cancel changes nothing");

    // Back the other way, cancelled: the units return to the source.
    let second = id_of(&transfer(&gw, &product, "east", "main", 3).await);
    assert_eq!(entry(&gw, &product, "east").await, (1, 0, 1, 0));
    assert_eq!(entry(&gw, &product, "main").await, (6, 0, 6, 3));
    let cancelled = gw.send("POST", &format!("/api/transfers/{second}/cancel"), Some(&admin), None).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(entry(&gw, &product, "east").await, (4, 0, 4, 0));
    assert_eq!(entry(&gw, &product, "main").await, (6, 0, 6, 0));
    let late = gw.send("POST", &format!("/api/transfers/{second}/receive"), Some(&admin), None).await;
    assert_eq!((late.status, late.code()), (409, "transfer_not_in_transit"));
    assert_eq!(late.body["status"], "cancelled");
}

#[tokio::test]
async fn a_transfer_that_cannot_be_made_is_refused_and_changes_nothing() {
    let gw = gateway().await;
    let admin = token("admin-1", true);
    let product = gw.product(json!({"main": 5})).await;
    let short = transfer(&gw, &product, "main", "east", 6).await;
    assert_eq!((short.status, short.code()), (409, "insufficient_stock"), "{}", short.body);
    assert_eq!(short.body["available"], 5);
    let same = transfer(&gw, &product, "main", "main", 1).await;
    assert_eq!(same.status, 422, "{}", same.body);
    assert_eq!(transfer(&gw, &product, "west", "main", 1).await.status, 404, "an unknown source");
    assert_eq!(transfer(&gw, "01NOPRODUCT", "main", "east", 1).await.status, 404);
    let body =
        json!({"product_id": product, "from_warehouse_id": "main", "to_warehouse_id": "east", "quantity": 1});
    let buyer = gw.post("/api/transfers", Some(&token("alice", false)), body).await;
    assert_eq!(buyer.status, 403, "{}", buyer.body);
    assert_eq!(gw.get("/api/transfers/01NOTRANSFER", Some(&admin)).await.status, 404);
    let r = gw.get(&format!("/api/products/{product}"), None).await;
    assert_eq!(r.body["stock"].as_array().map(Vec::len), Some(1), "no warehouse was opened: {}", r.body);
    assert_eq!(entry(&gw, &product, "main").await, (5, 0, 5, 0));
}

#[tokio::test]
async fn a_keyed_transfer_retried_is_made_once_and_answered_the_same() {
    let gw = gateway().await;
    let product = gw.product(json!({"main": 5})).await;
    let send = || async {
        let resp = gw
            .http
            .post(format!("{}/api/transfers", gw.url))
            .bearer_auth(token("admin-1", true))
            .header("idempotency-key", "move-1")
            .json(&json!({"product_id": product, "from_warehouse_id": "main", "to_warehouse_id": "east",
                          "quantity": 2, "note": "weekly"}))
            .send()
            .await
            .expect("send");
        into_reply(resp).await
    };
    let (a, b) = (send().await, send().await);
    assert_eq!((a.status, b.status), (201, 201), "{} {}", a.body, b.body);
    assert_eq!(a.body, b.body);
    assert_eq!(entry(&gw, &product, "main").await, (3, 0, 3, 0));
}

/// 20 transfers, each received and cancelled at the same instant: exactly one of the two
/// applies to each, and every unit is in one place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_a_receive_and_a_cancel_racing_exactly_one_wins_and_units_are_conserved() {
    let gw = Arc::new(gateway().await);
    let admin = token("admin-1", true);
    let product = gw.product(json!({"main": 100, "east": 0})).await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(id_of(&transfer(&gw, &product, "main", "east", 2).await));
    }
    assert_eq!(entry(&gw, &product, "east").await, (0, 0, 0, 40));
    let races = ids.iter().map(|id| {
        let (gw, admin, id) = (gw.clone(), admin.clone(), id.clone());
        tokio::spawn(async move {
            let (to_receive, to_cancel) =
                (format!("/api/transfers/{id}/receive"), format!("/api/transfers/{id}/cancel"));
            let receive = gw.send("POST", &to_receive, Some(&admin), None);
            let cancel = gw.send("POST", &to_cancel, Some(&admin), None);
            let (r, c) = tokio::join!(receive, cancel);
            for loser in [&r, &c].into_iter().filter(|x| x.status != 200) {
                assert_eq!((loser.status, loser.code()), (409, "transfer_not_in_transit"), "{}", loser.body);
            }
            assert_eq!(
                [r.status, c.status].iter().filter(|s| **s == 200).count(),
                1,
                "{} / {}",
                r.body,
                c.body
            );
            r.status == 200
        })
    });
    let received = join_all(races).await.into_iter().filter(|r| *r.as_ref().expect("race")).count() as i64;
    let (main, east) = (entry(&gw, &product, "main").await, entry(&gw, &product, "east").await);
    assert_eq!(
        east,
        (2 * received, 0, 2 * received, 0),
        "received units at the destination, none in transit"
    );
    assert_eq!(main, (100 - 2 * received, 0, 100 - 2 * received, 0), "cancelled ones back at the source");
    for id in &ids {
        let t = gw.get(&format!("/api/transfers/{id}"), Some(&admin)).await;
        assert!(["received", "cancelled"].contains(&t.body["status"].as_str().unwrap_or("")), "{}", t.body);
    }
}

/// The source's last 5 units, wanted by a transfer of 5 and by 5 buyers holding one
/// each, all at once: either the transfer got them or the buyers did, never both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_racing_holds_for_the_last_units_of_the_source_never_gets_them_twice() {
    for _ in 0..3 {
        let gw = Arc::new(gateway().await);
        let product = gw.product(json!({"main": 5, "east": 0})).await;
        let holds = (0..5).map(|b| {
            let (gw, product) = (gw.clone(), product.clone());
            tokio::spawn(async move {
                let buyer = token(&unique("last"), false);
                let body = json!({"product_id": product, "quantity": 1, "warehouse_id": "main"});
                gw.post("/api/reservations", Some(&buyer), body).await.status == 201 || b < 0
            })
        });
        let moved = {
            let (gw, product) = (gw.clone(), product.clone());
            tokio::spawn(async move { transfer(&gw, &product, "main", "east", 5).await.status })
        };
        let held = join_all(holds).await.into_iter().filter(|h| *h.as_ref().expect("hold")).count() as i64;
        let moved = moved.await.expect("transfer");
        let main = entry(&gw, &product, "main").await;
        let east = entry(&gw, &product, "east").await;
        if moved == 201 {
            assert_eq!((held, main, east), (0, (0, 0, 0, 0), (0, 0, 0, 5)));
        } else {
            assert_eq!(moved, 409);
            assert_eq!(main, (5, held, 5 - held, 0));
            assert_eq!(east.3, 0);
        }
    }
}

/// A product of 10 in `main` on a table with its stream and the audit poller running, and
/// two transfers of it to `east`: one of 4 received, one of `cancel_units` cancelled.
struct TwoTransfers {
    gw: TestGateway,
    product: String,
    received: String,
    receive: Reply,
    cancelled: String,
}

async fn received_and_cancelled(cancel_units: i64) -> TwoTransfers {
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = gateway_for(app).await;
    let admin = token("admin-1", true);
    let product = gw.product(json!({"main": 10})).await;
    let received = id_of(&transfer(&gw, &product, "main", "east", 4).await);
    let receive = gw.send("POST", &format!("/api/transfers/{received}/receive"), Some(&admin), None).await;
    assert_eq!(receive.status, 200, "{}", receive.body);
    let cancelled = id_of(&transfer(&gw, &product, "main", "east", cancel_units).await);
    let cancel = gw.send("POST", &format!("/api/transfers/{cancelled}/cancel"), Some(&admin), None).await;
    assert_eq!(cancel.status, 200, "{}", cancel.body);
    TwoTransfers { gw, product, received, receive, cancelled }
}

/// Each end of a transfer is a movement of its own, naming the transfer: `transfer_out`
/// at the source when it is made, `transfer_in` at the destination when received,
/// `transfer_cancelled` at the source when cancelled; units in transit move neither
/// `on_hand` nor `reserved`, so the destination's `incoming` makes none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_end_of_a_transfer_is_one_movement_naming_it() {
    let TwoTransfers { gw, product, received, cancelled, .. } = received_and_cancelled(2).await;

    let ms = movements(&gw, &product, "", 5).await;
    let got: Vec<(String, String, i64, String)> = ms
        .iter()
        .map(|m| {
            (
                m["warehouse_id"].as_str().unwrap_or("").to_string(),
                m["reason"].as_str().unwrap_or("").to_string(),
                m["on_hand_change"].as_i64().unwrap_or(0),
                m["reference"]["id"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    let row = |w: &str, r: &str, d: i64, id: &str| (w.to_string(), r.to_string(), d, id.to_string());
    let mut expected = vec![
        row("main", "received", 10, "-"),
        row("main", "transfer_out", -4, &received),
        row("east", "transfer_in", 4, &received),
        row("main", "transfer_out", -2, &cancelled),
        row("main", "transfer_cancelled", 2, &cancelled),
    ];
    let mut sorted = got.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected, "{ms:#?}");
    assert!(ms.iter().all(|m| m["reference"]["type"] == "transfer" || m["reason"] == "received"));
}

/// A transfer's life is in the audit log and the event feed: `TransferCreated`, then
/// `TransferReceived` (or `TransferCancelled`), numbered 1, 2 for the transfer, `data`
/// the transfer as the API returns it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfers_steps_are_audited_and_published_as_events_of_the_transfer() {
    let TwoTransfers { gw, received, receive: done, cancelled, .. } = received_and_cancelled(1).await;

    let entries = audit_entries(&gw, "transfer", &received, 2).await;
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert_eq!(entries[1]["changes"]["status"], json!({"old": "in_transit", "new": "received"}));

    let got = events_of(&gw, "transfer", &received, 2).await;
    let kinds: Vec<&str> = got.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds, ["TransferCreated", "TransferReceived"], "{got:#?}");
    let seqs: Vec<u64> = got.iter().filter_map(|e| e["sequence"].as_u64()).collect();
    assert_eq!(seqs, [1, 2]);
    assert_eq!(got[1]["data"], done.body, "data is the transfer as the API returns it");
    assert_eq!(got[1]["entity_type"], "transfer");
    assert_eq!(got[1]["actor"], "admin-1");
    let got = events_of(&gw, "transfer", &cancelled, 2).await;
    let kinds: Vec<&str> = got.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds, ["TransferCreated", "TransferCancelled"], "{got:#?}");
}

/// The ids on every page of `path` (a list with its filters), following `next_cursor`.
async fn every_page(gw: &TestGateway, path: &str) -> Vec<String> {
    let admin = token("admin-1", true);
    let (mut ids, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}cursor={c}"),
            None => path.to_string(),
        };
        let r = gw.get(&url, Some(&admin)).await;
        assert_eq!(r.status, 200, "{url}: {}", r.body);
        ids.extend(
            r.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|t| t["id"].as_str().expect("id").to_string()),
        );
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn transfers_list_newest_first_by_product_and_status_across_pages() {
    let gw = gateway().await;
    let admin = token("admin-1", true);
    let product = gw.product(json!({"main": 10})).await;
    let other = gw.product(json!({"main": 10})).await;
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(id_of(&transfer(&gw, &product, "main", "east", 1).await));
    }
    let elsewhere = id_of(&transfer(&gw, &other, "main", "east", 1).await);
    for (i, end) in [(1, "receive"), (3, "cancel")] {
        let r = gw.post(&format!("/api/transfers/{}/{end}", made[i]), Some(&admin), json!({})).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();

    let mine = every_page(&gw, &format!("/api/transfers?product_id={product}&limit=2")).await;
    assert_eq!(mine, newest_first, "a product's transfers, two a page");
    let in_transit =
        every_page(&gw, &format!("/api/transfers?product_id={product}&status=in_transit&limit=1")).await;
    assert_eq!(in_transit, [made[4].clone(), made[2].clone(), made[0].clone()]);
    let received = every_page(&gw, &format!("/api/transfers?product_id={product}&status=received")).await;
    assert_eq!(received, [made[1].clone()]);

    // All transfers (other tests' too): ours in order, the other product's among them.
    let all = every_page(&gw, "/api/transfers?limit=100").await;
    let ours: Vec<&String> = all.iter().filter(|id| made.contains(id)).collect();
    assert_eq!(ours, newest_first.iter().collect::<Vec<_>>());
    assert!(all.contains(&elsewhere));
    let cancelled = every_page(&gw, "/api/transfers?status=cancelled&limit=100").await;
    assert!(cancelled.contains(&made[3]) && !cancelled.contains(&made[1]), "{cancelled:?}");

    let none = gw.get("/api/transfers?product_id=01NOPRODUCT", Some(&admin)).await;
    assert_eq!((none.status, none.body["items"].as_array().map(Vec::len)), (200, Some(0)));
    for bad in ["status=lost", "product_id=", "limit=0", "sort=newest"] {
        let r = gw.get(&format!("/api/transfers?{bad}"), Some(&admin)).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.body);
    }
    let page = gw.get(&format!("/api/transfers?product_id={product}&limit=1"), Some(&admin)).await;
    let cursor = page.body["next_cursor"].as_str().expect("a next page").to_string();
    let foreign = gw.get(&format!("/api/transfers?product_id={other}&cursor={cursor}"), Some(&admin)).await;
    assert_eq!(foreign.status, 400, "a cursor of another filter: {}", foreign.body);
    let buyer = gw.get("/api/transfers", Some(&token("alice", false))).await;
    assert_eq!(buyer.status, 403);
}

/// Units a transfer brings back never take a warehouse past its maximum on hand: a cancel
/// into a source filled up meanwhile is 409 `conflict`, the transfer stays in transit.
#[tokio::test]
async fn a_cancel_into_a_full_source_is_refused_and_leaves_the_transfer_in_transit() {
    let gw = gateway().await;
    let admin = token("admin-1", true);
    let product = gw.product(json!({"main": 1_000_000_000})).await;
    let t = id_of(&transfer(&gw, &product, "main", "east", 1).await);
    let r = gw
        .post(
            &format!("/api/products/{product}/stock"),
            Some(&admin),
            json!({"warehouse_id": "main", "delta": 1}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cancel = gw.send("POST", &format!("/api/transfers/{t}/cancel"), Some(&admin), None).await;
    assert_eq!((cancel.status, cancel.code()), (409, "conflict"), "{}", cancel.body);
    let read = gw.get(&format!("/api/transfers/{t}"), Some(&admin)).await;
    assert_eq!(read.body["status"], "in_transit");
    assert_eq!(entry(&gw, &product, "main").await, (1_000_000_000, 0, 1_000_000_000, 0));
    assert_eq!(entry(&gw, &product, "east").await, (0, 0, 0, 1));
    let received = gw.send("POST", &format!("/api/transfers/{t}/receive"), Some(&admin), None).await;
    assert_eq!(received.status, 200, "it can still be received: {}", received.body);
}
