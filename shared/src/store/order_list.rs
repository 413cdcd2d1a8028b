//! Order lists over eight sparse indexes, chosen for the access patterns:
//!
//! | index | partition | sort | serves |
//! |---|---|---|---|
//! | `ou_time`, `ou_value` | `U#<user>` | time, value | a user's orders, any status |
//! | `ous_time`, `ous_value` | `U#<user>#<status>` | time, value | a user's orders of chosen statuses |
//! | `oa_time`, `oa_value` | `A#<shard>` | time, value | all orders (admins) |
//! | `oss_time`, `oss_value` | `S#<status>#<shard>` | time, value | all orders of chosen statuses (admins) |
//!
//! Time keys are `<created_at>#<id>`, value keys `<total, 16 digits>#<id>`. A status
//! filter is a choice of partitions, never a filter expression. The range on the sorted
//! dimension (created range when sorting by time, total range when sorting by value) and
//! the cursor position go into the key condition as one `BETWEEN`. Only the range on the
//! other dimension is a filter expression, and it reads nothing outside the key range the
//! query names.
//!
//! A list that covers several partitions (several statuses; the admin shards) merges
//! them lazily: each partition is read in batches, and a partition is read again only
//! when its next item could be the next in the merged order, until the page plus one
//! item is known. Batches double each time a partition is read again, so a partition
//! that supplies most of a page, or whose items a filter mostly drops, costs few queries.
//!
//! Hot partitions: a customer's partitions only take that customer's orders. The admin
//! indexes would put every order into one partition (or every order of a status), so
//! orders are spread over `ORDER_SHARDS` partitions by a hash of the id (about 4,000
//! order writes/s before an index partition throttles), and admin reads merge the
//! shards. Write cost: an order write touches the eight indexes; a status change moves
//! the order between partitions of the four status indexes and rewrites it in the other
//! four (the status is projected).

use super::exec::Key;
use super::keys::*;
use super::records::order::order;
use super::records::{n, s};
use super::{Item, Repo, StoreError};
use crate::domain::order::Order;
use crate::domain::order_query::{OrderQuery, Scope};
use crate::domain::time::format_time;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::join_all;
use std::collections::VecDeque;

/// One page of orders and the position after its last one, if more follow. What reading
/// it cost shows in the store's metrics (queries, items evaluated, read units).
#[derive(Debug, Clone)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    pub next: Option<String>,
}

/// A list position that is not one this module made (`OrderLists::page` refuses it
/// before any read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed list position")]
pub struct BadPosition;

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error(transparent)]
    Position(#[from] BadPosition),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A cursor position (the last item's sort key) moved one step past that item, as an
/// inclusive bound: ULIDs are 128-bit numbers in fixed-width base32, so the key just
/// below `X#id` is `X#(id-1)` and just above is `X#(id+1)`. `None`: nothing lies beyond.
fn step_position(position: &str, descending: bool) -> Result<Option<String>, BadPosition> {
    let (prefix, id) = position.rsplit_once('#').ok_or(BadPosition)?;
    let id = ulid::Ulid::from_string(id).map_err(|_| BadPosition)?;
    let stepped = if descending { id.0.checked_sub(1) } else { id.0.checked_add(1) };
    Ok(stepped.map(|v| format!("{prefix}#{}", ulid::Ulid(v))))
}

struct Plan {
    index: &'static str,
    pk_attr: &'static str,
    sort_attr: &'static str,
    lo: String,
    hi: String,
    descending: bool,
    filter: Option<Filter>,
}

struct Partition {
    pk: String,
    buf: VecDeque<(String, Item)>,
    start: Option<Key>,
    done: bool,
    /// Items to evaluate per query; doubles each time the merge comes back for more, so a
    /// partition that supplies most of a page (or whose items a filter mostly drops) is
    /// read in few queries.
    batch: i32,
}

/// Upper bound of a partition's query `Limit`.
const MAX_BATCH: i32 = 200;

#[derive(Debug, Clone)]
pub struct OrderLists(pub(crate) Repo);

impl OrderLists {
    /// One page of `limit` orders of `scope` matching `query`, after `after` (a position
    /// from an earlier page, already authenticated by the caller's cursor).
    pub async fn page(
        &self,
        scope: &Scope,
        query: &OrderQuery,
        after: Option<&str>,
        limit: usize,
    ) -> Result<OrderPage, PageError> {
        let by_value = query.sort.by_value();
        let descending = query.sort.descending();
        // Bounds on the sorted dimension, inclusive; ' ' and '~' sort below and above
        // every key (keys start with a digit).
        let (mut lo, mut hi) = if by_value {
            (
                query.min_total_cents.map_or(" ".to_string(), |m| format!("{m:016}")),
                query.max_total_cents.map_or("~".to_string(), |m| format!("{m:016}~")),
            )
        } else {
            (
                query.created_from.map_or(" ".to_string(), format_time),
                query.created_to.map_or("~".to_string(), |t| {
                    format!("{}~", format_time(t - chrono::Duration::milliseconds(1)))
                }),
            )
        };
        if let Some(p) = after {
            match step_position(p, descending)? {
                None => return Ok(OrderPage { orders: vec![], next: None }),
                Some(bound) if descending => hi = hi.min(bound),
                Some(bound) => lo = lo.max(bound),
            }
        }
        if lo > hi {
            return Ok(OrderPage { orders: vec![], next: None });
        }
        // The other dimension's range: creation time is half-open (`created_to` excluded),
        // the total closed.
        let filter = if by_value {
            let time = |t| s(format_time(t));
            range_filter("created_at", query.created_from.map(time), ("<", query.created_to.map(time)))
        } else {
            range_filter("total_cents", query.min_total_cents.map(n), ("<=", query.max_total_cents.map(n)))
        };
        let statuses = query.effective_statuses();
        let every_status = query.statuses.is_empty();
        let pick = |time: &'static str, value: &'static str| if by_value { value } else { time };
        let (index, pk_attr, partitions): (&str, &str, Vec<String>) = match (scope, every_status) {
            (Scope::User(u), true) => {
                (pick(ORDERS_BY_USER_TIME, ORDERS_BY_USER_VALUE), OU_PK, vec![order_user_pk(u)])
            }
            (Scope::User(u), false) => (
                pick(ORDERS_BY_USER_STATUS_TIME, ORDERS_BY_USER_STATUS_VALUE),
                OUS_PK,
                statuses.iter().map(|st| order_user_status_pk(u, st.as_str())).collect(),
            ),
            (Scope::All, true) => (
                pick(ORDERS_ALL_TIME, ORDERS_ALL_VALUE),
                OA_PK,
                (0..ORDER_SHARDS).map(order_all_shard_pk).collect(),
            ),
            (Scope::All, false) => (
                pick(ORDERS_BY_STATUS_TIME, ORDERS_BY_STATUS_VALUE),
                OSS_PK,
                statuses
                    .iter()
                    .flat_map(|st| (0..ORDER_SHARDS).map(move |sh| order_status_shard_pk(st.as_str(), sh)))
                    .collect(),
            ),
        };
        let plan = Plan {
            index,
            pk_attr,
            sort_attr: if by_value { O_VALUE } else { O_TIME },
            lo,
            hi,
            descending,
            filter,
        };
        let want = limit + 1;
        let batch = i32::try_from((want.div_ceil(partitions.len().max(1)) + 1).clamp(2, 100)).unwrap_or(100);
        let mut parts: Vec<Partition> = partitions
            .into_iter()
            .map(|pk| Partition { pk, buf: VecDeque::new(), start: None, done: false, batch })
            .collect();
        let mut queries = 0u32;
        let mut out: Vec<(String, Item)> = Vec::with_capacity(want);
        while out.len() < want {
            // Every partition that may still hold the next item must show its head.
            let empty: Vec<usize> =
                (0..parts.len()).filter(|&i| parts[i].buf.is_empty() && !parts[i].done).collect();
            if !empty.is_empty() {
                let fetched = join_all(
                    empty
                        .iter()
                        .map(|&i| self.fetch(&plan, &parts[i].pk, parts[i].start.clone(), parts[i].batch)),
                )
                .await;
                for (&i, result) in empty.iter().zip(fetched) {
                    let (items, start, sent) = result?;
                    queries += sent;
                    let part = &mut parts[i];
                    part.buf.extend(items);
                    part.done = start.is_none();
                    part.start = start;
                    part.batch = (part.batch * 2).min(MAX_BATCH);
                }
            }
            let best = (0..parts.len()).filter(|&i| !parts[i].buf.is_empty()).reduce(|a, b| {
                let (ka, kb) = (&parts[a].buf[0].0, &parts[b].buf[0].0);
                let b_first = if plan.descending { kb > ka } else { kb < ka };
                if b_first {
                    b
                } else {
                    a
                }
            });
            match best.and_then(|i| parts[i].buf.pop_front()) {
                Some(entry) => out.push(entry),
                None => break,
            }
        }
        let more = out.len() > limit;
        out.truncate(limit);
        let next = if more { out.last().map(|(k, _)| k.clone()) } else { None };
        let orders = out.iter().map(|(_, item)| order(item)).collect::<Result<Vec<_>, _>>()?;
        tracing::debug!(queries, returned = orders.len(), "order page");
        Ok(OrderPage { orders, next })
    }

    /// Reads one partition from `start` until at least one matching item shows up or the
    /// key range ends (a filter expression may leave a page empty). Also says how many
    /// queries it sent.
    async fn fetch(
        &self,
        plan: &Plan,
        pk: &str,
        mut start: Option<Key>,
        mut batch: i32,
    ) -> Result<(Vec<(String, Item)>, Option<Key>, u32), StoreError> {
        let mut queries = 0;
        let mut out = Vec::new();
        loop {
            let mut q = self
                .0
                .db
                .query(&self.0.table)
                .index_name(plan.index)
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
                .expression_attribute_names("#pk", plan.pk_attr)
                .expression_attribute_names("#sk", plan.sort_attr)
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":lo", s(&plan.lo))
                .expression_attribute_values(":hi", s(&plan.hi))
                .scan_index_forward(!plan.descending)
                .limit(batch);
            if let Some((expr, vals)) = &plan.filter {
                q = q.filter_expression(expr);
                for (k, v) in vals {
                    q = q.expression_attribute_values(*k, v.clone());
                }
            }
            let page = self.0.db.query_page("list_orders", q, start).await?;
            queries += 1;
            for item in page.items {
                let key = item.s(plan.sort_attr)?.to_string();
                out.push((key, item));
            }
            start = page.next;
            if !out.is_empty() || start.is_none() {
                return Ok((out, start, queries));
            }
            // Everything so far was filtered out: read further ahead next time.
            batch = (batch * 2).min(MAX_BATCH);
        }
    }
}

/// A filter expression and its values.
type Filter = (String, Vec<(&'static str, AttributeValue)>);

/// `attr` at or above `from` and below (or up to) `to`, as a filter expression; `None`
/// when neither bound is given. `to` is the comparison (`<` or `<=`) and its bound.
fn range_filter(
    attr: &str,
    from: Option<AttributeValue>,
    to: (&str, Option<AttributeValue>),
) -> Option<Filter> {
    let mut parts = Vec::new();
    let mut vals = Vec::new();
    if let Some(v) = from {
        parts.push(format!("{attr} >= :from"));
        vals.push((":from", v));
    }
    if let (op, Some(v)) = to {
        parts.push(format!("{attr} {op} :to"));
        vals.push((":to", v));
    }
    (!parts.is_empty()).then(|| (parts.join(" AND "), vals))
}
