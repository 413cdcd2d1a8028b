//! Concurrency: many buyers at once never oversell, and units are conserved.

use futures::future::join_all;
use serde_json::json;
use std::collections::BTreeMap;
use stockhold_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_200_buyers_race_for_50_units_exactly_50_win() {
    let gw = gateway().await;
    let id = gw.product(json!({"main": 50})).await;
    let run = unique("buyer");
    let replies =
        join_all(
            (0..200).map(|i| {
                let gw = &gw;
                let id = id.clone();
                let t = token(&format!("{run}-{i}"), false);
                async move {
                    gw.post("/api/reservations", Some(&t), json!({"product_id": id, "quantity": 1})).await
                }
            }),
        )
        .await;
    let mut by_outcome: BTreeMap<(u16, String), usize> = BTreeMap::new();
    for r in &replies {
        *by_outcome.entry((r.status, r.code().to_string())).or_default() += 1;
    }
    assert_eq!(
        by_outcome,
        BTreeMap::from([((201, String::new()), 50), ((409, "insufficient_stock".to_string()), 150)])
    );
    assert_eq!(gw.stock_of(&id, "main").await, (50, 50, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_quantities_never_reserve_more_than_was_available() {
    let gw = gateway().await;
    let id = gw.product(json!({"main": 60, "east": 20})).await;
    let run = unique("mix");
    let replies = join_all((0..80).map(|i| {
        let gw = &gw;
        let id = id.clone();
        let t = token(&format!("{run}-{i}"), false);
        async move {
            let q = 1 + (i * 7) % 5;
            (q, gw.post("/api/reservations", Some(&t), json!({"product_id": id, "quantity": q})).await)
        }
    }))
    .await;
    let mut held: BTreeMap<String, i64> = BTreeMap::new();
    for (q, r) in &replies {
        match r.status {
            201 => *held.entry(r.body["warehouse_id"].as_str().expect("w").to_string()).or_default() += q,
            409 => assert_eq!(r.code(), "insufficient_stock"),
            s => panic!("unexpected {s}: {}", r.body),
        }
    }
    for (w, on_hand) in [("main", 60), ("east", 20)] {
        let reserved = held.get(w).copied().unwrap_or(0);
        assert!(reserved <= on_hand);
        assert_eq!(gw.stock_of(&id, w).await, (on_hand, reserved, on_hand - reserved), "{w}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn releases_racing_new_reservations_conserve_units() {
    let gw = gateway().await;
    let id = gw.product(json!({"main": 20})).await;
    let run = unique("churn");
    let first: Vec<(String, String)> = join_all((0..20).map(|i| {
        let gw = &gw;
        let id = id.clone();
        let t = token(&format!("{run}-a{i}"), false);
        async move {
            let r = gw.post("/api/reservations", Some(&t), json!({"product_id": id, "quantity": 1})).await;
            assert_eq!(r.status, 201, "{}", r.body);
            (t, r.body["id"].as_str().expect("id").to_string())
        }
    }))
    .await;
    assert_eq!(gw.stock_of(&id, "main").await, (20, 20, 0));
    // Each holder releases twice while 30 newcomers try to reserve.
    let releases = first.iter().flat_map(|(t, rid)| {
        let gw = &gw;
        (0..2).map(move |_| async move {
            let r = gw.send("DELETE", &format!("/api/reservations/{rid}"), Some(t), None).await;
            assert_eq!(r.status, 200, "{}", r.body);
            0
        })
    });
    let newcomers = (0..30).map(|i| {
        let gw = &gw;
        let id = id.clone();
        let t = token(&format!("{run}-b{i}"), false);
        async move {
            let r = gw.post("/api/reservations", Some(&t), json!({"product_id": id, "quantity": 1})).await;
            assert!(r.status == 201 || r.code() == "insufficient_stock", "{}", r.body);
            i64::from(r.status == 201)
        }
    });
    let (_, won) = tokio::join!(join_all(releases), join_all(newcomers));
    let won: i64 = won.iter().sum();
    assert!(won <= 20);
    assert_eq!(gw.stock_of(&id, "main").await, (20, won, 20 - won));
}
