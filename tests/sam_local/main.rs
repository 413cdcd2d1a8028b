//! The same Lambda-level checks as `tests/lambda`, with every function's `sam build`
//! artifact (arm64) running under SAM's own Lambda emulator (`sam local invoke`, the
//! Runtime Interface Emulator in a container). Run by `make sam-local`
//! (infra/scripts/sam-local.sh), which starts the container engine and passes:
//! `SAM_LOCAL_DYNAMODB_ENDPOINT` (DynamoDB Local as the containers reach it) and
//! `DOCKER_HOST`. Not part of `cargo test`'s default run (it needs that setup).

#[path = "../lambda/scenario.rs"]
mod scenario;

use scenario::{every_function_answers_its_fixtures, fixture, json_output, root, seed_product, Invoker};
use serde_json::{json, Value};
use shared::iam::policy::{LocalNames, Template, EMBEDDED_TEMPLATE};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;
use stockhold_tests::*;

struct SamLocal {
    /// binary name -> the template's logical id
    logical: HashMap<String, String>,
    env_file: PathBuf,
    work: PathBuf,
}

impl SamLocal {
    fn new(app: &shared::service::App) -> Self {
        let endpoint = std::env::var("SAM_LOCAL_DYNAMODB_ENDPOINT")
            .expect("SAM_LOCAL_DYNAMODB_ENDPOINT is not set: run `make sam-local`");
        let template = Template::parse(EMBEDDED_TEMPLATE, &LocalNames::default()).expect("template");
        let logical = template.functions.iter().map(|f| (f.binary.clone(), f.logical_id.clone())).collect();
        let work = std::env::temp_dir().join(format!("stockhold-sam-local-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&work).expect("work dir");
        // The same configuration the cargo-lambda run gives the binaries; no schedules
        // (the template's targets are AWS ARNs), the development cursor key.
        let env = json!({"Parameters": {
            "TABLE_NAME": app.store.table(),
            "AUDIT_TABLE_NAME": app.store.audit_table(),
            "DYNAMODB_ENDPOINT": endpoint,
            "EXPIRE_FUNCTION_ARN": "",
            "SCHEDULER_ROLE_ARN": "",
            "EXPIRY_DLQ_ARN": "",
            "CURSOR_SECRET_ARN": "",
            "LOG_FORMAT": "text",
            "RUST_LOG": "warn",
        }});
        let env_file = work.join("env.json");
        std::fs::write(&env_file, env.to_string()).expect("env file");
        Self { logical, env_file, work }
    }
}

impl Invoker for SamLocal {
    fn invoke(&self, function: &str, fixture_name: &str, ids: &[(&str, &str)]) -> Value {
        let event = self.work.join(format!("{}.json", ulid::Ulid::new()));
        std::fs::write(&event, fixture(fixture_name, ids)).expect("event file");
        let logical = &self.logical[function];
        let started = Instant::now();
        let out = Command::new("sam")
            .current_dir(root())
            .args([
                "local",
                "invoke",
                logical,
                "--skip-pull-image",
                "--template",
                ".aws-sam/local/template.yaml",
            ])
            .arg("--event")
            .arg(&event)
            .arg("--env-vars")
            .arg(&self.env_file)
            .env("SAM_CLI_TELEMETRY", "0")
            .output()
            .expect("`sam` (make deps installs it into .venv)");
        eprintln!("sam local invoke {logical} {fixture_name}: {:.1} s", started.elapsed().as_secs_f64());
        json_output(function, fixture_name, &out, |all| {
            all.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_default()
        })
    }
}

impl Drop for SamLocal {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// `sam local start-api` serving the HTTP routes on 127.0.0.1; stopped when dropped.
struct StartApi(std::process::Child);

impl Drop for StartApi {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}

/// What `sam local start-api` can and cannot play of API Gateway: it routes every HTTP
/// route of the template to its function with an HTTP API v2 event, but it does not run a
/// JWT authorizer, so no claims reach the functions (in AWS the authorizer would have
/// refused a request without a valid token before the function ran). Public routes answer
/// as in AWS; private ones answer the function's own 401, which proves the routing but not
/// the authorizer (the local gateway's authorizer is tested in tests/it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_routes_answer_under_sam_local_start_api() {
    let app = app_on_fresh_table().await;
    seed_product(&app).await;
    let sam = SamLocal::new(&app);
    let port = free_port();
    let child = Command::new("sam")
        .current_dir(root())
        .args(["local", "start-api", "--skip-pull-image", "--template", ".aws-sam/local/template.yaml"])
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--warm-containers", "LAZY"])
        .arg("--env-vars")
        .arg(&sam.env_file)
        .env("SAM_CLI_TELEMETRY", "0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("`sam` (make deps installs it into .venv)");
    let _api = StartApi(child);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready_by = Instant::now() + std::time::Duration::from_secs(120);
    let first = loop {
        if let Ok(r) = http.get(format!("{base}/api/products")).send().await {
            break r;
        }
        assert!(Instant::now() < ready_by, "sam local start-api did not answer");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert_eq!(first.status(), 200);
    let list: Value = first.json().await.expect("json");
    assert_eq!(list["items"][0]["id"], scenario::PRODUCT);
    let one = http.get(format!("{base}/api/products/{}", scenario::PRODUCT)).send().await.expect("get");
    assert_eq!(one.status(), 200);
    let spec = http.get(format!("{base}/api/openapi.json")).send().await.expect("spec");
    assert_eq!(spec.status(), 200);
    let private = http.get(format!("{base}/api/orders")).send().await.expect("orders");
    assert_eq!(private.status(), 401, "no authorizer, no claims: the function's own 401");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_answers_its_fixtures_under_sam_local_invoke() {
    let app = app_on_fresh_table().await;
    seed_product(&app).await;
    let sam = SamLocal::new(&app);
    every_function_answers_its_fixtures(&app, &sam).await;
}
