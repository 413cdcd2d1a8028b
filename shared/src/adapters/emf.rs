//! Business metrics as CloudWatch Embedded Metric Format: one JSON line per count on
//! stdout, which Lambda ships to CloudWatch Logs, where the `_aws` block turns it into a
//! metric; no API call, no client, no flush. Every metric carries the function's name
//! (`Function`) as its dimension, and a metric with its own dimension (an order's new
//! status) carries both.
//!
//! Each line carries a `level` that Lambda's log-level filter keeps: with the JSON log
//! format Lambda reads `level` from every JSON line and gives a line without one the level
//! INFO, so under `LogLevel` WARN or ERROR a metric line without a level would be dropped
//! and its metric (and the alarms on it) would go silent. The level is the configured one
//! when that is INFO or quieter, else INFO. Each line also carries the `request_id` of the
//! invocation it counts in (`with_request_id`), the same id the request's log lines carry.
//!
//! Written by hand (about 30 lines) rather than with an EMF crate: the format is one JSON
//! object, and the maintained crates bring a client or a runtime of their own.

use crate::service::ports::{Metric, Metrics};
use serde_json::{json, Map, Value};
use std::io::Write;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `f` with `request_id` as the request id of every metric line it prints.
pub async fn with_request_id<F: std::future::Future>(request_id: String, f: F) -> F::Output {
    REQUEST_ID.scope(request_id, f).await
}

/// The level a metric line carries so that Lambda keeps it under the application log
/// level `configured` (`AWS_LAMBDA_LOG_LEVEL`; unset is INFO).
pub fn metric_level(configured: Option<&str>) -> &'static str {
    match configured.map(|l| l.trim().to_ascii_uppercase()).as_deref() {
        Some("WARN") => "WARN",
        Some("ERROR") => "ERROR",
        Some("FATAL") => "FATAL",
        _ => "INFO",
    }
}

/// Writes each count as one EMF line to stdout, in namespace `namespace`, as `function`.
#[derive(Debug, Clone)]
pub struct Emf {
    namespace: String,
    function: String,
    level: &'static str,
}

impl Emf {
    /// `level`: what `metric_level` gives for the configured log level.
    pub fn new(namespace: impl Into<String>, function: impl Into<String>, level: &'static str) -> Self {
        Self { namespace: namespace.into(), function: function.into(), level }
    }

    /// The EMF line for `n` of `metric` at `timestamp_ms` (milliseconds since the epoch).
    pub fn line(&self, metric: Metric, n: u64, timestamp_ms: i64) -> String {
        let mut dimensions = vec!["Function"];
        let mut root = Map::new();
        root.insert("Function".into(), Value::from(self.function.as_str()));
        if let Some((name, value)) = metric.dimension() {
            dimensions.push(name);
            root.insert(name.into(), Value::from(value));
        }
        root.insert(metric.name().into(), Value::from(n));
        root.insert("level".into(), Value::from(self.level));
        if let Ok(id) = REQUEST_ID.try_with(String::clone) {
            root.insert("request_id".into(), Value::from(id));
        }
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dimensions],
                    "Metrics": [{ "Name": metric.name(), "Unit": "Count" }],
                }],
            }),
        );
        Value::Object(root).to_string()
    }
}

impl Metrics for Emf {
    fn count(&self, metric: Metric, n: u64) {
        let line = self.line(metric, n, chrono::Utc::now().timestamp_millis());
        // One write per line, so that lines from concurrent requests never interleave.
        let _ = std::io::stdout().lock().write_all(format!("{line}\n").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::OrderStatus;

    #[test]
    fn an_emf_line_declares_its_metric_under_the_function_dimension() {
        let line =
            Emf::new("shop", "reserve", "INFO").line(Metric::ReservationsCreated, 3, 1_700_000_000_000);
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(v["ReservationsCreated"], 3);
        assert_eq!(v["Function"], "reserve");
        let decl = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(decl["Namespace"], "shop");
        assert_eq!(decl["Dimensions"], json!([["Function"]]));
        assert_eq!(decl["Metrics"], json!([{ "Name": "ReservationsCreated", "Unit": "Count" }]));
        assert!(!line.contains('\n'), "one line per metric");
        assert_eq!(v["level"], "INFO");
        assert!(v.get("request_id").is_none(), "outside an invocation");
    }

    #[test]
    fn a_metric_line_carries_a_level_the_log_filter_keeps_and_its_request_id() {
        for (configured, level) in [
            (None, "INFO"),
            (Some("DEBUG"), "INFO"),
            (Some("info"), "INFO"),
            (Some("WARN"), "WARN"),
            (Some("ERROR"), "ERROR"),
            (Some("FATAL"), "FATAL"),
        ] {
            assert_eq!(metric_level(configured), level, "{configured:?}");
        }
        let emf = Emf::new("shop", "expire", metric_level(Some("ERROR")));
        let line = futures::executor::block_on(with_request_id("req-1".into(), async {
            emf.line(Metric::ExpiredBySchedule, 1, 0)
        }));
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!((v["level"].as_str(), v["request_id"].as_str()), (Some("ERROR"), Some("req-1")));
    }

    #[test]
    fn a_status_change_is_counted_per_status() {
        let line = Emf::new("shop", "transition", "INFO").line(
            Metric::OrderStatusChanged(OrderStatus::Shipped),
            1,
            0,
        );
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function", "Status"]]));
        assert_eq!((v["Status"].as_str(), v["OrderStatusChanged"].as_u64()), (Some("shipped"), Some(1)));
    }
}
