//! Items of the replay feed, in the audit table: one per event, in a partition per hour of
//! publication and shard (`F#<yyyy-mm-ddThh>#<shard>`), sorted by the time it was
//! written, then by its position in the stream (`<published_at>#<position>#<event_id>`),
//! so that every shard of an hour reads in publication order and the shards merge by
//! sort key. Each item expires by TTL 7 days (and a day of grace) after publication.

use super::audit::{image, RecordError};
use super::{from_item, order, product, reservation, to_attrs, transfer, waitlist, Attrs};
use crate::domain::event::{Changed, EntityChange, EventType, FeedEntry, Outgoing, FEED_DAYS};
use crate::domain::time::{format_time, parse_time};
use crate::store::keys::EVENT_SEQ;
use crate::store::{Item, StoreError};
use aws_lambda_events::event::dynamodb::EventRecord;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How many partitions one hour of events is spread over: an event is written once, and
/// a DynamoDB partition takes about 1,000 writes per second, so four keep a flash sale's
/// events (three or four per hold) off one partition's limit; a page reads each.
pub const FEED_SHARDS: u32 = 4;

#[derive(Debug, Serialize, Deserialize)]
struct FeedRecord {
    pk: String,
    sk: String,
    event_id: String,
    #[serde(rename = "type")]
    kind: String,
    entity_type: String,
    entity_id: String,
    published_at: String,
    /// The event's `detail` as JSON text: what the feed answers and what is published.
    detail: String,
    ttl: i64,
}

/// The hour (`yyyy-mm-ddThh`) of a feed key or time: the first 13 characters.
pub fn hour_of(key: &str) -> &str {
    key.get(..13).unwrap_or(key)
}

/// The partition of an hour's shard.
pub fn feed_pk(hour: &str, shard: u32) -> String {
    format!("F#{hour}#{shard}")
}

/// The partition listing the hours that have events (`FH` / `<yyyy-mm-ddThh>`), so that a
/// reader goes from one such hour to the next instead of reading every quiet hour's
/// shards. Not a feed key (`is_feed_key`): the publisher never sees it.
pub const FEED_HOURS_PK: &str = "FH";

/// The item saying that `hour` has (or is about to have) events; kept as long as them.
pub fn hour_item(hour: &str) -> Attrs {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    let ttl = hour_start(hour).map_or(0, |t| (t + chrono::Duration::days(FEED_DAYS + 1)).timestamp());
    Attrs::from([
        ("pk".to_string(), S(FEED_HOURS_PK.into())),
        ("sk".to_string(), S(hour.to_string())),
        (crate::store::keys::TTL.to_string(), N(ttl.to_string())),
    ])
}

/// The first instant of `hour` (`yyyy-mm-ddThh`).
pub fn hour_start(hour: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDateTime::parse_from_str(&format!("{hour}:00:00"), "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

/// The shard of an event: by its id, so the events of one batch spread.
fn shard_of(event_id: &str) -> u32 {
    let h = event_id
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    u32::try_from(h % u64::from(FEED_SHARDS)).unwrap_or(0)
}

/// The feed item of `entry`, published at `at`.
pub fn feed_item(entry: &FeedEntry, at: DateTime<Utc>) -> Result<Attrs, StoreError> {
    let e = &entry.event;
    let published_at = format_time(at);
    to_attrs(&FeedRecord {
        pk: feed_pk(hour_of(&published_at), shard_of(&e.event_id)),
        sk: format!("{published_at}#{}#{}", entry.position, e.event_id),
        event_id: e.event_id.clone(),
        kind: e.kind.as_str().into(),
        entity_type: e.kind.entity_type().into(),
        entity_id: e.entity_id.clone(),
        detail: e.detail().to_string(),
        published_at,
        ttl: (at + chrono::Duration::days(FEED_DAYS + 1)).timestamp(),
    })
}

/// A feed item's sort key and its detail.
pub fn feed_event(i: &Item) -> Result<(String, serde_json::Value), StoreError> {
    let r: FeedRecord = from_item(i)?;
    let detail =
        serde_json::from_str(&r.detail).map_err(|e| StoreError::Internal(format!("feed detail: {e}")))?;
    Ok((r.sk, detail))
}

/// Whether an item of the audit table is a feed event (what the publisher takes from its
/// stream).
pub fn is_feed_key(pk: &str) -> bool {
    pk.starts_with("F#")
}

/// The event a record of the audit table's stream publishes: a feed item's insertion;
/// `None` for every other record (entries, set-aside records, TTL removals).
pub fn outgoing_from_record(r: &EventRecord) -> Result<Option<Outgoing>, RecordError> {
    if r.event_name != "INSERT" {
        return Ok(None);
    }
    let new = image(&r.change.new_image)?;
    if !new.get("pk").and_then(serde_json::Value::as_str).is_some_and(is_feed_key) {
        return Ok(None);
    }
    let attrs = serde_dynamo::to_item(serde_json::Value::Object(new))
        .map_err(|e| RecordError::Image(e.to_string()))?;
    let f: FeedRecord = from_item(&Item(attrs)).map_err(|e| RecordError::Image(e.to_string()))?;
    let kind =
        EventType::parse(&f.kind).ok_or(RecordError::Image(format!("unknown event type {:?}", f.kind)))?;
    let detail: serde_json::Value =
        serde_json::from_str(&f.detail).map_err(|e| RecordError::Image(format!("detail: {e}")))?;
    let time = detail["occurred_at"]
        .as_str()
        .and_then(parse_time)
        .or_else(|| parse_time(&f.published_at))
        .ok_or(RecordError::Missing("feed item", "a time"))?;
    Ok(Some(Outgoing { event_id: f.event_id, kind, time, detail: f.detail }))
}

/// The change of a product, reservation or order a stream record shows, with the entity
/// decoded from its images (a product without its stock rows, which are items of their
/// own); `None` for records of other items and for removals (TTL and operators: no
/// business change).
pub fn changed_from_record(r: &EventRecord) -> Result<Option<Changed>, RecordError> {
    if !matches!(r.event_name.as_str(), "INSERT" | "MODIFY") {
        return Ok(None);
    }
    let (old, new) = (image(&r.change.old_image)?, image(&r.change.new_image)?);
    let Some(entity) = new.get("entity").and_then(serde_json::Value::as_str) else { return Ok(None) };
    let item = |m: &serde_json::Map<String, serde_json::Value>| -> Result<Option<Item>, RecordError> {
        if m.is_empty() {
            return Ok(None);
        }
        serde_dynamo::to_item(serde_json::Value::Object(m.clone()))
            .map(|attrs| Some(Item(attrs)))
            .map_err(|e| RecordError::Image(e.to_string()))
    };
    let (before, after) = (item(&old)?, item(&new)?.ok_or(RecordError::Missing("record", "new image"))?);
    let sequence = after.opt_n(EVENT_SEQ).and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
    let bad = |e: StoreError| RecordError::Image(e.to_string());
    fn both<T>(
        before: Option<&Item>,
        after: &Item,
        decode: impl Fn(&Item) -> Result<T, StoreError>,
    ) -> Result<(Option<T>, T), StoreError> {
        Ok((before.map(&decode).transpose()?, decode(after)?))
    }
    Ok(Some(match entity {
        "product" => {
            let (before, after) =
                both(before.as_ref(), &after, |i| product::product(i, Vec::new())).map_err(bad)?;
            Changed::Product(EntityChange { before, after, sequence })
        }
        "reservation" => {
            let (before, after) = both(before.as_ref(), &after, reservation::reservation).map_err(bad)?;
            Changed::Reservation(EntityChange { before, after, sequence })
        }
        "order" => {
            let (before, after) = both(before.as_ref(), &after, order::order).map_err(bad)?;
            Changed::Order(EntityChange { before, after, sequence })
        }
        "transfer" => {
            let (before, after) = both(before.as_ref(), &after, transfer::transfer).map_err(bad)?;
            Changed::Transfer(EntityChange { before, after, sequence })
        }
        "waitlist_entry" => {
            let (before, after) = both(before.as_ref(), &after, waitlist::entry).map_err(bad)?;
            Changed::Waitlist(EntityChange { before, after, sequence })
        }
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shards_spread_events_and_the_hour_is_the_keys_prefix() {
        let mut seen = [0u32; FEED_SHARDS as usize];
        for i in 0..400 {
            seen[shard_of(&format!("01KN{i:06}")) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 50), "{seen:?}");
        assert_eq!(hour_of("2026-12-07T06:59:59.999Z#0001#x"), "2026-12-07T06");
    }
}
