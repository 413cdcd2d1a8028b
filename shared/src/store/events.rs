//! The replay feed (in the audit table; keys in `records::event`): writing an entity's
//! events together with their audit entries, exactly once per change, and reading the
//! feed in publication order from a cursor. The stock events are written by the ledger,
//! in the transaction of the movements they come from (`Ledger::append`).

use super::records::audit as audit_rec;
use super::records::event::{self as rec, feed_pk, hour_of, hour_start, FEED_HOURS_PK, FEED_SHARDS};
use super::records::{put, put_always, s, Attrs};
use super::{Repo, StoreError};
use crate::domain::audit::AuditEntry;
use crate::domain::event::FeedEntry;
use chrono::{DateTime, Utc};

/// Entries (with their events) one transaction writes: two items each.
const PAIRS_PER_TRANSACTION: usize = 50;

/// Items a filtered page reads per shard (about 1 MB of 1 KB events at most; a filter's
/// page is cut there and may be short, with a cursor, as DynamoDB's own filters are).
const FILTERED_READ: usize = 500;

/// Hours with events one page reads at most (an hour costs a `Query` per shard). Quiet
/// hours cost nothing: a page lists the hours that have events (`FeedHours`) and reads
/// only those, so an empty page means that nothing has been published since the cursor.
const HOURS_PER_PAGE: usize = 24;

/// The hours of the feed that have events (`records::event::hour_item`). A writer marks
/// an hour before it writes the hour's first events, once per process and hour (the
/// mark is an idempotent put outside the events' transactions, so that no two writers
/// ever contend for it): an hour with events is always listed; one whose events a crash
/// kept from being written is listed and reads empty.
#[derive(Debug, Clone)]
pub struct FeedHours {
    repo: Repo,
    marked: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl FeedHours {
    pub(crate) fn new(repo: Repo) -> Self {
        Self { repo, marked: Default::default() }
    }

    /// Marks the hour of `at` (the publication time of events about to be written).
    pub async fn mark(&self, at: DateTime<Utc>) -> Result<(), StoreError> {
        let hour = hour_of(&crate::domain::time::format_time(at)).to_string();
        if self.marked.lock().map(|m| m.as_deref() == Some(hour.as_str())).unwrap_or(false) {
            return Ok(());
        }
        let put = self.repo.db.put_item(&self.repo.table).set_item(Some(rec::hour_item(&hour)));
        self.repo.db.put("mark_feed_hour", put).await?;
        if let Ok(mut m) = self.marked.lock() {
            *m = Some(hour);
        }
        Ok(())
    }

    /// Up to `limit` hours with events from `first` to `last` (inclusive), in order.
    async fn between(&self, first: &str, last: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let q = self
            .repo
            .db
            .query(&self.repo.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :first AND :last")
            .expression_attribute_values(":pk", s(FEED_HOURS_PK))
            .expression_attribute_values(":first", s(first))
            .expression_attribute_values(":last", s(last))
            .limit(i32::try_from(limit).unwrap_or(100))
            .consistent_read(true);
        let page = self.repo.db.query_page("list_feed_hours", q, None).await?;
        Ok(page.items.iter().filter_map(|i| i.opt_s("sk").map(str::to_string)).collect())
    }
}

/// What the feed's reader asks for besides the position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedFilter {
    /// Detail-types; empty: all.
    pub types: Vec<String>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
}

impl FeedFilter {
    fn is_empty(&self) -> bool {
        self.types.is_empty() && self.entity_type.is_none() && self.entity_id.is_none()
    }
}

/// A page of the feed: the events' sort keys and details, and where the next page starts
/// (never none: a consumer keeps it and asks again).
#[derive(Debug, Clone)]
pub struct FeedPage {
    pub events: Vec<(String, serde_json::Value)>,
    pub next: String,
}

#[derive(Debug, Clone)]
pub struct Feed(pub(crate) Repo, pub(crate) FeedHours);

impl Feed {
    /// Writes each audit entry with its event, an entry and its event in the same
    /// transaction on condition that the entry is new: a record delivered again (its
    /// entry already written) writes neither, so no event is published twice from one
    /// change, whatever failed in between. 50 pairs per transaction; pairs whose entry
    /// exists are dropped and the rest written again. The events are published at `at`.
    pub async fn put_with_entries(
        &self,
        pairs: &[(&(AuditEntry, String), &FeedEntry)],
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut written = 0;
        if !pairs.is_empty() {
            self.1.mark(at).await?;
        }
        for chunk in pairs.chunks(PAIRS_PER_TRANSACTION) {
            let mut items: Vec<(Attrs, Attrs)> = chunk
                .iter()
                .map(|((entry, order_key), event)| {
                    Ok((audit_rec::item(entry, order_key)?, rec::feed_item(event, at)?))
                })
                .collect::<Result<_, StoreError>>()?;
            while !items.is_empty() {
                let mut writes = Vec::with_capacity(items.len() * 2);
                for (entry, event) in &items {
                    writes.push(put(&self.0.table, entry.clone(), "attribute_not_exists(pk)")?);
                    writes.push(put_always(&self.0.table, event.clone())?);
                }
                match self.0.db.transact("put_entries_with_events", writes).await {
                    Ok(()) => {
                        written += items.len() as u64;
                        break;
                    }
                    Err(StoreError::ConditionFailed { items: failed, .. })
                        if !failed.is_empty() && failed.iter().all(|(i, _)| i % 2 == 0) =>
                    {
                        let known: Vec<usize> = failed.iter().map(|(i, _)| i / 2).collect();
                        items = items
                            .into_iter()
                            .enumerate()
                            .filter(|(k, _)| !known.contains(k))
                            .map(|(_, pair)| pair)
                            .collect();
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(written)
    }

    /// Up to `limit` events after the sort key `after` and before `before` (a time, as
    /// formatted: the feed trails the writers by enough that every event before it is
    /// written), oldest first. Each hour's shards are read once per page (one `Query`
    /// each, `limit + 1` events, or `FILTERED_READ` with a filter) and merged by sort key;
    /// a page a filter leaves short ends at the least point every shard was read to.
    pub async fn page(
        &self,
        after: &str,
        before: &str,
        filter: &FeedFilter,
        limit: usize,
    ) -> Result<FeedPage, StoreError> {
        if after >= before {
            return Ok(FeedPage { events: Vec::new(), next: after.to_string() });
        }
        let mut events = Vec::new();
        let mut from = after.to_string();
        let hours = self.1.between(hour_of(after), hour_of(before), HOURS_PER_PAGE).await?;
        let full = hours.len() == HOURS_PER_PAGE;
        for hour in &hours {
            // A later hour is read from its first instant (which no key equals).
            if hour.as_str() > hour_of(&from) {
                match hour_start(hour) {
                    Some(t) => from = crate::domain::time::format_time(t),
                    None => continue,
                }
            }
            if from.as_str() >= before {
                break;
            }
            let want = limit - events.len();
            let (found, read_to) = self.hour(hour, &from, before, filter, want).await?;
            events.extend(found);
            if events.len() >= limit {
                let next = events.last().map(|(k, _)| k.clone()).unwrap_or(from);
                return Ok(FeedPage { events, next });
            }
            if let Some(point) = read_to {
                // A shard read short of its end: the page ends where every shard was read.
                return Ok(FeedPage { events, next: point });
            }
            // The hour was read to its end (or to `before`).
            from = match next_hour(hour) {
                Some(n) if n.as_str() < before => n,
                _ => before.to_string(),
            };
        }
        // Every hour with events up to `before` was read, unless the page's hours ran out
        // first (then it goes on from the end of the last one it read).
        let next = if full { from } else { before.to_string() };
        Ok(FeedPage { events, next: if next.as_str() < after { after.to_string() } else { next } })
    }

    /// The events of one hour after `from` and before `before`, at most `want`; and,
    /// when a shard stopped short of the hour's end, the least point every shard was read
    /// to (where the page must end).
    async fn hour(
        &self,
        hour: &str,
        from: &str,
        before: &str,
        filter: &FeedFilter,
        want: usize,
    ) -> Result<(Vec<(String, serde_json::Value)>, Option<String>), StoreError> {
        let read = if filter.is_empty() { want + 1 } else { (want + 1).max(FILTERED_READ) };
        let mut merged: Vec<(String, serde_json::Value)> = Vec::new();
        let mut frontier: Option<String> = None;
        for shard in 0..FEED_SHARDS {
            let mut q = self
                .0
                .db
                .query(&self.0.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :before")
                .expression_attribute_values(":pk", s(feed_pk(hour, shard)))
                // BETWEEN is inclusive: `from` itself (a key already given, or an hour's
                // first instant, which no key equals) is dropped below, and `before` is a
                // time no key equals (keys go on after it).
                .expression_attribute_values(":from", s(from))
                .expression_attribute_values(":before", s(before))
                .limit(i32::try_from(read).unwrap_or(1000))
                .consistent_read(true);
            let mut conditions = Vec::new();
            if !filter.types.is_empty() {
                let names: Vec<String> = (0..filter.types.len()).map(|i| format!(":t{i}")).collect();
                for (name, t) in names.iter().zip(&filter.types) {
                    q = q.expression_attribute_values(name, s(t));
                }
                conditions.push(format!("#type IN ({})", names.join(", ")));
                q = q.expression_attribute_names("#type", "type");
            }
            if let Some(t) = &filter.entity_type {
                conditions.push("entity_type = :et".into());
                q = q.expression_attribute_values(":et", s(t));
            }
            if let Some(id) = &filter.entity_id {
                conditions.push("entity_id = :eid".into());
                q = q.expression_attribute_values(":eid", s(id));
            }
            if !conditions.is_empty() {
                q = q.filter_expression(conditions.join(" AND "));
            }
            let page = self.0.db.query_page("read_event_feed", q, None).await?;
            for item in &page.items {
                let (sk, detail) = rec::feed_event(item)?;
                if sk.as_str() > from {
                    merged.push((sk, detail));
                }
            }
            if let Some(last) = page.next.as_ref().and_then(|k| k.get("sk")).and_then(|v| v.as_s().ok()) {
                if frontier.as_deref().is_none_or(|f| last.as_str() < f) {
                    frontier = Some(last.clone());
                }
            }
        }
        merged.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(f) = &frontier {
            merged.retain(|(k, _)| k.as_str() <= f.as_str());
        }
        let short = merged.len() < want;
        merged.truncate(want);
        Ok((merged, if short { frontier } else { None }))
    }
}

/// The first instant of the hour after `hour` (`yyyy-mm-ddThh`), formatted as times are.
fn next_hour(hour: &str) -> Option<String> {
    hour_start(hour).map(|t| crate::domain::time::format_time(t + chrono::Duration::hours(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_hour_starts_at_its_first_millisecond_and_crosses_days() {
        assert_eq!(next_hour("2026-12-07T23").as_deref(), Some("2026-12-08T00:00:00.000Z"));
        assert_eq!(next_hour("2026-12-07T06").as_deref(), Some("2026-12-07T07:00:00.000Z"));
        assert_eq!(next_hour("nonsense"), None);
    }
}
