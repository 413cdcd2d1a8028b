//! The stock ledger, in the audit table (`records::movement`): the stream consumer appends
//! each row's movements and then moves the row's head on, on the condition that nobody
//! moved it since it was read; the admin API reads a product's movements (its rows'
//! partitions merged in time order), its stock at an instant (one item per row) and the
//! heads' running sums.

use super::exec::{Key, Write};
use super::records::movement::{self as rec, after_sk, row_pk, FIRST_SK, HEAD_SK, LAST_SK};
use super::records::s;
use super::{Repo, StoreError};
use crate::domain::movement::{Movement, Reason, RowKey, RowLedger};
use crate::domain::time::format_time;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone)]
pub struct Ledger(pub(crate) Repo);

/// Where a page of movements starts: after the movement at sort key `sk` of the row
/// `pk` (movements order by sort key, then row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub sk: String,
    pub pk: String,
}

impl Position {
    pub fn encode(&self) -> String {
        format!("{}|{}", self.sk, self.pk)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (sk, pk) = s.split_once('|')?;
        Some(Self { sk: sk.into(), pk: pk.into() })
    }
}

/// A page of movements, each with its position, and whether more follow.
#[derive(Debug, Clone)]
pub struct MovementPage {
    pub movements: Vec<(Position, Movement)>,
    pub more: bool,
}

/// Which movements a page holds: `rows` (each row's partition), the time range, reasons
/// (empty: all).
#[derive(Debug, Clone)]
pub struct MovementRange<'a> {
    pub rows: &'a [RowKey],
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub reasons: &'a [Reason],
}

/// One row's partition as a source of the merge.
struct Source {
    pk: String,
    lo: String,
    buffer: VecDeque<(String, Movement)>,
    next: Option<Key>,
    done: bool,
}

impl Ledger {
    /// The heads of `rows` (one `BatchGetItem` per 100); rows without one are absent.
    pub async fn heads(&self, rows: &[RowKey]) -> Result<HashMap<RowKey, RowLedger>, StoreError> {
        let keys = rows.iter().map(|r| (row_pk(r), HEAD_SK.to_string())).collect();
        let items = self.0.db.batch_get(&self.0.table, keys).await?;
        items.iter().map(rec::head).collect()
    }

    /// Writes movements without conditions, 25 per request: a movement's key and content
    /// follow from its write and the head it was planned on, so writing it again (a
    /// redelivery before the head moved) rewrites the same item.
    pub async fn put_movements(&self, movements: &[Movement]) -> Result<(), StoreError> {
        let items = movements.iter().map(rec::movement_item).collect();
        self.0.db.batch_put("put_movements", &self.0.table, items).await
    }

    /// Moves `row`'s head from the one read (`read`: its position, `None` when it had
    /// none) to `next`. `false`: another writer moved it first, so the movements planned
    /// on `read` are stale (they are planned again when the stream delivers again).
    pub async fn advance(
        &self,
        row: &RowKey,
        read: Option<&str>,
        next: &RowLedger,
    ) -> Result<bool, StoreError> {
        let put = self.0.db.put_item(&self.0.table).set_item(Some(rec::head_item(row, next)));
        let put = match read {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(p) => put
                .condition_expression("#position = :read")
                .expression_attribute_names("#position", "position")
                .expression_attribute_values(":read", s(p)),
        };
        Ok(matches!(self.0.db.put("advance_ledger_head", put).await?, Write::Applied))
    }

    /// Up to `limit` movements of `range` after `after`, oldest first: the rows'
    /// partitions are read `limit + 1` at a time each and merged by (time, `seq`, row).
    /// Cost: one `Query` per row per page (more only when a reason filter skips many).
    pub async fn page(
        &self,
        range: &MovementRange<'_>,
        after: Option<&Position>,
        limit: usize,
    ) -> Result<MovementPage, StoreError> {
        let hi = range.to.map(format_time).unwrap_or_else(|| LAST_SK.to_string());
        let from = range.from.map(format_time).unwrap_or_else(|| FIRST_SK.to_string());
        let mut sources: Vec<Source> = range
            .rows
            .iter()
            .map(|row| {
                let pk = row_pk(row);
                let lo = match after {
                    // Rows up to the cursor's have given every movement of its key.
                    Some(a) if pk <= a.pk => after_sk(&a.sk).unwrap_or_else(|| a.sk.clone()),
                    Some(a) => a.sk.clone(),
                    None => from.clone(),
                };
                // DynamoDB refuses a BETWEEN whose bounds are reversed: an empty range.
                let done = lo.as_str() > hi.as_str();
                Source { pk, lo, buffer: VecDeque::new(), next: None, done }
            })
            .collect();
        let want = limit + 1;
        let mut out: Vec<(Position, Movement)> = Vec::new();
        while out.len() < want {
            let empty: Vec<usize> =
                (0..sources.len()).filter(|&i| sources[i].buffer.is_empty() && !sources[i].done).collect();
            if !empty.is_empty() {
                let reads = empty.iter().map(|&i| self.read_source(&sources[i], &hi, range.reasons, want));
                let pages = futures::future::try_join_all(reads).await?;
                for (i, (items, next)) in empty.into_iter().zip(pages) {
                    sources[i].buffer.extend(items);
                    sources[i].done = next.is_none();
                    sources[i].next = next;
                }
                continue;
            }
            let best = (0..sources.len()).filter(|&i| !sources[i].buffer.is_empty()).min_by(|&a, &b| {
                let key =
                    |i: usize| (sources[i].buffer.front().map(|(sk, _)| sk.clone()), sources[i].pk.clone());
                key(a).cmp(&key(b))
            });
            let Some(i) = best else { break };
            if let Some((sk, m)) = sources[i].buffer.pop_front() {
                out.push((Position { sk, pk: sources[i].pk.clone() }, m));
            }
        }
        let more = out.len() > limit;
        out.truncate(limit);
        Ok(MovementPage { movements: out, more })
    }

    async fn read_source(
        &self,
        src: &Source,
        hi: &str,
        reasons: &[Reason],
        want: usize,
    ) -> Result<(Vec<(String, Movement)>, Option<Key>), StoreError> {
        let mut q = self
            .0
            .db
            .query(&self.0.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(&src.pk))
            .expression_attribute_values(":lo", s(&src.lo))
            .expression_attribute_values(":hi", s(hi))
            .limit(i32::try_from(want).unwrap_or(i32::MAX))
            .consistent_read(true);
        if !reasons.is_empty() {
            let names: Vec<String> = (0..reasons.len()).map(|i| format!(":r{i}")).collect();
            q = q
                .filter_expression(format!("#reason IN ({})", names.join(", ")))
                .expression_attribute_names("#reason", "reason");
            for (name, r) in names.iter().zip(reasons) {
                q = q.expression_attribute_values(name, s(r.as_str()));
            }
        }
        let page = self.0.db.query_page("list_movements", q, src.next.clone()).await?;
        let items = page
            .items
            .iter()
            .map(|i| Ok((i.s("sk")?.to_string(), rec::movement(i)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok((items, page.next))
    }

    /// `row`'s last movement at or before `t` (one `Query` reading one item, whatever the
    /// length of the history).
    pub async fn last_at(&self, row: &RowKey, t: DateTime<Utc>) -> Result<Option<Movement>, StoreError> {
        let q = self
            .0
            .db
            .query(&self.0.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(row_pk(row)))
            .expression_attribute_values(":lo", s(FIRST_SK))
            .expression_attribute_values(":hi", s(format!("{}#{LAST_SK}", format_time(t))))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true);
        let page = self.0.db.query_page("stock_as_of", q, None).await?;
        page.items.first().map(rec::movement).transpose()
    }
}
