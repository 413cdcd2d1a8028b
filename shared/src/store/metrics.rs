//! What the store asked of DynamoDB: requests and the capacity DynamoDB reports it
//! consumed (`ReturnConsumedCapacity: TOTAL`). Benchmarks read these around an
//! operation to price it; they cost nothing but a few atomic adds.

use aws_sdk_dynamodb::types::ConsumedCapacity;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters shared by every clone of a `Store`.
#[derive(Debug, Default)]
pub struct StoreMetrics {
    requests: AtomicU64,
    /// Thousandths of a capacity unit, to keep the counters integer.
    read_milli: AtomicU64,
    write_milli: AtomicU64,
    scanned: AtomicU64,
    /// Transactions retried after losing to a concurrent one, not yet taken.
    conflict_retries: AtomicU64,
}

/// A reading of the counters; subtract two to price what happened in between.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MetricsSnapshot {
    pub requests: u64,
    pub read_units: f64,
    pub write_units: f64,
    /// Items queries evaluated (before filter expressions).
    pub scanned: u64,
}

impl std::ops::Sub for MetricsSnapshot {
    type Output = MetricsSnapshot;
    fn sub(self, o: Self) -> Self {
        Self {
            requests: self.requests - o.requests,
            read_units: self.read_units - o.read_units,
            write_units: self.write_units - o.write_units,
            scanned: self.scanned - o.scanned,
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

    pub(crate) fn scanned(&self, items: u64) {
        self.scanned.fetch_add(items, Ordering::Relaxed);
    }

    /// One request and the units it consumed (every request passes here: no allocation).
    fn count<'a>(&self, units_milli: &AtomicU64, ccs: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        let units: f64 = ccs.into_iter().filter_map(|c| c.capacity_units).sum();
        self.requests.fetch_add(1, Ordering::Relaxed);
        units_milli.fetch_add((units * 1000.0).round() as u64, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            read_units: self.read_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            write_units: self.write_milli.load(Ordering::Relaxed) as f64 / 1000.0,
            scanned: self.scanned.load(Ordering::Relaxed),
        }
    }
}
