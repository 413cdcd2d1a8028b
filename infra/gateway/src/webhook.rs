//! Local stand-in for the template's webhook (an EventBridge rule on the bus whose target
//! is an API destination): every event of the replay feed is POSTed to `WEBHOOK_URL` as
//! EventBridge delivers it, the whole envelope with the feed's `detail`, `Content-Type:
//! application/json` and `X-Api-Key` from `WEBHOOK_API_KEY` when set.
//!
//! It is a consumer of the audit table's stream of its own (filtered like the publish
//! function's mapping, with its own checkpoints), not a subscriber of a local bus: the
//! stream is the ordered, durable source both read, so events are delivered in publish
//! order, one at a time, and an event the receiver did not take (a non-2xx answer, a
//! refused connection, no answer in 5 s) is retried from its stream record with growing
//! waits (1 s doubling, at most 60 s apart) as often as the template's `RetryPolicy`
//! lets EventBridge (185 times, over three hours), then skipped (in AWS: the dead-letter
//! queue). The position is saved in DynamoDB (in `make dev`'s data folder), so a restart
//! resumes at the first event not yet taken. An event delivered but not yet checkpointed
//! when the process dies is delivered again after the restart: with the same `id` and
//! `detail.event_id`, as EventBridge's own retries are.

use crate::stream::{spawn, Consumer, Handler, Platform, Poller, Retry};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use shared::domain::event::{Outgoing, SOURCE};
use shared::jobs::{feed_events, retry_from, DynamoDbEventResponse, StreamEvent};
use shared::service::App;
use std::sync::Arc;
use std::time::Duration;

/// How EventBridge retries an API destination target (the template's `RetryPolicy` on
/// the webhook rule: `MaximumRetryAttempts` 185, the most it takes), with the waits the
/// local delivery uses between attempts (EventBridge's own are its business: exponential
/// with jitter; the contract asks for none longer than 60 s).
pub const WEBHOOK_RETRY: Retry =
    Retry { retries: 185, first_wait: Duration::from_secs(1), max_wait: Duration::from_secs(60) };

/// How long a receiver has to answer (an API destination's limit: 5 s).
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Where and how events are delivered.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    pub api_key: Option<String>,
    pub retry: Retry,
}

impl Webhook {
    /// `WEBHOOK_URL` (and `WEBHOOK_API_KEY`) from the environment, when set. The local
    /// delivery speaks plain HTTP only (a receiver on this machine); anything else is
    /// refused at start-up rather than failing every delivery.
    pub fn from_env() -> Result<Option<Self>, String> {
        let Some(url) = std::env::var("WEBHOOK_URL").ok().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        if !url.starts_with("http://") {
            return Err(format!("WEBHOOK_URL must be an http:// address on the local stack, not {url:?}"));
        }
        let api_key = std::env::var("WEBHOOK_API_KEY").ok().filter(|k| !k.is_empty());
        Ok(Some(Self { url, api_key, retry: WEBHOOK_RETRY }))
    }
}

/// The envelope EventBridge delivers for `event` from the bus: `id` is derived from the
/// event's `event_id` (EventBridge gives each put entry an id of its own; a fixed one
/// here means a redelivery looks the same), `time` is the change's to the second.
pub fn envelope(event: &Outgoing) -> Value {
    let detail: Value = serde_json::from_str(&event.detail).unwrap_or(Value::Null);
    json!({
        "version": "0",
        "id": id_of(&event.event_id),
        "detail-type": event.kind.as_str(),
        "source": SOURCE,
        "account": "123456789012",
        "time": event.time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    })
}

/// A UUID-shaped id fixed by `event_id` (the first 16 bytes of its SHA-256).
fn id_of(event_id: &str) -> String {
    let h = Sha256::digest(event_id.as_bytes());
    let hex: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Starts delivering the events of `app`'s audit table's stream to `webhook`.
pub fn spawn_webhook(app: &App, platform: Platform, webhook: Webhook) -> Result<Poller, String> {
    let client = reqwest::Client::builder()
        .timeout(ANSWER_WITHIN)
        .build()
        .map_err(|e| format!("webhook client: {e}"))?;
    let retry = webhook.retry;
    let webhook = Arc::new(webhook);
    let handle: Handler = Arc::new(move |event: StreamEvent| {
        let (client, webhook) = (client.clone(), webhook.clone());
        Box::pin(async move { deliver(&client, &webhook, &event).await })
    });
    Ok(spawn(
        platform,
        Consumer {
            table: app.store.audit_table().to_string(),
            checkpoints: format!("{}-stream-checkpoints-webhook", app.store.audit_table()),
            function: "webhook",
            retry,
            handle,
        },
    ))
}

/// POSTs the batch's events in order and stops at the first the receiver does not take:
/// that record is reported failed (so the poller saves the position before it and
/// retries from it); the events after it wait, keeping publish order.
async fn deliver(client: &reqwest::Client, webhook: &Webhook, event: &StreamEvent) -> DynamoDbEventResponse {
    for (raw, decoded) in feed_events(event) {
        let outgoing = match decoded {
            Ok(Some(e)) => e,
            Ok(None) => continue,
            Err(why) => {
                // The publish function sets it aside too: no retry can deliver it.
                tracing::error!(error = %why, "feed record that does not decode; not delivered");
                continue;
            }
        };
        let mut post = client.post(&webhook.url).json(&envelope(&outgoing));
        if let Some(key) = &webhook.api_key {
            post = post.header("X-Api-Key", key);
        }
        let refused = match post.send().await {
            Ok(answer) if answer.status().is_success() => None,
            Ok(answer) => Some(format!("answered {}", answer.status())),
            Err(e) => Some(format!("not reached: {e}")),
        };
        if let Some(why) = refused {
            tracing::warn!(event_id = %outgoing.event_id, url = %webhook.url, error = %why, "webhook did not take the event");
            return retry_from(raw);
        }
    }
    DynamoDbEventResponse::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delivery_retries_for_at_least_ten_minutes_and_never_waits_more_than_a_minute() {
        let waits: Vec<Duration> = WEBHOOK_RETRY.schedule().collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(60)), "{waits:?}");
        assert!(waits.iter().sum::<Duration>() >= Duration::from_secs(600));
        assert_eq!(waits[..3], [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4)]);
    }

    #[test]
    fn an_event_keeps_its_envelope_id_across_deliveries_and_events_differ() {
        assert_eq!(id_of("a:1"), id_of("a:1"));
        assert_ne!(id_of("a:1"), id_of("a:2"));
        assert_eq!(id_of("a:1").len(), 36);
    }
}
