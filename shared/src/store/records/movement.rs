//! Movements and row heads, in the audit table. Each stock row's movements share a
//! partition, `M#<product>#<warehouse>#<bucket>`, sorted by time and `seq`
//! (`<at>#<seq:012>`), so a row's history in a time range and its last movement before an
//! instant are each one `Query`. The partition's head (`#HEAD`, sorting before every
//! time) keeps the row's ledger: last `seq`, the stream position of the last write
//! applied, the counts after it, the last stamp recorded, and the running sums the
//! reconciliation compares with the counters; the checkpoint (`#CHECK`, also before
//! every time) is where the reconciliation last proved those sums against the movements.
//! The decoding of a stock row's stream record into an `Observed` write lives here too.

use super::audit::{image, RecordError};
use super::{n, s, Attrs};
use crate::domain::movement::{
    Cause, Checkpoint, Counts, Movement, Observed, Reason, RefKind, Reference, RowKey, RowLedger,
};
use crate::domain::time::{format_time, parse_time};
use crate::store::keys::{PK, SK};
use crate::store::{Item, StoreError};
use aws_lambda_events::event::dynamodb::EventRecord;
use serde_json::{Map, Value};

/// The sort key of a row's head.
pub const HEAD_SK: &str = "#HEAD";
/// The sort key of a row's checkpoint (`Checkpoint`); below every movement's too.
pub const CHECK_SK: &str = "#CHECK";

/// The partition of one row's movements.
pub fn row_pk(row: &RowKey) -> String {
    format!("M#{}#{}#{}", row.product_id, row.warehouse_id, row.bucket)
}

/// The sort key of a row's movement `seq` at `at`; times of one fixed width sort as
/// text, and `seq` orders the movements of one millisecond.
pub fn movement_sk(at: &str, seq: u64) -> String {
    format!("{at}#{seq:012}")
}

/// The sort key right after movement `sk` of any row: the movements of one millisecond
/// differ only by `seq`, so the next possible key is the next `seq`'s.
pub fn after_sk(sk: &str) -> Option<String> {
    let (at, seq) = sk.rsplit_once('#')?;
    Some(movement_sk(at, seq.parse::<u64>().ok()?.checked_add(1)?))
}

/// Below every movement's sort key and above the head's (times start with a digit).
pub const FIRST_SK: &str = "0";
/// Above every movement's sort key.
pub const LAST_SK: &str = "~";

/// The write a stream record shows, when it is one of a stock row's that may have
/// changed its counts (an insert or a modification; rows are never deleted by the
/// service).
pub fn observed_from_record(r: &EventRecord) -> Result<Option<Observed>, RecordError> {
    if !matches!(r.event_name.as_str(), "INSERT" | "MODIFY") {
        return Ok(None);
    }
    let (old, new) = (image(&r.change.old_image)?, image(&r.change.new_image)?);
    if new.get("entity").and_then(Value::as_str) != Some("stock") {
        return Ok(None);
    }
    let text = |m: &Map<String, Value>, k: &'static str| m.get(k).and_then(Value::as_str).map(str::to_string);
    let int = |m: &Map<String, Value>, k: &'static str| m.get(k).and_then(Value::as_i64);
    let counts = |m: &Map<String, Value>| -> Result<Counts, RecordError> {
        Ok(Counts {
            on_hand: int(m, "on_hand").ok_or(RecordError::Missing("stock", "on_hand"))?,
            reserved: int(m, "reserved").ok_or(RecordError::Missing("stock", "reserved"))?,
        })
    };
    let row = RowKey {
        product_id: text(&new, "product_id").ok_or(RecordError::Missing("stock", "product_id"))?,
        warehouse_id: text(&new, "warehouse_id").ok_or(RecordError::Missing("stock", "warehouse_id"))?,
        bucket: usize::try_from(int(&new, "bucket").unwrap_or(0))
            .map_err(|_| RecordError::Missing("stock", "bucket"))?,
    };
    let position = match &r.change.sequence_number {
        Some(seq) if !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()) => format!("{seq:0>40}"),
        _ => return Err(RecordError::Missing("stock record", "sequence number")),
    };
    if r.event_id.is_empty() {
        return Err(RecordError::NoEventId);
    }
    let before = if old.is_empty() { Counts::default() } else { counts(&old)? };
    let stamp_id = |m: &Map<String, Value>| {
        m.get("mv").and_then(|v| v.get("id")).and_then(Value::as_str).map(str::to_string)
    };
    let stamp = match (stamp_id(&new), stamp_id(&old)) {
        (Some(id), old_id) if old_id.as_deref() != Some(id.as_str()) => {
            new.get("mv").and_then(cause).map(|c| (id, c))
        }
        _ => None,
    };
    let written = text(&new, "updated_at").as_deref().and_then(parse_time);
    let at = match (&stamp, written) {
        (Some(_), Some(t)) => t,
        _ => r.change.approximate_creation_date_time,
    };
    Ok(Some(Observed {
        row,
        position,
        event_id: r.event_id.clone(),
        at,
        before,
        after: counts(&new)?,
        stamp,
        stamped_before: stamp_id(&old).is_some(),
        opened: old.is_empty(),
        actor: text(&new, "last_actor").unwrap_or_else(|| "system".into()),
    }))
}

/// A stamp's cause; `None` when it names no reason this service knows.
fn cause(v: &Value) -> Option<Cause> {
    let reason = Reason::parse(v.get("reason")?.as_str()?)?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let reference = match (text("ref_type").as_deref().and_then(RefKind::parse), text("ref_id")) {
        (Some(kind), Some(id)) => Some(Reference { kind, id }),
        _ => None,
    };
    Some(Cause { reason, reference, note: text("note") })
}

/// A movement's item in its row's partition.
pub fn movement_item(m: &Movement) -> Attrs {
    let row =
        RowKey { product_id: m.product_id.clone(), warehouse_id: m.warehouse_id.clone(), bucket: m.bucket };
    let at = format_time(m.at);
    let mut item = Attrs::from([
        (PK.to_string(), s(row_pk(&row))),
        (SK.to_string(), s(movement_sk(&at, m.seq))),
        ("id".to_string(), s(&m.id)),
        ("product_id".to_string(), s(&m.product_id)),
        ("warehouse_id".to_string(), s(&m.warehouse_id)),
        ("bucket".to_string(), n(m.bucket as i64)),
        ("seq".to_string(), n(m.seq as i64)),
        ("at".to_string(), s(at)),
        ("reason".to_string(), s(m.reason.as_str())),
        ("actor".to_string(), s(&m.actor)),
        ("on_hand_change".to_string(), n(m.on_hand_change)),
        ("reserved_change".to_string(), n(m.reserved_change)),
        ("on_hand".to_string(), n(m.on_hand)),
        ("reserved".to_string(), n(m.reserved)),
    ]);
    if let Some(r) = &m.reference {
        item.insert("ref_type".into(), s(r.kind.as_str()));
        item.insert("ref_id".into(), s(&r.id));
    }
    if let Some(note) = &m.note {
        item.insert("note".into(), s(note));
    }
    item
}

/// A movement read back.
pub fn movement(i: &Item) -> Result<Movement, StoreError> {
    let bad = |what: &str| StoreError::Internal(format!("bad movement {what}"));
    let count = |k: &str| i.n(k);
    let reference = match (i.opt_s("ref_type").and_then(RefKind::parse), i.opt_s("ref_id")) {
        (Some(kind), Some(id)) => Some(Reference { kind, id: id.to_string() }),
        _ => None,
    };
    let (on_hand, reserved) = (count("on_hand")?, count("reserved")?);
    Ok(Movement {
        id: i.s("id")?.to_string(),
        product_id: i.s("product_id")?.to_string(),
        warehouse_id: i.s("warehouse_id")?.to_string(),
        bucket: usize::try_from(i.n("bucket")?).map_err(|_| bad("bucket"))?,
        seq: u64::try_from(i.n("seq")?).map_err(|_| bad("seq"))?,
        at: parse_time(i.s("at")?).ok_or_else(|| bad("time"))?,
        reason: Reason::parse(i.s("reason")?).ok_or_else(|| bad("reason"))?,
        reference,
        actor: i.s("actor")?.to_string(),
        note: i.opt_s("note").map(str::to_string),
        on_hand_change: count("on_hand_change")?,
        reserved_change: count("reserved_change")?,
        on_hand,
        reserved,
        available: on_hand - reserved,
    })
}

/// A row's head item.
pub fn head_item(row: &RowKey, l: &RowLedger) -> Attrs {
    let mut item = Attrs::from([
        (PK.to_string(), s(row_pk(row))),
        (SK.to_string(), s(HEAD_SK)),
        ("product_id".to_string(), s(&row.product_id)),
        ("warehouse_id".to_string(), s(&row.warehouse_id)),
        ("bucket".to_string(), n(row.bucket as i64)),
        ("seq".to_string(), n(l.seq as i64)),
        ("position".to_string(), s(&l.position)),
        ("on_hand".to_string(), n(l.counts.on_hand)),
        ("reserved".to_string(), n(l.counts.reserved)),
        ("ledger_on_hand".to_string(), n(l.ledger.on_hand)),
        ("ledger_reserved".to_string(), n(l.ledger.reserved)),
        ("unknown".to_string(), n(l.unknown as i64)),
    ]);
    if let Some(at) = l.at {
        item.insert("at".into(), s(format_time(at)));
    }
    if !l.stamp.is_empty() {
        item.insert("stamp".into(), s(&l.stamp));
    }
    item
}

/// A row and its ledger, read from its head.
pub fn head(i: &Item) -> Result<(RowKey, RowLedger), StoreError> {
    let bad = |what: &str| StoreError::Internal(format!("bad ledger head {what}"));
    let row = RowKey {
        product_id: i.s("product_id")?.to_string(),
        warehouse_id: i.s("warehouse_id")?.to_string(),
        bucket: usize::try_from(i.n("bucket")?).map_err(|_| bad("bucket"))?,
    };
    let ledger = RowLedger {
        seq: u64::try_from(i.n("seq")?).map_err(|_| bad("seq"))?,
        position: i.s("position")?.to_string(),
        at: i.opt_s("at").and_then(parse_time),
        counts: Counts { on_hand: i.n("on_hand")?, reserved: i.n("reserved")? },
        ledger: Counts { on_hand: i.n("ledger_on_hand")?, reserved: i.n("ledger_reserved")? },
        unknown: u64::try_from(i.n("unknown")?).map_err(|_| bad("unknown count"))?,
        // Heads written before stamps were kept have none: any stamp is newer.
        stamp: i.opt_s("stamp").unwrap_or_default().to_string(),
    };
    Ok((row, ledger))
}

/// A row's checkpoint item.
pub fn checkpoint_item(row: &RowKey, c: &Checkpoint) -> Attrs {
    let mut item = Attrs::from([
        (PK.to_string(), s(row_pk(row))),
        (SK.to_string(), s(CHECK_SK)),
        ("seq".to_string(), n(c.seq as i64)),
        ("ledger_on_hand".to_string(), n(c.ledger.on_hand)),
        ("ledger_reserved".to_string(), n(c.ledger.reserved)),
    ]);
    if let Some(at) = c.at {
        item.insert("at".into(), s(format_time(at)));
    }
    item
}

/// A checkpoint read back.
pub fn checkpoint(i: &Item) -> Result<Checkpoint, StoreError> {
    Ok(Checkpoint {
        seq: u64::try_from(i.n("seq")?).map_err(|_| StoreError::Internal("bad checkpoint seq".into()))?,
        at: i.opt_s("at").and_then(parse_time),
        ledger: Counts { on_hand: i.n("ledger_on_hand")?, reserved: i.n("ledger_reserved")? },
    })
}
