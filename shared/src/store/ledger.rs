//! The stock ledger, in the audit table (`records::movement`): the stream consumer appends
//! each row's movements and then moves the row's head on, on the condition that nobody
//! moved it since it was read; the admin API reads a product's movements (its rows'
//! partitions merged in time order), its stock at an instant (one item per row) and the
//! heads' running sums.

use super::keys::{PK, SK};
use super::records::event::feed_item;
use super::records::movement::{
    self as rec, after_sk, movement_sk, row_pk, CHECK_SK, FIRST_SK, HEAD_SK, LAST_SK,
};
use super::records::{put_always, s};
use super::{Item, Repo, StoreError};
use crate::domain::event::FeedEntry;
use crate::domain::movement::{Checkpoint, Counts, Movement, Reason, Recount, RowKey, RowLedger};
use crate::domain::time::format_time;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};

/// Most movements one `append` writes: a transaction holds at most 100 items: the head,
/// the movements and their stock events (a `StockChanged` each, and at most one crossing).
pub const MOVEMENTS_PER_APPEND: usize = 33;

#[derive(Debug, Clone)]
pub struct Ledger(pub(crate) Repo, pub(crate) super::events::FeedHours);

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

/// A page of movements, each with its position, and where the next page starts (none:
/// the range is read to its end).
#[derive(Debug, Clone)]
pub struct MovementPage {
    pub movements: Vec<(Position, Movement)>,
    pub next: Option<Position>,
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
    /// The last sort key read, when the partition goes on past it.
    read_to: Option<String>,
    done: bool,
}

/// Movements one filtered read looks at (about 300 bytes each: some 75 read units of a
/// strongly consistent `Query`), so that a reason few movements have pages on in steps of
/// bounded cost instead of reading the row to its end in one request.
pub const FILTERED_READ: usize = 1000;

impl Ledger {
    /// The heads of `rows` (one `BatchGetItem` per 100); rows without one are absent. A
    /// head that does not decode is an `Err` of its row alone: one bad item must not stop
    /// the others' movements.
    pub async fn heads(
        &self,
        rows: &[RowKey],
    ) -> Result<HashMap<RowKey, Result<RowLedger, StoreError>>, StoreError> {
        let items = self.row_items(rows, HEAD_SK).await?;
        Ok(items.into_iter().map(|(row, item)| (row, rec::head(&item).map(|(_, ledger)| ledger))).collect())
    }

    /// The checkpoints of `rows` (one `BatchGetItem` per 100); rows without one are absent.
    pub async fn checkpoints(&self, rows: &[RowKey]) -> Result<HashMap<RowKey, Checkpoint>, StoreError> {
        let items = self.row_items(rows, CHECK_SK).await?;
        items.into_iter().map(|(row, item)| Ok((row, rec::checkpoint(&item)?))).collect()
    }

    /// The item at sort key `sk` of each row's partition, with the row it belongs to.
    async fn row_items(&self, rows: &[RowKey], sk: &str) -> Result<Vec<(RowKey, Item)>, StoreError> {
        let by_pk: HashMap<String, &RowKey> = rows.iter().map(|r| (row_pk(r), r)).collect();
        let keys = by_pk.keys().map(|pk| (pk.clone(), sk.to_string())).collect();
        let items = self.0.db.batch_get(&self.0.table, keys).await?;
        Ok(items
            .into_iter()
            .filter_map(|item| {
                let row = item.opt_s(PK).and_then(|pk| by_pk.get(pk)).map(|r| (*r).clone())?;
                Some((row, item))
            })
            .collect())
    }

    /// Reads `row`'s movements after `from` (none: all of them) back and sums them: one
    /// `Query` per 1 MB of movements since the checkpoint, only their numbers and changes
    /// projected. What a recount costs follows the movements since the last checkpoint,
    /// never the row's history.
    /// With `budget`, it reads at most that many movements and says whether it read them
    /// all (`Recount::complete`).
    pub async fn recount(
        &self,
        row: &RowKey,
        from: Option<&Checkpoint>,
        budget: Option<usize>,
    ) -> Result<Recount, StoreError> {
        let lo = match from.and_then(|c| c.at.map(|at| movement_sk(&format_time(at), c.seq))) {
            Some(sk) => after_sk(&sk).unwrap_or(sk),
            None => FIRST_SK.to_string(),
        };
        let q = self
            .0
            .db
            .query(&self.0.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .projection_expression("seq, #reason, on_hand_change, reserved_change")
            .expression_attribute_names("#reason", "reason")
            .expression_attribute_values(":pk", s(row_pk(row)))
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(LAST_SK))
            .consistent_read(true);
        let start = from.cloned().unwrap_or_default();
        let mut r = Recount { ledger: start.ledger, seq: start.seq, chained: true, read: 0, complete: true };
        // One more than the budget tells a cut-off read from one that ended there.
        let items = self.0.db.query_all("recount_movements", q, budget.map(|b| b + 1)).await?;
        if let Some(b) = budget.filter(|b| items.len() > *b) {
            r.complete = false;
            tracing::info!(
                product_id = row.product_id,
                warehouse_id = row.warehouse_id,
                budget = b,
                "recount cut off at its budget"
            );
            return Ok(r);
        }
        for item in items {
            let seq =
                u64::try_from(item.n("seq")?).map_err(|_| StoreError::Internal("bad movement seq".into()))?;
            r.chained &= seq == r.seq + 1;
            r.seq = seq;
            r.read += 1;
            let reason = item.opt_s("reason").and_then(Reason::parse).unwrap_or(Reason::Unknown);
            if reason.counted() {
                r.ledger = Counts {
                    on_hand: r.ledger.on_hand + item.n("on_hand_change")?,
                    reserved: r.ledger.reserved + item.n("reserved_change")?,
                };
            }
        }
        Ok(r)
    }

    /// Moves `row`'s checkpoint to `to`, unless one at or past it is there (a run racing
    /// another).
    pub async fn move_checkpoint(&self, row: &RowKey, to: &Checkpoint) -> Result<(), StoreError> {
        let put = self
            .0
            .db
            .put_item(&self.0.table)
            .set_item(Some(rec::checkpoint_item(row, to)))
            .condition_expression("attribute_not_exists(pk) OR seq < :seq")
            .expression_attribute_values(":seq", super::records::n(to.seq as i64));
        self.0.db.put("move_checkpoint", put).await.map(|_| ())
    }

    /// Writes movements without conditions, 25 per request. Not the consumer's path (a
    /// movement exists only with the head that counts it: `append`): for seeding a long
    /// history in tests and benchmarks.
    pub async fn put_movements(&self, movements: &[Movement]) -> Result<(), StoreError> {
        let items = movements.iter().map(rec::movement_item).collect();
        self.0.db.batch_put("put_movements", &self.0.table, items).await
    }

    /// Writes `movements` of `row` and moves its head from the one read (`read`: its
    /// position, `None` when it had none) to `next`, in one transaction on condition that
    /// nobody moved the head since: a movement exists exactly when the head that numbered
    /// it does, so a plan given up (the head moved, the record dropped) leaves nothing, and
    /// `seq` can neither repeat nor skip. `false`: another writer moved the head first
    /// (the movements are planned again when the stream delivers again). At most
    /// `MOVEMENTS_PER_APPEND` movements.
    ///
    /// The stock events the movements make (`events`, at most two per movement) go into
    /// the replay feed in the same transaction, published at `at`: an event exists exactly
    /// when its movement does, so none is lost or written twice.
    pub async fn append(
        &self,
        row: &RowKey,
        read: Option<&str>,
        next: &RowLedger,
        movements: &[Movement],
        events: &[FeedEntry],
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if movements.len() > MOVEMENTS_PER_APPEND || events.len() > 2 * MOVEMENTS_PER_APPEND {
            return Err(StoreError::Internal(format!(
                "{} movements and {} events in one append",
                movements.len(),
                events.len()
            )));
        }
        let head = Put::builder().table_name(&*self.0.table).set_item(Some(rec::head_item(row, next)));
        let head = match read {
            None => head.condition_expression("attribute_not_exists(pk)"),
            Some(p) => head
                .condition_expression("#position = :read")
                .expression_attribute_names("#position", "position")
                .expression_attribute_values(":read", s(p)),
        };
        if !events.is_empty() {
            self.1.mark(at).await?;
        }
        let mut items = vec![TransactWriteItem::builder().put(head.build()?).build()];
        for m in movements {
            items.push(put_always(&self.0.table, rec::movement_item(m))?);
        }
        for e in events {
            items.push(put_always(&self.0.table, feed_item(e, at)?)?);
        }
        match self.0.db.transact("append_movements", items).await {
            Ok(()) => Ok(true),
            Err(e) if e.failed_at(0).is_some() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Up to `limit` movements of `range` after `after`, oldest first: each row's partition
    /// is read once, `limit + 1` movements (with a reason filter: `FILTERED_READ`
    /// movements, of which the filter keeps some), and the rows merged by (time, `seq`,
    /// row). A page therefore costs at most one `Query` per row, whatever the history and
    /// the filter. When a filter leaves a row's read short of the page, the page ends at
    /// the least point every row has been read to, with a cursor there (as DynamoDB's own
    /// filtered `Query` does): it may hold fewer than `limit` movements, none at all,
    /// and still have a `next`.
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
                Source { pk, lo, buffer: VecDeque::new(), read_to: None, done }
            })
            .collect();
        let want = limit + 1;
        let batch = if range.reasons.is_empty() { want } else { want.max(FILTERED_READ) };
        let reads =
            sources.iter().filter(|s| !s.done).map(|src| self.read_source(src, &hi, range.reasons, batch));
        let pages = futures::future::try_join_all(reads).await?;
        for (src, (items, read_to)) in sources.iter_mut().filter(|s| !s.done).zip(pages) {
            src.buffer.extend(items);
            src.done = read_to.is_none();
            src.read_to = read_to;
        }
        // Every row has been read up to here: (its last key read, its partition), the
        // least over the rows not read to their end.
        let frontier: Option<(String, String)> =
            sources.iter().filter_map(|s| s.read_to.clone().map(|sk| (sk, s.pk.clone()))).min();
        let mut out: Vec<(Position, Movement)> = Vec::new();
        while out.len() < want {
            let best = (0..sources.len())
                .filter_map(|i| {
                    sources[i].buffer.front().map(|(sk, _)| ((sk.clone(), sources[i].pk.clone()), i))
                })
                .min();
            let Some((key, i)) = best else { break };
            if frontier.as_ref().is_some_and(|f| key > *f) {
                break;
            }
            if let Some((sk, m)) = sources[i].buffer.pop_front() {
                out.push((Position { sk, pk: sources[i].pk.clone() }, m));
            }
        }
        let next = if out.len() > limit {
            out.truncate(limit);
            out.last().map(|(p, _)| p.clone())
        } else {
            // Short of the page: either every row is read to its end, or a filter left one
            // short and the page ends where every row has been read.
            frontier.map(|(sk, pk)| Position { sk, pk })
        };
        Ok(MovementPage { movements: out, next })
    }

    /// One `Query` of a row's partition from its start: the movements the filter keeps,
    /// and the last sort key read when the partition goes on.
    async fn read_source(
        &self,
        src: &Source,
        hi: &str,
        reasons: &[Reason],
        batch: usize,
    ) -> Result<(Vec<(String, Movement)>, Option<String>), StoreError> {
        let mut q = self
            .0
            .db
            .query(&self.0.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
            .expression_attribute_values(":pk", s(&src.pk))
            .expression_attribute_values(":lo", s(&src.lo))
            .expression_attribute_values(":hi", s(hi))
            .limit(i32::try_from(batch).unwrap_or(i32::MAX))
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
        let page = self.0.db.query_page("list_movements", q, None).await?;
        let items = page
            .items
            .iter()
            .map(|i| Ok((i.s("sk")?.to_string(), rec::movement(i)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let read_to =
            match &page.next {
                Some(key) => Some(key.get(SK).and_then(|v| v.as_s().ok()).cloned().ok_or_else(|| {
                    StoreError::Internal("a movement page's last key has no sort key".into())
                })?),
                None => None,
            };
        Ok((items, read_to))
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
