//! The EventBridge Scheduler adapter against moto_server, a wire-level peer of the AWS
//! API: what we send is what AWS expects, and retries of create/delete are harmless.

use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindowMode};
use shared::adapters::scheduler::EventBridgeTarget;
use shared::config::Config;
use stockhold_tests::*;

#[tokio::test]
async fn a_reservation_schedule_is_a_one_off_utc_at_schedule_that_deletes_itself_and_invokes_expire() {
    let endpoint = std::env::var("SCHEDULER_ENDPOINT")
        .expect("SCHEDULER_ENDPOINT is not set: run with `make test`, which starts moto_server");
    let group = unique("expiry");
    let target = EventBridgeTarget {
        group: group.clone(),
        function_arn: "arn:aws:lambda:us-east-1:123456789012:function:stockhold-expire".into(),
        role_arn: "arn:aws:iam::123456789012:role/stockhold-scheduler".into(),
        dead_letter_arn: Some("arn:aws:sqs:us-east-1:123456789012:stockhold-expiry-dlq".into()),
    };
    let mut config = Config::from_env().expect("config");
    config.scheduler = Some(target.clone());
    config.scheduler_endpoint = Some(endpoint.clone());
    let sdk = config.sdk_config().await;
    let client = aws_sdk_scheduler::Client::from_conf(
        aws_sdk_scheduler::config::Builder::from(&sdk).endpoint_url(&endpoint).build(),
    );
    client.create_schedule_group().name(&group).send().await.expect("create group");
    let scheduler = config.scheduler(&sdk);

    let id = ulid::Ulid::new().to_string();
    let expires_at = chrono::DateTime::parse_from_rfc3339("2030-01-02T03:04:05.250Z").expect("time").to_utc();
    scheduler.schedule(&id, expires_at).await.expect("create");
    scheduler.schedule(&id, expires_at).await.expect("creating it again (a retry) is success");

    let got = client.get_schedule().name(&id).group_name(&group).send().await.expect("get");
    assert_eq!(got.name(), Some(id.as_str()));
    assert_eq!(got.group_name(), Some(group.as_str()));
    assert_eq!(got.schedule_expression(), Some("at(2030-01-02T03:04:06)"), "rounded up, never early");
    assert_eq!(got.schedule_expression_timezone(), Some("UTC"));
    assert_eq!(got.flexible_time_window().map(|w| w.mode()), Some(&FlexibleTimeWindowMode::Off));
    assert_eq!(got.action_after_completion(), Some(&ActionAfterCompletion::Delete));
    let t = got.target().expect("target");
    assert_eq!(t.arn(), target.function_arn);
    assert_eq!(t.role_arn(), target.role_arn);
    let input: serde_json::Value = serde_json::from_str(t.input().expect("input")).expect("json input");
    assert_eq!(input, serde_json::json!({"reservation_id": id}));
    let retry = t.retry_policy().expect("retry policy");
    assert_eq!(
        (retry.maximum_retry_attempts(), retry.maximum_event_age_in_seconds()),
        (Some(10), Some(3600))
    );
    assert_eq!(t.dead_letter_config().and_then(|d| d.arn()), target.dead_letter_arn.as_deref());

    scheduler.cancel(&id).await.expect("delete");
    let gone = client.get_schedule().name(&id).group_name(&group).send().await;
    assert!(gone.is_err(), "deleted");
    scheduler.cancel(&id).await.expect("deleting a missing schedule is success");
}
