//! Expiry scheduling: one one-off EventBridge Scheduler schedule per reservation that
//! invokes the `expire` function at `expires_at`. Schedules are a latency optimisation
//! only: correctness comes from lazy expiry and the sweep, so a failure here never fails
//! a reservation.

use crate::service::ports::{ExpiryScheduler, Scheduled, SchedulerError};
use aws_sdk_scheduler::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_scheduler::types::{
    ActionAfterCompletion, DeadLetterConfig, FlexibleTimeWindow, FlexibleTimeWindowMode, RetryPolicy, Target,
};
use chrono::{DateTime, Timelike, Utc};

/// Where and how schedules are created.
#[derive(Debug, Clone)]
pub struct EventBridgeTarget {
    /// Dedicated schedule group (its schedules are all ours, which also scopes IAM).
    pub group: String,
    /// ARN of the `expire` function.
    pub function_arn: String,
    /// Role the scheduler assumes to invoke it.
    pub role_arn: String,
    /// Where events that exhausted their retries go.
    pub dead_letter_arn: Option<String>,
}

/// Retries of a failed invocation, and how long the scheduler keeps trying.
const MAX_RETRY_ATTEMPTS: i32 = 10;
const MAX_EVENT_AGE_SECONDS: i32 = 3600;

/// The payload the `expire` function receives: every reservation the schedule ends (at
/// most a batch's 25 ids, far inside a target input's 8,192 characters).
pub fn expire_input(reservation_ids: &[String]) -> String {
    serde_json::json!({ "reservation_ids": reservation_ids }).to_string()
}

/// The schedule named `name` (a reservation's id, or a batch's) that runs at `at`: the
/// name and the time in milliseconds (a ULID and 13 digits, well within the Scheduler's
/// 64 characters of `[0-9A-Za-z-_.]`).
pub fn schedule_name(name: &str, at: DateTime<Utc>) -> String {
    format!("{name}-{}", at.timestamp_millis())
}

/// `at(...)` takes whole seconds; rounding up keeps the run from coming before expiry.
pub fn at_expression(at: DateTime<Utc>) -> String {
    let whole = at.with_nanosecond(0).unwrap_or(at);
    let up = if whole < at { whole + chrono::Duration::seconds(1) } else { whole };
    format!("at({})", up.format("%Y-%m-%dT%H:%M:%S"))
}

#[derive(Debug, Clone)]
pub struct EventBridgeScheduler {
    client: aws_sdk_scheduler::Client,
    target: EventBridgeTarget,
}

impl EventBridgeScheduler {
    pub fn new(client: aws_sdk_scheduler::Client, target: EventBridgeTarget) -> Self {
        Self { client, target }
    }

    async fn create(
        &self,
        name: &str,
        reservation_ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), SchedulerError> {
        let fail = |e: aws_sdk_scheduler::error::BuildError| SchedulerError::Failed(e.to_string());
        let mut target = Target::builder()
            .arn(&self.target.function_arn)
            .role_arn(&self.target.role_arn)
            .input(expire_input(reservation_ids))
            .retry_policy(
                RetryPolicy::builder()
                    .maximum_retry_attempts(MAX_RETRY_ATTEMPTS)
                    .maximum_event_age_in_seconds(MAX_EVENT_AGE_SECONDS)
                    .build(),
            );
        if let Some(dlq) = &self.target.dead_letter_arn {
            target = target.dead_letter_config(DeadLetterConfig::builder().arn(dlq).build());
        }
        let result = self
            .client
            .create_schedule()
            .name(schedule_name(name, at))
            .group_name(&self.target.group)
            .schedule_expression(at_expression(at))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(
                FlexibleTimeWindow::builder().mode(FlexibleTimeWindowMode::Off).build().map_err(fail)?,
            )
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(target.build().map_err(fail)?)
            .send()
            .await;
        // Already created by an earlier attempt: that is what we wanted.
        settled(result, "ConflictException")
    }

    async fn delete(&self, reservation_id: &str, at: DateTime<Utc>) -> Result<(), SchedulerError> {
        let result = self
            .client
            .delete_schedule()
            .name(schedule_name(reservation_id, at))
            .group_name(&self.target.group)
            .send()
            .await;
        // Gone already (it ran, or an earlier attempt deleted it): that is what we wanted.
        settled(result, "ResourceNotFoundException")
    }
}

/// A Scheduler call's outcome: success, also when it failed with `done`, the error that
/// says its work was already done (calls are retried, so they must be idempotent).
fn settled<T, E, R>(result: Result<T, SdkError<E, R>>, done: &str) -> Result<(), SchedulerError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(()),
        Err(SdkError::ServiceError(e)) if e.err().code() == Some(done) => Ok(()),
        Err(e) => Err(SchedulerError::Failed(aws_sdk_scheduler::error::DisplayErrorContext(&e).to_string())),
    }
}

impl ExpiryScheduler for EventBridgeScheduler {
    fn schedule_many<'a>(&'a self, name: &'a str, ids: &'a [String], at: DateTime<Utc>) -> Scheduled<'a> {
        Box::pin(self.create(name, ids, at))
    }
    fn cancel<'a>(&'a self, name: &'a str, at: DateTime<Utc>) -> Scheduled<'a> {
        Box::pin(self.delete(name, at))
    }
    #[cfg(feature = "local")]
    fn with_http_client(
        &self,
        http: aws_smithy_runtime_api::client::http::SharedHttpClient,
    ) -> Option<std::sync::Arc<dyn ExpiryScheduler>> {
        let conf = self.client.config().to_builder().http_client(http).build();
        Some(std::sync::Arc::new(Self {
            client: aws_sdk_scheduler::Client::from_conf(conf),
            target: self.target.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_at_expression_rounds_up_to_the_next_whole_second_in_utc() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(at_expression(t("2026-11-26T00:21:15.911Z")), "at(2026-11-26T00:21:16)");
        assert_eq!(at_expression(t("2026-11-26T00:21:15Z")), "at(2026-11-26T00:21:15)");
        assert_eq!(at_expression(t("2026-12-31T23:59:59.001Z")), "at(2027-01-01T00:00:00)");
    }
}
