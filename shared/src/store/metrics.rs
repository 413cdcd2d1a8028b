//! What the store asked of DynamoDB: requests and the capacity DynamoDB reports it
//! consumed (`ReturnConsumedCapacity: TOTAL`). Benchmarks read these around an
//! operation to price it, and to split a request's time between DynamoDB, retry waits
//! and our own code; they cost nothing but a few atomic adds.

use aws_sdk_dynamodb::types::ConsumedCapacity;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters shared by every clone of a `Store`.
#[derive(Debug, Default)]
pub struct StoreMetrics {
    /// Every request sent, answered with success or not.
    requests: AtomicU64,
    /// Write requests sent (single writes, transactions, batches), failed ones included:
    /// a failed condition still costs a write unit in AWS.
    write_requests: AtomicU64,
    /// Thousandths of a capacity unit, to keep the counters integer.
    read_milli: AtomicU64,
    write_milli: AtomicU64,
    scanned: AtomicU64,
    /// Transactions retried after losing to a concurrent one, not yet taken.
    conflict_retries: AtomicU64,
    /// Microseconds spent waiting for DynamoDB's answers (summed over concurrent calls).
    dynamodb_micros: AtomicU64,
    /// Microseconds spent waiting before retries.
    backoff_micros: AtomicU64,
}

/// A reading of the counters; subtract two to price what happened in between.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MetricsSnapshot {
    pub requests: u64,
    pub write_requests: u64,
    pub read_units: f64,
    pub write_units: f64,
    /// Items queries evaluated (before filter expressions).
    pub scanned: u64,
    /// Seconds spent waiting for DynamoDB (summed over concurrent calls), and before
    /// retries: with a caller's own time, where a request's time went.
    pub dynamodb_seconds: f64,
    pub backoff_seconds: f64,
}

impl std::ops::Sub for MetricsSnapshot {
    type Output = MetricsSnapshot;
    fn sub(self, o: Self) -> Self {
        Self {
            requests: self.requests - o.requests,
            write_requests: self.write_requests - o.write_requests,
            read_units: self.read_units - o.read_units,
            write_units: self.write_units - o.write_units,
            scanned: self.scanned - o.scanned,
            dynamodb_seconds: self.dynamodb_seconds - o.dynamodb_seconds,
            backoff_seconds: self.backoff_seconds - o.backoff_seconds,
        }
    }
}

impl StoreMetrics {
    pub(crate) fn read<'a>(&self, ccs: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        self.count(&self.read_milli, ccs);
    }

    pub(crate) fn write<'a>(&self, ccs: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        self.count(&self.write_milli, ccs);
    }

    pub(crate) fn conflict_retry(&self) {
        self.conflict_retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The retries counted since the last call, and starts over.
    pub fn take_conflict_retries(&self) -> u64 {
        self.conflict_retries.swap(0, Ordering::Relaxed)
    }

    /// One request sent and answered (or failed) after `d`.
    pub(crate) fn sent(&self, write: bool, d: Duration) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if write {
            self.write_requests.fetch_add(1, Ordering::Relaxed);
        }
        self.dynamodb_micros.fetch_add(micros(d), Ordering::Relaxed);
    }

    pub(crate) fn backed_off(&self, d: Duration) {
        self.backoff_micros.fetch_add(micros(d), Ordering::Relaxed);
    }

    pub(crate) fn scanned(&self, items: u64) {
        self.scanned.fetch_add(items, Ordering::Relaxed);
    }

    /// The units a successful request consumed (no allocation).
    fn count<'a>(&self, units_milli: &AtomicU64, ccs: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        let units: f64 = ccs.into_iter().filter_map(|c| c.capacity_units).sum();
        units_milli.fetch_add((units * 1000.0).round() as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            write_requests: self.write_requests.load(Ordering::Relaxed),
            read_units: self.read_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            write_units: self.write_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            scanned: self.scanned.load(Ordering::Relaxed),
            dynamodb_seconds: self.dynamodb_micros.load(Ordering::Relaxed) as f64 / 1e6,
            backoff_seconds: self.backoff_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
