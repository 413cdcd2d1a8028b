//! The cursor key: read from its Secrets Manager secret (moto_server here) at cold start by
//! exactly the functions that make or read cursors, through their IAM policy; no other
//! function may read it, and it is in no function's configuration.

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use shared::adapters::clock::SystemClock;
use shared::config::Config;
use shared::domain::cursor::CursorCodec;
use shared::functions::ALL;
use shared::iam::policy::{Template, EMBEDDED_TEMPLATE};
use std::sync::Arc;

#[tokio::test]
async fn the_functions_with_cursors_read_their_key_from_the_secret_and_no_other_function_may() {
    let endpoint = std::env::var("SCHEDULER_ENDPOINT")
        .expect("SCHEDULER_ENDPOINT is not set: run with `make test`, which starts moto_server");
    let mut config = Config::from_env().expect("config");
    config.secrets_endpoint = Some(endpoint.clone());
    let template = Template::parse(EMBEDDED_TEMPLATE, &config.local_names()).expect("template");
    let arn = template.function("list").expect("list").environment["CURSOR_SECRET_ARN"].clone();
    let name = arn.rsplit(':').next().expect("name").to_string();
    let sdk = config.sdk_config().await;
    let admin = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&sdk).endpoint_url(&endpoint).build(),
    );
    let key = format!("cursor-key-{}", ulid::Ulid::new());
    if admin.create_secret().name(&name).secret_string(&key).send().await.is_err() {
        admin.put_secret_value().secret_id(&name).secret_string(&key).send().await.expect("set the secret");
    }
    config.cursor_secret_arn = Some(arn.clone());

    let by_key = CursorCodec::new(key.as_bytes());
    for function in ALL.iter().filter(|f| f.cursors) {
        let f = function.name;
        assert_eq!(template.function(f).expect(f).environment.get("CURSOR_SECRET_ARN"), Some(&arn), "{f}");
        let app = function.app(&config, Arc::new(SystemClock)).await.unwrap_or_else(|e| panic!("{f}: {e}"));
        let cursor = app.config.cursors.encode("binding", "position").expect("encode");
        assert_eq!(
            by_key.decode("binding", &cursor).expect("signed with the secret's key"),
            "position",
            "{f}"
        );
    }
    for f in &template.functions {
        let set = |k: &str| f.environment.get(k).is_some_and(|v| !v.is_empty());
        assert!(!set("CURSOR_SECRET"), "{}: the key itself is in its configuration", f.binary);
        if ALL.iter().any(|c| c.cursors && c.name == f.binary) {
            continue;
        }
        assert!(!set("CURSOR_SECRET_ARN"), "{}", f.binary);
        // Were it to try, IAM would refuse it.
        let app = config.build_app(Arc::new(SystemClock)).await.expect("app");
        let guard = app
            .local_iam()
            .expect("local IAM")
            .client_for(&f.binary, shared::iam::Service::SecretsManager)
            .expect("guard");
        let client = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(&sdk)
                .endpoint_url(&endpoint)
                .http_client(guard)
                .build(),
        );
        let denied = client.get_secret_value().secret_id(&arn).send().await.expect_err("refused");
        assert_eq!(denied.code(), Some("AccessDeniedException"), "{}: {denied:?}", f.binary);
    }
}
