//! The order list query: validated filters and sort, the scope it runs in, and the
//! canonical form a cursor is bound to.

use super::order::OrderStatus;
use super::{DomainError, FieldError};
use crate::domain::time::{format_time, parse_time};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

pub const MAX_TOTAL_FILTER: i64 = i64::MAX / 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortOrder {
    /// Newest first; ties by id, descending.
    Newest,
    /// Oldest first; ties by id, ascending.
    Oldest,
    /// Highest total first; ties by id, descending.
    HighestValue,
    /// Lowest total first; ties by id, ascending.
    LowestValue,
}

impl SortOrder {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "newest" => Self::Newest,
            "oldest" => Self::Oldest,
            "highest_value" => Self::HighestValue,
            "lowest_value" => Self::LowestValue,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Newest => "newest",
            Self::Oldest => "oldest",
            Self::HighestValue => "highest_value",
            Self::LowestValue => "lowest_value",
        }
    }
    pub fn by_value(self) -> bool {
        matches!(self, Self::HighestValue | Self::LowestValue)
    }
    pub fn descending(self) -> bool {
        matches!(self, Self::Newest | Self::HighestValue)
    }
}

/// Whose orders a list covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// One user's orders (a customer's own, or an admin's `user_id=`).
    User(String),
    /// Every user's (admins only).
    All,
}

/// A validated `GET /api/orders` query (without paging).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderQuery {
    /// Empty: every status.
    pub statuses: BTreeSet<OrderStatus>,
    /// Inclusive.
    pub created_from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub created_to: Option<DateTime<Utc>>,
    /// Inclusive.
    pub min_total_cents: Option<i64>,
    /// Inclusive.
    pub max_total_cents: Option<i64>,
    pub sort: SortOrder,
    /// `user_id=`, admins only (the role check happens after validation).
    pub user_id: Option<String>,
}

pub const ORDER_LIST_PARAMS: &[&str] = &[
    "status",
    "created_from",
    "created_to",
    "min_total_cents",
    "max_total_cents",
    "sort",
    "user_id",
    "limit",
    "cursor",
];

impl OrderQuery {
    /// Validates the parameters (already checked to be known and single by
    /// `http::query::parse`). Every bad value is reported.
    pub fn from_params(p: &BTreeMap<String, String>) -> Result<Self, DomainError> {
        let mut errors = Vec::new();
        let mut statuses = BTreeSet::new();
        if let Some(list) = p.get("status") {
            for s in list.split(',') {
                match OrderStatus::parse(s.trim()) {
                    Some(st) => {
                        statuses.insert(st);
                    }
                    None => errors.push(FieldError::new(
                        "status",
                        format!("unknown status {s:?}; use pending, confirmed, processing, shipped, delivered or cancelled"),
                    )),
                }
            }
        }
        let mut time = |name: &str| match p.get(name) {
            None => None,
            Some(v) => match parse_time(v) {
                Some(t) => Some(t),
                None => {
                    errors
                        .push(FieldError::new(name, "must be an RFC 3339 time such as 2026-01-31T12:00:00Z"));
                    None
                }
            },
        };
        let created_from = time("created_from");
        let created_to = time("created_to");
        let mut total = |name: &str| match p.get(name) {
            None => None,
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (0..=MAX_TOTAL_FILTER).contains(&n) => Some(n),
                _ => {
                    errors.push(FieldError::new(name, "must be a non-negative integer (minor units)"));
                    None
                }
            },
        };
        let min_total_cents = total("min_total_cents");
        let max_total_cents = total("max_total_cents");
        let sort = match p.get("sort") {
            None => SortOrder::Newest,
            Some(v) => SortOrder::parse(v).unwrap_or_else(|| {
                errors.push(FieldError::new("sort", "must be newest, oldest, highest_value or lowest_value"));
                SortOrder::Newest
            }),
        };
        let user_id = match p.get("user_id") {
            Some(u) if u.is_empty() || u.chars().count() > 256 => {
                errors.push(FieldError::new("user_id", "must be 1 to 256 characters"));
                None
            }
            other => other.cloned(),
        };
        if let (Some(from), Some(to)) = (created_from, created_to) {
            if from >= to {
                errors.push(FieldError::new("created_from", "must be before created_to"));
            }
        }
        // Both bounds (from inclusive, to exclusive) compare as their next millisecond: the
        // times they meet are whole milliseconds.
        let (created_from, created_to) =
            (created_from.map(crate::domain::time::ceil_ms), created_to.map(crate::domain::time::ceil_ms));
        if let (Some(min), Some(max)) = (min_total_cents, max_total_cents) {
            if min > max {
                errors.push(FieldError::new("min_total_cents", "must not be above max_total_cents"));
            }
        }
        if !errors.is_empty() {
            return Err(DomainError::Validation(errors));
        }
        Ok(Self { statuses, created_from, created_to, min_total_cents, max_total_cents, sort, user_id })
    }

    /// The statuses the query covers (all of them when none is named).
    pub fn effective_statuses(&self) -> Vec<OrderStatus> {
        if self.statuses.is_empty() {
            OrderStatus::ALL.to_vec()
        } else {
            self.statuses.iter().copied().collect()
        }
    }

    /// What a cursor is bound to: the caller, the scope and every filter and the sort
    /// (not `limit`, which may change between pages).
    pub fn binding(&self, caller: &str, scope: &Scope) -> String {
        let statuses: Vec<&str> = self.statuses.iter().map(|s| s.as_str()).collect();
        let t = |v: Option<DateTime<Utc>>| v.map(format_time).unwrap_or_default();
        let n = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
        let scope = match scope {
            Scope::User(u) => format!("user:{u}"),
            Scope::All => "all".into(),
        };
        format!(
            "orders\0{caller}\0{scope}\0{}\0{}\0{}\0{}\0{}\0{}",
            statuses.join(","),
            t(self.created_from),
            t(self.created_to),
            n(self.min_total_cents),
            n(self.max_total_cents),
            self.sort.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Result<OrderQuery, DomainError> {
        OrderQuery::from_params(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn defaults_are_every_status_newest_first() {
        let q = q(&[]).unwrap();
        assert_eq!((q.sort, q.effective_statuses().len()), (SortOrder::Newest, OrderStatus::ALL.len()));
    }

    #[test]
    fn bad_values_and_empty_ranges_are_refused() {
        for bad in [
            vec![("status", "pending,lost")],
            vec![("status", "")],
            vec![("created_from", "yesterday")],
            vec![("created_from", "2026-01-02T00:00:00Z"), ("created_to", "2026-01-02T00:00:00Z")],
            vec![("created_from", "2026-01-03T00:00:00Z"), ("created_to", "2026-01-02T00:00:00Z")],
            vec![("min_total_cents", "-1")],
            vec![("max_total_cents", "1.5")],
            vec![("min_total_cents", "10"), ("max_total_cents", "9")],
            vec![("sort", "cheapest")],
            vec![("user_id", "")],
        ] {
            assert!(matches!(q(&bad), Err(DomainError::Validation(_))), "{bad:?}");
        }
    }

    #[test]
    fn creation_bounds_finer_than_a_millisecond_compare_as_the_next_one() {
        let q =
            q(&[("created_from", "2026-01-02T00:00:00.1231Z"), ("created_to", "2026-01-02T00:00:00.1239Z")])
                .expect("from is before to");
        let at = crate::domain::time::parse_time("2026-01-02T00:00:00.124Z");
        // An order created at .123 is before both: in neither bound's range.
        assert_eq!((q.created_from, q.created_to), (at, at));
    }

    #[test]
    fn the_binding_changes_with_every_filter_but_not_with_the_status_order() {
        let a = q(&[("status", "pending,shipped")]).unwrap();
        let b = q(&[("status", "shipped,pending")]).unwrap();
        assert_eq!(a.binding("u", &Scope::All), b.binding("u", &Scope::All));
        let c = q(&[("status", "pending,shipped"), ("sort", "oldest")]).unwrap();
        assert_ne!(a.binding("u", &Scope::All), c.binding("u", &Scope::All));
        assert_ne!(a.binding("u", &Scope::All), a.binding("v", &Scope::All));
        assert_ne!(a.binding("u", &Scope::All), a.binding("u", &Scope::User("u".into())));
    }
}
