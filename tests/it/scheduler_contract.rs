//! The EventBridge Scheduler adapter against moto_server, a wire-level peer of the AWS
//! API: what we send is what AWS expects, and retries of create/delete are harmless. The
//! schedules are made as the `reserve` and `order` functions make them in AWS: their
//! target, role and dead-letter queue are the ones template.yaml gives the `reserve`
//! function, and every call is held to the template's IAM policies (the caller's
//! scheduler actions and `iam:PassRole`, the role's trust and its right to invoke the
//! target and to send to the queue).

use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindowMode};
use shared::adapters::clock::SystemClock;
use shared::adapters::scheduler::EventBridgeTarget;
use shared::config::Config;
use shared::iam::policy::{Template, EMBEDDED_TEMPLATE};
use std::sync::Arc;

/// A configuration whose expiry schedules go to moto, aimed as the template aims them for
/// the `reserve` function (in the group the local stack names as the template's).
async fn scheduler_config() -> (Config, EventBridgeTarget, aws_sdk_scheduler::Client) {
    let endpoint = std::env::var("SCHEDULER_ENDPOINT")
        .expect("SCHEDULER_ENDPOINT is not set: run with `make test`, which starts moto_server");
    let mut config = Config::from_env().expect("config");
    config.scheduler_endpoint = Some(endpoint.clone());
    let names = config.local_names();
    let group = names.0["ExpiryScheduleGroup"].clone();
    let template = Template::parse(EMBEDDED_TEMPLATE, &names).expect("template");
    let env = &template.function("reserve").expect("reserve").environment;
    let target = EventBridgeTarget {
        group: group.clone(),
        function_arn: env["EXPIRE_FUNCTION_ARN"].clone(),
        role_arn: env["SCHEDULER_ROLE_ARN"].clone(),
        dead_letter_arn: env.get("EXPIRY_DLQ_ARN").cloned(),
    };
    config.scheduler = Some(target.clone());
    let sdk = config.sdk_config().await;
    let client = aws_sdk_scheduler::Client::from_conf(
        aws_sdk_scheduler::config::Builder::from(&sdk).endpoint_url(&endpoint).build(),
    );
    // The stack made the group (with-stack.sh), once: moto's CreateScheduleGroup replaces
    // an existing group with its schedules, so a test that made it would drop the other's.
    client.get_schedule_group().name(&group).send().await.expect("the stack's schedule group");
    (config, target, client)
}

#[tokio::test]
async fn a_reservation_schedule_is_a_one_off_utc_at_schedule_that_deletes_itself_and_invokes_expire() {
    let (config, target, client) = scheduler_config().await;
    let group = target.group.clone();
    let reserve = shared::functions::RESERVE.app(&config, Arc::new(SystemClock)).await.expect("reserve");
    let order = shared::functions::ORDER.app(&config, Arc::new(SystemClock)).await.expect("order");
    let scheduler = reserve.scheduler.clone();
    let id = ulid::Ulid::new().to_string();
    let expires_at = chrono::DateTime::parse_from_rfc3339("2030-01-02T03:04:05.250Z").expect("time").to_utc();
    scheduler.schedule(&id, expires_at).await.expect("create");
    scheduler.schedule(&id, expires_at).await.expect("creating it again (a retry) is success");

    let name = shared::adapters::scheduler::schedule_name(&id, expires_at);
    assert_eq!(name, format!("{id}-1893553445250"), "the reservation and its time in milliseconds");
    let got = client.get_schedule().name(&name).group_name(&group).send().await.expect("get");
    assert_eq!(got.name(), Some(name.as_str()));
    assert_eq!(got.group_name(), Some(group.as_str()));
    assert_eq!(got.schedule_expression(), Some("at(2030-01-02T03:04:06)"), "rounded up, never early");
    assert_eq!(got.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(got.flexible_time_window().map(|w| w.mode()), Some(&FlexibleTimeWindowMode::Off));
    assert_eq!(got.action_after_completion(), Some(&ActionAfterCompletion::Delete));
    let t = got.target().expect("target");
    assert_eq!(t.arn(), target.function_arn);
    assert_eq!(t.role_arn(), target.role_arn);
    let input: serde_json::Value = serde_json::from_str(t.input().expect("input")).expect("json input");
    assert_eq!(input, serde_json::json!({"reservation_ids": [id]}));
    let retry = t.retry_policy().expect("retry policy");
    assert_eq!(
        (retry.maximum_retry_attempts(), retry.maximum_event_age_in_seconds()),
        (Some(10), Some(3600))
    );
    assert_eq!(t.dead_letter_config().and_then(|d| d.arn()), target.dead_letter_arn.as_deref());

    // Converting the hold into an order deletes its schedule (the `order` function).
    order.scheduler.cancel(&id, expires_at).await.expect("delete");
    let gone = client.get_schedule().name(&name).group_name(&group).send().await;
    assert!(gone.is_err(), "deleted");
    // Releasing it deletes it too (the `reserve` function); a missing one is success.
    scheduler.cancel(&id, expires_at).await.expect("deleting a missing schedule is success");

    // An extension makes the new end's schedule before it deletes the old one's.
    let later = expires_at + chrono::Duration::minutes(10);
    scheduler.schedule(&id, expires_at).await.expect("create");
    scheduler.reschedule(&id, expires_at, later).await.expect("move");
    let moved = shared::adapters::scheduler::schedule_name(&id, later);
    assert!(client.get_schedule().name(&moved).group_name(&group).send().await.is_ok(), "the new one");
    assert!(client.get_schedule().name(&name).group_name(&group).send().await.is_err(), "the old one gone");
    scheduler.cancel(&id, later).await.expect("delete");

    // A cart's lines share one schedule, named apart from them, whose run ends them all.
    let cart = ulid::Ulid::new().to_string();
    let lines: Vec<String> = (0..25).map(|_| ulid::Ulid::new().to_string()).collect();
    scheduler.schedule_many(&cart, &lines, expires_at).await.expect("create");
    let name = shared::adapters::scheduler::schedule_name(&cart, expires_at);
    let got = client.get_schedule().name(&name).group_name(&group).send().await.expect("get");
    let input: serde_json::Value =
        serde_json::from_str(got.target().and_then(|t| t.input()).expect("input")).expect("json");
    assert_eq!(input, serde_json::json!({ "reservation_ids": lines }));
    scheduler.cancel(&cart, expires_at).await.expect("delete");
}

#[tokio::test]
async fn a_schedule_aimed_anywhere_but_the_expire_function_through_its_role_is_refused() {
    let (config, target, _) = scheduler_config().await;
    let template = Template::parse(EMBEDDED_TEMPLATE, &config.local_names()).expect("template");
    let sweep_arn = template.function("sweep").expect("sweep").arn.clone();
    let at = chrono::Utc::now() + chrono::Duration::hours(1);
    for (what, wrong) in [
        ("another function", EventBridgeTarget { function_arn: sweep_arn, ..target.clone() }),
        (
            "another role",
            EventBridgeTarget { role_arn: "arn:aws:iam::123456789012:role/admin".into(), ..target.clone() },
        ),
        ("another group", EventBridgeTarget { group: "default".into(), ..target.clone() }),
    ] {
        let mut c = config.clone();
        c.scheduler = Some(wrong);
        let reserve = shared::functions::RESERVE.app(&c, Arc::new(SystemClock)).await.expect("reserve");
        let err = reserve.scheduler.schedule(&ulid::Ulid::new().to_string(), at).await.expect_err(what);
        assert!(err.to_string().contains("AccessDenied"), "{what}: {err}");
    }
}
