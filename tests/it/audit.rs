//! The audit log: entries from the stream for every business change, with actors and
//! diffs; redelivery writes nothing twice; a poisoned record is set aside alone.

use chrono::Duration;
use serde_json::{json, Value};
use shared::adapters::clock::ManualClock;
use shared::jobs::{handle_batch, StreamEvent};
use std::sync::Arc;
use std::time::Instant;
use stockhold_tests::*;

/// All entries of one entity, waiting (bounded) until there are `n`.
async fn entries(gw: &TestGateway, kind: &str, id: &str, n: usize) -> Vec<Value> {
    audit_entries(gw, kind, id, n).await
}

fn actions(entries: &[Value]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|e| {
            (e["action"].as_str().unwrap_or("").to_string(), e["actor"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

fn pair(action: &str, actor: &str) -> (String, String) {
    (action.to_string(), actor.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_scenario_yields_exactly_the_expected_entries_with_actors_and_diffs() {
    let clock = ManualClock::new(chrono::Utc::now());
    let app = with_clock(app_on_fresh_table().await, Arc::new(clock.clone()));
    start_audit_poller(&app).await;
    let gw = gateway_for(app.clone()).await;
    let admin = token("admin-1", true);
    let alice = token("alice", false);

    let p = gw
        .post(
            "/api/products",
            Some(&admin),
            json!({"sku": unique("AUD"), "name": "Audited", "price_cents": 500, "stock": {"main": 10}}),
        )
        .await;
    let product = p.body["id"].as_str().expect("id").to_string();
    assert_eq!(
        gw.post(
            &format!("/api/products/{product}/stock"),
            Some(&admin),
            json!({"warehouse_id": "main", "delta": 5})
        )
        .await
        .status,
        200
    );
    let r1 = gw.reserve(&alice, &product, 2).await;
    assert_eq!(gw.send("DELETE", &format!("/api/reservations/{r1}"), Some(&alice), None).await.status, 200);
    let r2 = {
        let resp = gw
            .http
            .post(format!("{}/api/reservations", gw.url))
            .bearer_auth(&alice)
            .header("idempotency-key", "audit-scenario")
            .json(&json!({"product_id": product, "quantity": 3}))
            .send()
            .await
            .expect("send");
        into_reply(resp).await.body["id"].as_str().expect("id").to_string()
    };
    clock.advance(Duration::seconds(600));
    assert_eq!(
        as_function(&app, "expire").expire_reservation(&r2).await,
        Ok(shared::service::ExpireOutcome::Expired)
    );
    let r3 = gw.reserve(&alice, &product, 1).await;
    let o1 = gw.order(&alice, &[&r3]).await.body["id"].as_str().expect("id").to_string();
    for s in ["confirmed", "processing", "shipped"] {
        assert_eq!(gw.set_status(&admin, &o1, s).await.status, 200);
    }
    let r4 = gw.reserve(&alice, &product, 4).await;
    let o2 = gw.order(&alice, &[&r4]).await.body["id"].as_str().expect("id").to_string();
    assert_eq!(gw.set_status(&alice, &o2, "cancelled").await.status, 200);

    let product_log = entries(&gw, "product", &product, 1).await;
    assert_eq!(actions(&product_log), [pair("created", "admin-1")]);
    let created = &product_log[0]["changes"];
    assert_eq!(created["name"], json!({"old": null, "new": "Audited"}));
    assert_eq!(created["price_cents"], json!({"old": null, "new": 500}));
    assert!(
        created.get("pk").is_none() && created.get("last_actor").is_none() && created.get("gsi1pk").is_none()
    );

    let stock_log = entries(&gw, "stock", &product, 11).await;
    let a = |actor: &str| pair("updated", actor);
    assert_eq!(
        actions(&stock_log),
        [
            pair("created", "admin-1"),
            a("admin-1"),
            a("alice"),
            a("alice"),
            a("alice"),
            a("system"),
            a("alice"),
            a("alice"),
            a("alice"),
            a("alice"),
            a("alice")
        ]
    );
    assert!(stock_log.iter().all(|e| e["warehouse_id"] == "main"));
    assert_eq!(stock_log[1]["changes"]["on_hand"], json!({"old": 10, "new": 15}));
    assert_eq!(stock_log[5]["changes"]["reserved"], json!({"old": 3, "new": 0}), "expiry gives units back");

    let r1_log = entries(&gw, "reservation", &r1, 2).await;
    assert_eq!(actions(&r1_log), [pair("created", "alice"), a("alice")]);
    assert_eq!(r1_log[1]["changes"], json!({"status": {"old": "active", "new": "released"}}));
    let r2_log = entries(&gw, "reservation", &r2, 2).await;
    assert_eq!(actions(&r2_log), [pair("created", "alice"), a("system")]);
    assert_eq!(r2_log[1]["changes"]["status"], json!({"old": "active", "new": "expired"}));
    let r3_log = entries(&gw, "reservation", &r3, 2).await;
    assert_eq!(r3_log[1]["changes"]["status"], json!({"old": "active", "new": "converted"}));
    assert_eq!(r3_log[1]["changes"]["order_id"], json!({"old": null, "new": o1}));

    let o1_log = entries(&gw, "order", &o1, 4).await;
    assert_eq!(actions(&o1_log), [pair("created", "alice"), a("admin-1"), a("admin-1"), a("admin-1")]);
    let moves: Vec<Value> = o1_log[1..].iter().map(|e| e["changes"].clone()).collect();
    assert_eq!(
        moves,
        [
            json!({"status": {"old": "pending", "new": "confirmed"}}),
            json!({"status": {"old": "confirmed", "new": "processing"}}),
            json!({"status": {"old": "processing", "new": "shipped"}}),
        ]
    );
    let o2_log = entries(&gw, "order", &o2, 2).await;
    assert_eq!(actions(&o2_log), [pair("created", "alice"), a("alice")]);

    // Nothing else: a moment later the counts are the same (no idempotency record, no
    // SKU claim, no double entry).
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(entries(&gw, "stock", &product, 0).await.len(), 11);
    assert_eq!(entries(&gw, "reservation", &r2, 0).await.len(), 2);
    assert_eq!(entries(&gw, "order", &o1, 0).await.len(), 4);
}

fn fixture() -> StreamEvent {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../events/audit-stream-batch.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("Lambda stream event shape")
}

#[tokio::test]
async fn the_recorded_stream_fixture_yields_its_entries_and_a_redelivery_writes_nothing_new() {
    let gw = gateway_for(app_on_fresh_table().await).await;
    let event = fixture();
    let first = handle_batch(&as_function(&gw.app, "audit"), &event, None).await;
    assert!(first.batch_item_failures.is_empty());
    let order = entries(&gw, "order", "01KFIXTUREORDER00000000000", 1).await;
    assert_eq!(order.len(), 1);
    assert_eq!((order[0]["action"].clone(), order[0]["actor"].clone()), (json!("updated"), json!("admin-1")));
    assert_eq!(order[0]["changes"], json!({"status": {"old": "pending", "new": "confirmed"}}));
    assert_eq!(order[0]["id"], "a87ff679a2f3e71d9181a67b7542122c");
    let product = entries(&gw, "product", "01KFIXTUREPRODUCT000000000", 1).await;
    assert_eq!(product[0]["changes"]["sku"], json!({"old": null, "new": "TEE-RED-M"}));

    let again = handle_batch(&as_function(&gw.app, "audit"), &event, None).await;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(entries(&gw, "order", "01KFIXTUREORDER00000000000", 0).await, order);
    assert_eq!(entries(&gw, "product", "01KFIXTUREPRODUCT000000000", 0).await, product);
}

#[tokio::test]
async fn a_poisoned_record_is_set_aside_alone_and_the_others_are_written() {
    let gw = gateway_for(app_on_fresh_table().await).await;
    let mut raw = audit_stream_fixture();
    // The product record loses its id: it can never become an entry.
    raw["Records"][0]["dynamodb"]["NewImage"].as_object_mut().expect("image").remove("id");
    let event: StreamEvent = serde_json::from_value(raw).expect("shape");
    let response = handle_batch(&as_function(&gw.app, "audit"), &event, None).await;
    assert!(response.batch_item_failures.is_empty(), "nothing to retry: it would fail again");
    let aside = gw.app.store.audit.set_aside_records().await.expect("set aside");
    let seqs: Vec<&str> = aside.iter().filter_map(|i| i.s("sequence_number").ok()).collect();
    assert_eq!(seqs, ["100000000000000000001"]);
    assert!(aside[0].s("reason").expect("reason").contains("lacks id"), "{:?}", aside[0]);
    assert_eq!(
        entries(&gw, "order", "01KFIXTUREORDER00000000000", 1).await.len(),
        1,
        "the others were written"
    );
}

#[tokio::test]
async fn the_audit_api_is_for_admins_needs_both_filters_and_pages_oldest_first() {
    let gw = gateway_for(app_on_fresh_table().await).await;
    handle_batch(&as_function(&gw.app, "audit"), &fixture(), None).await;
    let q = "/api/audit?entity_type=order&entity_id=01KFIXTUREORDER00000000000";
    let r = gw.get(q, Some(&token("alice", false))).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    for bad in [
        "/api/audit?entity_type=order",
        "/api/audit?entity_id=x",
        "/api/audit?entity_type=sku_claim&entity_id=x",
        "/api/audit?entity_type=order&entity_id=x&sort=newest",
    ] {
        let r = gw.get(bad, Some(&token("alice", false))).await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{bad}");
    }
    let r = gw.get(&format!("{q}&cursor=forged"), Some(&token("root", true))).await;
    assert_eq!((r.status, r.code()), (400, "invalid_cursor"));
    let r = gw.get("/api/audit?entity_type=order&entity_id=nothing", Some(&token("root", true))).await;
    assert_eq!(
        (r.status, r.body["items"].clone(), r.body["next_cursor"].clone()),
        (200, json!([]), json!(null))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucketed_adjustment_audits_only_the_rows_it_changed() {
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = gateway_for(app.clone()).await;
    let admin = token("admin-b", true);
    let product = gw.bucketed_product(json!({"main": 8}), 4).await;
    let adjust = |delta: i64| {
        let (gw, admin, product) = (&gw, &admin, &product);
        async move {
            let r = gw
                .post(
                    &format!("/api/products/{product}/stock"),
                    Some(admin),
                    json!({"warehouse_id": "main", "delta": delta}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
    };
    adjust(1).await; // one bucket gets the unit, three get nothing
    adjust(4).await; // every bucket gets one: the last entries the stream brings
    let all = entries(&gw, "stock", &product, 9).await;
    assert_eq!(all.len(), 9, "4 created, 1 for +1, 4 for +4: {all:?}");
    for e in &all {
        assert!(e["changes"].as_object().is_some_and(|c| !c.is_empty()), "an entry without changes: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_whose_entry_keeps_failing_to_write_is_retried_with_growing_waits_then_skipped() {
    let app = app_on_fresh_table().await;
    // No audit table: every write of an entry fails (storage trouble, not the record's).
    raw_client().await.delete_table().table_name(app.store.audit_table()).send().await.expect("delete");
    let stats = start_audit_poller(&app).await;
    let gw = gateway_for(app.clone()).await;
    let row = [
        ("pk", "P#unwritable"),
        ("sk", "STOCK#main"),
        ("entity", "stock"),
        ("product_id", "unwritable"),
        ("warehouse_id", "main"),
    ];
    put_raw(&app, &row, &[]).await;
    let give_up = Instant::now() + std::time::Duration::from_secs(30);
    while stats.skipped.lock().expect("stats").is_empty() {
        assert!(Instant::now() < give_up, "the unwritable record was never given up on");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // After it the stream goes on.
    shared::store::schema::AUDIT_TABLE
        .create(&raw_client().await, app.store.audit_table())
        .await
        .expect("table");
    let product = gw.product(json!({"main": 1})).await;
    assert_eq!(entries(&gw, "product", &product, 1).await.len(), 1, "the stream went on");
    let attempts: Vec<std::time::Instant> =
        stats.failed_attempts.lock().expect("stats").iter().map(|(_, at)| *at).collect();
    // The template's MaximumRetryAttempts is 5: the first try and five retries.
    assert_eq!(attempts.len(), 6, "{attempts:?}");
    assert_eq!(stats.skipped.lock().expect("stats").len(), 1);
    for (k, pair) in attempts.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let least = std::time::Duration::from_millis(200 << k);
        assert!(gap >= least, "retry {} came {gap:?} after the one before; at least {least:?}", k + 1);
    }
}

#[tokio::test]
async fn a_batch_of_sixty_records_is_written_in_three_requests_and_a_redelivery_changes_nothing() {
    let gw = gateway_for(app_on_fresh_table().await).await;
    let raw: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/audit-stream-batch.json"))
            .expect("fixture"),
    )
    .expect("json");
    // Sixty creations of distinct products, each its own record.
    let records: Vec<Value> = (0..60)
        .map(|i| {
            let mut r = raw["Records"][0].clone();
            let id = format!("01KBATCHPRODUCT{i:011}");
            r["eventID"] = json!(format!("batch-{i}"));
            r["dynamodb"]["SequenceNumber"] =
                json!(format!("{}", 200_000_000_000_000_000_000_u128 + i as u128));
            r["dynamodb"]["NewImage"]["id"] = json!({"S": id});
            r
        })
        .collect();
    let event: StreamEvent = serde_json::from_value(json!({"Records": records})).expect("shape");
    let audit = as_function(&gw.app, "audit");
    let before = gw.app.store.metrics().snapshot();
    let response = handle_batch(&audit, &event, None).await;
    let requests = (gw.app.store.metrics().snapshot() - before).requests;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        requests, 64,
        "25 + 25 + 10 entries with their events, one transaction each, each product read for its event, and the feed's hour marked once"
    );
    let first = entries(&gw, "product", "01KBATCHPRODUCT00000000059", 1).await;
    assert_eq!(first[0]["action"], "created");

    let again = handle_batch(&audit, &event, None).await;
    assert!(again.batch_item_failures.is_empty());
    assert_eq!(entries(&gw, "product", "01KBATCHPRODUCT00000000059", 0).await, first, "the same entry, once");
}
