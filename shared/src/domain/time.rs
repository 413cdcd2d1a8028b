//! Time as the business keeps it: UTC with millisecond precision, written in one format
//! on the wire and in the store.

use chrono::{DateTime, Utc};

/// Times are stored and shown with millisecond precision; truncating at the source (the
/// clock) keeps what a client reads equal to what was compared in a condition.
pub fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// The first millisecond at or after `t`: what a bound given finer than the times it is
/// compared with means. Every stored time is a whole millisecond, so a time `x` is at or
/// after `t` (an inclusive lower bound), or before `t` (an exclusive upper bound),
/// exactly when it is at or after, or before, `ceil_ms(t)`; truncating would let in a
/// time before an inclusive `from` and leave out one before an exclusive `to`.
pub fn ceil_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    let down = truncate_ms(t);
    if down == t {
        t
    } else {
        down + chrono::Duration::milliseconds(1)
    }
}

/// RFC 3339 UTC with `Z` and milliseconds, the one format for times on the wire and in
/// the store (fixed width, so string order is time order).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}
