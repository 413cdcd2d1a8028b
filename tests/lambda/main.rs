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

/// How long one invoke may take, the function's first build under the watch included
/// (the binaries are built before the tests run; this covers a rebuild of one).
const INVOKE_WITHIN: Duration = Duration::from_secs(600);

struct Watch {
    child: Child,
    port: u16,
    /// What the functions printed (through `cargo lambda watch`).
    output: std::path::PathBuf,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

impl Watch {
    fn start(app: &shared::service::App, bus: (&str, &str)) -> Self {
        let port = free_port();
        let output = std::env::temp_dir().join(format!("stockhold-lambda-{port}.log"));
        let out = std::fs::File::create(&output).expect("output file");
        let err = out.try_clone().expect("output file");
        let endpoint = std::env::var("DYNAMODB_ENDPOINT").expect("DYNAMODB_ENDPOINT");
        // The binaries run as on the local stack: each held to its IAM policy in the
        // template, recording what it used for `iam-coverage`.
        let usage = std::env::var("IAM_USAGE_DIR").ok().map(|d| format!("IAM_USAGE_DIR={d}"));
        let child = Command::new("cargo")
            .current_dir(root())
            // The local form (shared's `local`: each binary held to its IAM policy), as
            // `make sam-local` builds it too; `make deploy` builds without it.
            .args(["lambda", "watch", "--ignore-changes", "--features", "local", "-P", &port.to_string()])
            .args(usage.iter().flat_map(|u| ["--env-var", u.as_str()]))
            .args(["--env-var", &format!("TABLE_NAME={}", app.store.table())])
            .args(["--env-var", &format!("AUDIT_TABLE_NAME={}", app.store.audit_table())])
            .args(["--env-var", &format!("DYNAMODB_ENDPOINT={endpoint}")])
            // As Lambda sets them from the template's LoggingConfig, at a level that
            // leaves out the info lines (the test checks that it did).
            .args(["--env-var", "AWS_LAMBDA_LOG_FORMAT=JSON", "--env-var", "AWS_LAMBDA_LOG_LEVEL=WARN"])
            .args(["--env-var", "METRICS_NAMESPACE=stockhold-test"])
            // The publish function's bus, on moto's EventBridge (`every_function_...`).
            .args(["--env-var", &format!("EVENT_BUS_NAME={}", bus.0)])
            .args(["--env-var", &format!("EVENTBRIDGE_ENDPOINT={}", bus.1)])
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect(
                "`cargo lambda` not found: `make test` installs cargo-lambda into .venv and puts it on PATH",
            );
        let watch = Self { child, port, output };
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
        // Answers go to files (a pipe could fill before the invoke exits), and the invoke
        // is given a deadline: a binary that does not build leaves `cargo lambda invoke`
        // waiting for good, which would hang `make test` instead of failing it.
        let dir = std::env::temp_dir();
        let (stdout, stderr) = (
            dir.join(format!("stockhold-invoke-{}-{function}.out", self.port)),
            dir.join(format!("stockhold-invoke-{}-{function}.err", self.port)),
        );
        let mut child = Command::new("cargo")
            .current_dir(root())
            .args(["lambda", "invoke", function, "-P", &self.port.to_string(), "--output-format", "json"])
            .args(["--data-ascii", &data])
            .stdout(Stdio::from(std::fs::File::create(&stdout).expect("output file")))
            .stderr(Stdio::from(std::fs::File::create(&stderr).expect("output file")))
            .spawn()
            .expect("cargo lambda invoke");
        let deadline = Instant::now() + INVOKE_WITHIN;
        let status = loop {
            if let Some(status) = child.try_wait().expect("cargo lambda invoke") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let log = std::fs::read_to_string(&self.output).unwrap_or_default();
                let tail: String = log
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                panic!(
                    "{function} {fixture_name}: no answer within {INVOKE_WITHIN:?}; the watch said:\n{tail}"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let out = std::process::Output {
            status,
            stdout: std::fs::read(&stdout).unwrap_or_default(),
            stderr: std::fs::read(&stderr).unwrap_or_default(),
        };
        let _ = (std::fs::remove_file(&stdout), std::fs::remove_file(&stderr));
        json_output(function, fixture_name, &out, |all| all)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_binary_answers_its_fixtures_under_cargo_lambda() {
    let app = app_on_fresh_table().await;
    seed_product(&app).await;
    // A bus of the test's own on moto's EventBridge, for the publish function.
    let moto = std::env::var("SCHEDULER_ENDPOINT").expect("SCHEDULER_ENDPOINT (moto_server; run make test)");
    let bus = unique("lambda-bus");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_eventbridge::config::Credentials::new(
            "local", "local", None, None, "test",
        ))
        .load()
        .await;
    let events = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&sdk).endpoint_url(&moto).build(),
    );
    events.create_event_bus().name(&bus).send().await.expect("create the bus");
    let w = Watch::start(&app, (&bus, &moto));
    every_function_answers_its_fixtures(&app, &w).await;
    // publish: a batch of the audit table's stream, its feed item put on the bus (an
    // audit entry in the batch is no event).
    let r = w.invoke("publish", "publish-stream-batch.json", &[]);
    assert_eq!(r, serde_json::json!({"batchItemFailures": []}));
    let printed = std::fs::read_to_string(&w.output).unwrap_or_default();
    let _ = std::fs::remove_file(&w.output);
    check_logs_and_metrics(&printed);
}

/// What operators get from the functions: EMF lines that CloudWatch turns into the
/// business metrics the template's alarms and dashboard use, and JSON log lines at the
/// level `AWS_LAMBDA_LOG_LEVEL` asked for.
fn check_logs_and_metrics(printed: &str) {
    let lines: Vec<Value> = printed
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(Value::is_object)
        .collect();
    let metric = |name: &str, function: &str| -> Vec<Value> {
        lines
            .iter()
            .filter(|l| l.get("_aws").is_some() && l["Function"] == function && l.get(name).is_some())
            .cloned()
            .collect()
    };
    for l in lines.iter().filter(|l| l.get("_aws").is_some()) {
        let decl = &l["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(decl["Namespace"], "stockhold-test", "{l}");
        let name = decl["Metrics"][0]["Name"].as_str().unwrap_or_default();
        assert!(l[name].is_u64(), "the declared metric's value is on the line: {l}");
        // Kept by Lambda's log-level filter at AWS_LAMBDA_LOG_LEVEL=WARN (a line without
        // a level counts as INFO and would be dropped), with its invocation's id.
        assert_eq!(l["level"], "WARN", "{l}");
        assert!(l["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{l}");
    }
    // Each function counts its cold start, once: cargo lambda runs one process per function.
    for function in [
        "products",
        "reserve",
        "order",
        "transition",
        "list",
        "audit-api",
        "expire",
        "sweep",
        "audit",
        "reconcile",
        "publish",
    ] {
        let cold = metric("ColdStarts", function);
        assert_eq!(cold.len(), 1, "{function}: {cold:?}");
    }
    // Two holds over HTTP (one single, one cart of one line); the replayed request and
    // the hold made in-process are not the functions'.
    let created: u64 = metric("ReservationsCreated", "reserve")
        .iter()
        .filter_map(|l| l["ReservationsCreated"].as_u64())
        .sum();
    assert_eq!(created, 2, "reservations created: {printed}");
    let confirmed = metric("OrderStatusChanged", "transition");
    assert_eq!((confirmed.len(), &confirmed[0]["Status"]), (1, &serde_json::json!("confirmed")), "{printed}");
    // The sweep reports every run, zero included, so its alarm always has data.
    let overdue = metric("OverdueHoldsFoundBySweep", "sweep");
    assert_eq!(
        overdue.iter().map(|l| l["OverdueHoldsFoundBySweep"].clone()).collect::<Vec<_>>(),
        [serde_json::json!(0)]
    );
    assert!(!metric("AuditRecordsWritten", "audit").is_empty(), "audit entries counted: {printed}");
    let published: Vec<Value> = metric("EventsPublished", "publish");
    assert_eq!(published.iter().filter_map(|l| l["EventsPublished"].as_u64()).sum::<u64>(), 1, "{printed}");
    // Log lines: JSON with what Lambda's JSON format and Logs Insights read, and none
    // below WARN.
    let logs: Vec<&Value> =
        lines.iter().filter(|l| l.get("_aws").is_none() && l.get("level").is_some()).collect();
    for l in &logs {
        assert!(l["timestamp"].is_string() && l.get("message").is_some(), "log shape: {l}");
        assert!(
            matches!(l["level"].as_str(), Some("WARN" | "ERROR")),
            "AWS_LAMBDA_LOG_LEVEL=WARN let through {l}"
        );
    }
}
