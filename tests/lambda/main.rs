//! Lambda-level tests: each real function binary runs under `cargo lambda watch` (the
//! Lambda runtime emulator) against DynamoDB Local and is invoked with the fixtures in
//! `events/`, as `cargo lambda invoke --data-file` and `sam local invoke -e` would. This
//! covers what the in-process tests bypass: `main.rs` wiring, configuration from the
//! environment, and event decoding and encoding.

mod scenario;

use scenario::{every_function_answers_its_fixtures, fixture, json_output, root, seed_product, Invoker};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use stockhold_tests::*;

struct Watch {
    child: Child,
    port: u16,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

impl Watch {
    fn start(app: &shared::service::App) -> Self {
        let port = free_port();
        let endpoint = std::env::var("DYNAMODB_ENDPOINT").expect("DYNAMODB_ENDPOINT");
        // The binaries run as on the local stack: each held to its IAM policy in the
        // template, recording what it used for `iam-coverage`.
        let usage = std::env::var("IAM_USAGE_DIR").ok().map(|d| format!("IAM_USAGE_DIR={d}"));
        let child = Command::new("cargo")
            .current_dir(root())
            .args(["lambda", "watch", "--ignore-changes", "-P", &port.to_string()])
            .args(usage.iter().flat_map(|u| ["--env-var", u.as_str()]))
            .args(["--env-var", &format!("TABLE_NAME={}", app.store.table())])
            .args(["--env-var", &format!("AUDIT_TABLE_NAME={}", app.store.audit_table())])
            .args(["--env-var", &format!("DYNAMODB_ENDPOINT={endpoint}")])
            .args(["--env-var", "LOG_FORMAT=text", "--env-var", "RUST_LOG=warn"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "`cargo lambda` not found: `make test` installs cargo-lambda into .venv and puts it on PATH",
            );
        let watch = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "cargo lambda watch did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        watch
    }
}

impl Invoker for Watch {
    fn invoke(&self, function: &str, fixture_name: &str, ids: &[(&str, &str)]) -> Value {
        let data = fixture(fixture_name, ids);
        let out = Command::new("cargo")
            .current_dir(root())
            .args(["lambda", "invoke", function, "-P", &self.port.to_string(), "--output-format", "json"])
            .args(["--data-ascii", &data])
            .output()
            .expect("cargo lambda invoke");
        json_output(function, fixture_name, &out, |all| all)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_binary_answers_its_fixtures_under_cargo_lambda() {
    let app = app_on_fresh_table().await;
    seed_product(&app).await;
    let w = Watch::start(&app);
    every_function_answers_its_fixtures(&app, &w).await;
}
