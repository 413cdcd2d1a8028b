//! Business metrics as CloudWatch Embedded Metric Format: one JSON line per count on
//! stdout, which Lambda ships to CloudWatch Logs, where the `_aws` block turns it into a
//! metric; no API call, no client, no flush. Every metric carries the function's name
//! (`Function`) as its dimension, and a metric with its own dimension (an order's new
//! status) carries both.
//!
//! Written by hand (about 30 lines) rather than with an EMF crate: the format is one JSON
//! object, and the maintained crates bring a client or a runtime of their own.

use crate::service::ports::{Metric, Metrics};
use serde_json::{json, Map, Value};
use std::io::Write;

/// Writes each count as one EMF line to stdout, in namespace `namespace`, as `function`.
#[derive(Debug, Clone)]
pub struct Emf {
    namespace: String,
    function: String,
}

impl Emf {
    pub fn new(namespace: impl Into<String>, function: impl Into<String>) -> Self {
        Self { namespace: namespace.into(), function: function.into() }
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
        let line = Emf::new("shop", "reserve").line(Metric::ReservationsCreated, 3, 1_700_000_000_000);
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(v["ReservationsCreated"], 3);
        assert_eq!(v["Function"], "reserve");
        let decl = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(decl["Namespace"], "shop");
        assert_eq!(decl["Dimensions"], json!([["Function"]]));
        assert_eq!(decl["Metrics"], json!([{ "Name": "ReservationsCreated", "Unit": "Count" }]));
        assert!(!line.contains('\n'), "one line per metric");
    }

    #[test]
    fn a_status_change_is_counted_per_status() {
        let line =
            Emf::new("shop", "transition").line(Metric::OrderStatusChanged(OrderStatus::Shipped), 1, 0);
        let v: Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Function", "Status"]]));
        assert_eq!((v["Status"].as_str(), v["OrderStatusChanged"].as_u64()), (Some("shipped"), Some(1)));
    }
}
