//! Entity ids: ULIDs, time-sortable so that id order is creation order.

use chrono::{DateTime, Utc};
use std::time::{Duration, UNIX_EPOCH};

/// A new ULID whose time part is `now` (the injected clock), so ids stay sortable by
/// creation time in tests that move time; the rest is random.
pub fn new_id(now: DateTime<Utc>) -> String {
    let ms = u64::try_from(now.timestamp_millis()).unwrap_or(0);
    ulid::Ulid::from_datetime(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}
