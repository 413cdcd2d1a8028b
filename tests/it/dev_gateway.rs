//! The real `gateway` binary, configured the way `make dev` configures it: its wiring,
//! environment, local scheduler and graceful shutdown.

use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use stockhold_tests::*;

fn gateway_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let bin = exe.parent().and_then(|deps| deps.parent()).expect("target dir").join("gateway");
    assert!(bin.exists(), "{} is missing: `make test` builds it first", bin.display());
    bin
}

async fn get_json(http: &reqwest::Client, url: &str) -> Option<Value> {
    let resp = http.get(url).send().await.ok()?;
    if resp.status() != 200 {
        return None;
    }
    resp.json().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_2_second_ttl_units_are_back_on_sale_within_2_seconds_of_expiry() {
    let port = free_port();
    let mut child = Command::new(gateway_binary())
        .env("PORT", port.to_string())
        .env("RESERVATION_TTL_SECONDS", "2")
        .env("SWEEP_INTERVAL_SECONDS", "3600")
        .env("TABLE_NAME", unique("dev"))
        .env("JWT_SECRET", SECRET)
        .env("LOG_FORMAT", "text")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start gateway");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready_by = Instant::now() + Duration::from_secs(30);
    while get_json(&http, &format!("{base}/api/products")).await.is_none() {
        assert!(Instant::now() < ready_by, "gateway did not become ready");
        assert!(child.try_wait().expect("status").is_none(), "gateway exited early");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let admin = token("admin", true);
    let product: Value = http
        .post(format!("{base}/api/products"))
        .bearer_auth(&admin)
        .json(&json!({"sku": unique("TTL"), "name": "n", "price_cents": 1, "stock": {"main": 10}}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let pid = product["id"].as_str().expect("id").to_string();
    let mut last_expiry = chrono::DateTime::<chrono::Utc>::MIN_UTC;
    for i in 0..3 {
        let r: Value = http
            .post(format!("{base}/api/reservations"))
            .bearer_auth(token(&format!("buyer-{i}"), false))
            .json(&json!({"product_id": pid, "quantity": 2}))
            .send()
            .await
            .expect("reserve")
            .json()
            .await
            .expect("json");
        let at = chrono::DateTime::parse_from_rfc3339(r["expires_at"].as_str().expect("expires_at"))
            .expect("time");
        last_expiry = last_expiry.max(at.to_utc());
    }
    // Wait for the event we care about: every unit available again.
    let give_up = Instant::now() + Duration::from_secs(10);
    let back_at = loop {
        let p = get_json(&http, &format!("{base}/api/products/{pid}")).await.expect("product");
        if p["available"] == 10 {
            break chrono::Utc::now();
        }
        assert!(Instant::now() < give_up, "units never came back: {p}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let delay = back_at - last_expiry;
    assert!(delay <= chrono::Duration::seconds(2), "units back {delay} after expiry");

    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().expect("kill");
    let status = tokio::task::spawn_blocking(move || child.wait()).await.expect("join").expect("wait");
    assert!(status.success(), "graceful shutdown on SIGTERM, got {status}");
}
