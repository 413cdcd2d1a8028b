//! The same Lambda-level checks as `tests/lambda`, with every function's `sam build`
//! artifact (arm64) running under SAM's own Lambda emulator (`sam local invoke`, the
//! Runtime Interface Emulator in a container). Run by `make sam-local`
//! (infra/scripts/sam-local.sh), which starts the container engine and passes:
//! `SAM_LOCAL_DYNAMODB_ENDPOINT` (DynamoDB Local as the containers reach it) and
//! `DOCKER_HOST`. Not part of `cargo test`'s default run (it needs that setup).

#[path = "../lambda/scenario.rs"]
mod scenario;

use scenario::{every_function_answers_its_fixtures, fixture, root, seed_product, Invoker};
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
                ".aws-sam/build/template.yaml",
            ])
            .arg("--event")
            .arg(&event)
            .arg("--env-vars")
            .arg(&self.env_file)
            .env("SAM_CLI_TELEMETRY", "0")
            .output()
            .expect("`sam` (make deps installs it into .venv)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprintln!("sam local invoke {logical} {fixture_name}: {:.1} s", started.elapsed().as_secs_f64());
        assert!(out.status.success(), "{function} {fixture_name}: {}", String::from_utf8_lossy(&out.stderr));
        let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_default();
        serde_json::from_str(line).unwrap_or_else(|e| {
            panic!("{function} output is not JSON ({e}): {stdout}\n{}", String::from_utf8_lossy(&out.stderr))
        })
    }
}

impl Drop for SamLocal {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_answers_its_fixtures_under_sam_local_invoke() {
    let app = app_on_fresh_table().await;
    seed_product(&app).await;
    let sam = SamLocal::new(&app);
    every_function_answers_its_fixtures(&app, &sam).await;
}
