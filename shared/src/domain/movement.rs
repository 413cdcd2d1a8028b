//! Stock movements: why a stock row's `on_hand` or `reserved` changed. Every writer of a
//! stock row names a `Cause` (the store's stock writes take one, so a write without a
//! reason cannot be written); the ledger turns each change into one `Movement`.

use super::ids::ProductId;
use super::stock::WarehouseId;
use super::{DomainError, FieldError};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// Why a stock row changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Product created with stock, or a positive adjustment.
    Received,
    /// A negative adjustment.
    Removed,
    /// A negative adjustment of damaged units.
    Damaged,
    /// A count set `on_hand`.
    Counted,
    /// A reservation took units.
    Hold,
    /// A reservation was released.
    Release,
    /// A reservation expired (schedule, sweep or a lazy read's job).
    Expiry,
    /// Held units were sold (an order).
    Sale,
    /// A cancelled order's units came back.
    Cancellation,
    /// Returned units were restocked.
    Return,
    TransferOut,
    TransferIn,
    TransferCancelled,
    /// Units moved between the buckets of one warehouse (a hot product's rows); the
    /// warehouse's totals do not change.
    Rebalance,
    /// The change came without a reason (a write behind the service's back, or changes
    /// the ledger never saw): listed, not counted in the ledger's sums, so the
    /// reconciliation shows it.
    Unknown,
    /// The counts a row already had when the ledger first saw it (a row older than the
    /// ledger): counted, so that such a row starts consistent.
    Opening,
}

impl Reason {
    pub const ALL: [Reason; 16] = [
        Self::Received,
        Self::Removed,
        Self::Damaged,
        Self::Counted,
        Self::Hold,
        Self::Release,
        Self::Expiry,
        Self::Sale,
        Self::Cancellation,
        Self::Return,
        Self::TransferOut,
        Self::TransferIn,
        Self::TransferCancelled,
        Self::Rebalance,
        Self::Unknown,
        Self::Opening,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Removed => "removed",
            Self::Damaged => "damaged",
            Self::Counted => "counted",
            Self::Hold => "hold",
            Self::Release => "release",
            Self::Expiry => "expiry",
            Self::Sale => "sale",
            Self::Cancellation => "cancellation",
            Self::Return => "return",
            Self::TransferOut => "transfer_out",
            Self::TransferIn => "transfer_in",
            Self::TransferCancelled => "transfer_cancelled",
            Self::Rebalance => "rebalance",
            Self::Unknown => "unknown",
            Self::Opening => "opening",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether the ledger's sums count the movement: every reason but `unknown`.
    pub fn counted(self) -> bool {
        self != Self::Unknown
    }
}

/// What kind of entity a movement refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Reservation,
    Order,
    Return,
    Transfer,
}

impl RefKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reservation => "reservation",
            Self::Order => "order",
            Self::Return => "return",
            Self::Transfer => "transfer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Reservation, Self::Order, Self::Return, Self::Transfer].into_iter().find(|k| k.as_str() == s)
    }
}

/// The entity a movement belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub kind: RefKind,
    pub id: String,
}

/// Why a writer changes a stock row: stamped on the row by the write itself, so the
/// change and its reason travel together through the table's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub reason: Reason,
    pub reference: Option<Reference>,
    pub note: Option<String>,
}

impl Cause {
    pub fn new(reason: Reason) -> Self {
        Self { reason, reference: None, note: None }
    }

    /// A cause that belongs to an entity (a reservation, an order, ...).
    pub fn of(reason: Reason, kind: RefKind, id: &str) -> Self {
        Self { reason, reference: Some(Reference { kind, id: id.to_string() }), note: None }
    }

    pub fn with_note(mut self, note: Option<String>) -> Self {
        self.note = note;
        self
    }
}

/// One recorded change of one stock row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub id: String,
    pub product_id: String,
    pub warehouse_id: String,
    /// The row's bucket (0 unless the product has `stock_buckets > 1`); each bucket row
    /// counts its own `seq`.
    pub bucket: usize,
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub reason: Reason,
    pub reference: Option<Reference>,
    pub actor: String,
    pub note: Option<String>,
    pub on_hand_change: i64,
    pub reserved_change: i64,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

/// One stock row: a (product, warehouse, bucket).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey {
    pub product_id: String,
    pub warehouse_id: String,
    pub bucket: usize,
}

/// A row's counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Counts {
    pub on_hand: i64,
    pub reserved: i64,
}

/// One write of a stock row as the table's stream shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub row: RowKey,
    /// Orders the row's writes (the stream sequence number, zero-padded to compare as
    /// text).
    pub position: String,
    /// The stream record's id: names a movement that came without a stamp.
    pub event_id: String,
    /// When the write happened: the row's `updated_at` for a stamped write, else when
    /// the stream saw it.
    pub at: DateTime<Utc>,
    /// The counts before (zero for a new row) and after.
    pub before: Counts,
    pub after: Counts,
    /// The write's stamp (id and cause) when it set a new one; `None`: no reason given.
    pub stamp: Option<(String, Cause)>,
    /// The row carried a stamp before this write: it was written under the ledger, so
    /// counts the ledger never saw are a lost write, not the row's opening.
    pub stamped_before: bool,
    /// The write made the row (the record has no old image): the warehouse's first
    /// stock, which had no level before it.
    pub opened: bool,
    pub actor: String,
}

/// How far before the last recorded stamp a write's stamp may be and still be a new
/// write's (the clocks of the hosts that write one row differ by far less).
pub const STAMP_SKEW_MS: u64 = 60_000;

/// A row's ledger so far: its last movement and the sums of its counted movements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowLedger {
    /// The last movement's `seq`; 0: none yet.
    pub seq: u64,
    /// The position of the last write applied (empty: none).
    pub position: String,
    pub at: Option<DateTime<Utc>>,
    /// The row's counts after the last write applied.
    pub counts: Counts,
    /// Sums of the counted movements' changes.
    pub ledger: Counts,
    /// Movements that came without a reason.
    pub unknown: u64,
    /// The id of the last stamp recorded (empty: none). Stamp ids are ULIDs, which sort
    /// by time: a stamp that is not after it is an old one brought back (a restored copy
    /// of the row), not a new write's reason.
    pub stamp: String,
}

impl RowLedger {
    /// The movements one write makes, in order, and the ledger after it. A write already
    /// applied (its position is not after the last one) makes none: the stream delivers
    /// again after a failure. When the counts before the write are not the ones the
    /// ledger ended with, writes were missed: the first write seen of a row older than the
    /// ledger (one that carried no stamp before it) opens it with an `opening` movement,
    /// which the sums count; any other gap, a row's lost first write included, is an
    /// `unknown` one, which they do not. A stamp that is not newer than the last one
    /// recorded gives no reason either: the change is `unknown`.
    pub fn record(&mut self, o: &Observed) -> Vec<Movement> {
        if !self.position.is_empty() && o.position.as_str() <= self.position.as_str() {
            return Vec::new();
        }
        let mut out = Vec::new();
        if o.before != self.counts {
            let opening = self.seq == 0 && !o.stamped_before;
            let reason = if opening { Reason::Opening } else { Reason::Unknown };
            let actor = if reason == Reason::Opening { "system" } else { "unknown" };
            let id = format!("{}.{}", o.event_id, reason.as_str());
            let cause = Cause::new(reason);
            out.extend(self.push(o, id, &cause, actor, o.before));
        }
        let (id, cause, actor) = match &o.stamp {
            Some((id, cause)) if self.is_new_stamp(id) => {
                if self.stamp.is_empty() || *id > self.stamp {
                    self.stamp = id.clone();
                }
                (id.clone(), cause.clone(), o.actor.as_str())
            }
            _ => (o.event_id.clone(), Cause::new(Reason::Unknown), "unknown"),
        };
        out.extend(self.push(o, id, &cause, actor, o.after));
        self.position = o.position.clone();
        out
    }

    /// Whether a write's stamp is a new one: not the last recorded, and not from before it
    /// by more than `STAMP_SKEW_MS`. Writers on different hosts make their ids with
    /// their own clocks, so two writes of one row a moment apart may carry ids in either
    /// order; an old copy written back carries one from well before.
    fn is_new_stamp(&self, id: &str) -> bool {
        if self.stamp.is_empty() {
            return true;
        }
        if id == self.stamp {
            return false;
        }
        let time = |s: &str| ulid::Ulid::from_string(s).ok().map(|u| u.timestamp_ms());
        match (time(id), time(&self.stamp)) {
            (Some(t), Some(last)) => t.saturating_add(STAMP_SKEW_MS) >= last,
            _ => id > self.stamp.as_str(),
        }
    }

    fn push(&mut self, o: &Observed, id: String, cause: &Cause, actor: &str, to: Counts) -> Option<Movement> {
        let (dh, dr) = (to.on_hand - self.counts.on_hand, to.reserved - self.counts.reserved);
        self.counts = to;
        if dh == 0 && dr == 0 {
            return None;
        }
        let at = self.at.map_or(o.at, |last| last.max(o.at));
        self.at = Some(at);
        self.seq += 1;
        if cause.reason.counted() {
            self.ledger.on_hand += dh;
            self.ledger.reserved += dr;
        } else {
            self.unknown += 1;
        }
        Some(Movement {
            id,
            product_id: o.row.product_id.clone(),
            warehouse_id: o.row.warehouse_id.clone(),
            bucket: o.row.bucket,
            seq: self.seq,
            at,
            reason: cause.reason,
            reference: cause.reference.clone(),
            actor: actor.to_string(),
            note: cause.note.clone(),
            on_hand_change: dh,
            reserved_change: dr,
            on_hand: to.on_hand,
            reserved: to.reserved,
            available: to.on_hand - to.reserved,
        })
    }
}

/// Where a row's movements were last proven against its head: every movement up to
/// `seq` (the one at `at`) was read back and summed to `ledger`, and movements are never
/// rewritten (`Ledger::append`), so a recount starts after it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checkpoint {
    pub seq: u64,
    pub at: Option<DateTime<Utc>>,
    pub ledger: Counts,
}

/// A row's movements after its checkpoint, read back and summed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recount {
    /// The checkpoint's sums plus the counted changes read.
    pub ledger: Counts,
    /// The last `seq` read (the checkpoint's when none came after it).
    pub seq: u64,
    /// Every movement read followed the one before it by exactly one `seq`.
    pub chained: bool,
    /// Movements read.
    pub read: u64,
    /// Every movement since the checkpoint was read (a budgeted recount may stop first:
    /// then it proves nothing either way).
    pub complete: bool,
}

impl Recount {
    /// Whether the movements prove `head`: numbered 1..=its `seq` without gap or repeat,
    /// and summing to its running sums.
    pub fn proves(&self, head: &RowLedger) -> bool {
        self.complete && self.chained && self.seq == head.seq && self.ledger == head.ledger
    }
}

/// Most characters of an adjustment's or a count's note.
pub const MAX_NOTE_CHARS: usize = 500;

/// A note: 1..=500 characters.
pub fn parse_note(s: &str) -> Result<String, String> {
    match s.chars().count() {
        0 => Err("must not be empty".into()),
        n if n > MAX_NOTE_CHARS => Err(format!("must be at most {MAX_NOTE_CHARS} characters")),
        _ => Ok(s.to_string()),
    }
}

/// A validated `GET /api/products/{id}/movements` query (the product comes from the path).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MovementQuery {
    pub warehouse_id: Option<WarehouseId>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive; at or before `from`, the range is empty (no error, as a filter that
    /// matches nothing).
    pub to: Option<DateTime<Utc>>,
    /// Empty: every reason.
    pub reasons: Vec<Reason>,
}

pub const MOVEMENT_PARAMS: &[&str] = &["warehouse_id", "from", "to", "reason", "limit", "cursor"];

impl MovementQuery {
    pub fn from_params(p: &std::collections::BTreeMap<String, String>) -> Result<Self, DomainError> {
        let mut errors = Vec::new();
        let mut q = Self::default();
        if let Some(w) = p.get("warehouse_id") {
            match WarehouseId::parse(w) {
                Ok(w) => q.warehouse_id = Some(w),
                Err(e) => errors.push(FieldError::new("warehouse_id", e)),
            }
        }
        // An inclusive `from` and an exclusive `to` both compare as their next millisecond.
        for (name, slot) in [("from", &mut q.from), ("to", &mut q.to)] {
            if let Some(t) = p.get(name) {
                match super::time::parse_time(t) {
                    Some(t) => *slot = Some(super::time::ceil_ms(t)),
                    None => errors.push(FieldError::new(name, "must be an RFC 3339 time")),
                }
            }
        }
        if let Some(list) = p.get("reason") {
            for r in list.split(',') {
                match Reason::parse(r) {
                    Some(r) if !q.reasons.contains(&r) => q.reasons.push(r),
                    Some(_) => {}
                    None => {
                        errors.push(FieldError::new("reason", format!("{r:?} is not a movement reason")));
                        break;
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(q)
        } else {
            Err(DomainError::Validation(errors))
        }
    }

    /// The cursor binding: a cursor is good only for the same product and filters.
    pub fn binding(&self, product_id: &ProductId) -> String {
        let reasons: Vec<&str> = self.reasons.iter().map(|r| r.as_str()).collect();
        format!(
            "movements\0{}\0{}\0{}\0{}\0{}",
            product_id.as_str(),
            self.warehouse_id.as_ref().map(|w| w.as_str()).unwrap_or(""),
            self.from.map(super::time::format_time).unwrap_or_default(),
            self.to.map(super::time::format_time).unwrap_or_default(),
            reasons.join(",")
        )
    }
}

/// One warehouse's counters held against its two independent witnesses: the sums of
/// its movements, and the units its active reservations hold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WarehouseCheck {
    pub warehouse_id: String,
    /// The stock rows' counts (every bucket summed).
    pub counters: Counts,
    /// The sums of the warehouse's movements (`unknown` ones left out: a change nobody
    /// gave a reason for is what reconciliation exists to find).
    pub ledger: Counts,
    pub held_by_reservations: i64,
    /// The counts its rows had after the last write the ledger recorded (summed over
    /// buckets): unlike `ledger`, these follow every recorded change, `unknown` included.
    pub recorded: Counts,
    /// The counters changed while the check read the other sources: a write was in
    /// flight.
    pub moved: bool,
    /// Every row's movements, read back from its checkpoint, are numbered without gap
    /// and sum to its head's running sums.
    pub proven: bool,
}

/// What a warehouse's ledger says, its rows summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarehouseLedger {
    /// The sums of its counted movements.
    pub sums: Counts,
    /// The counts after the last write recorded.
    pub recorded: Counts,
    /// Each row's recount proves its head.
    pub proven: bool,
}

impl Default for WarehouseLedger {
    fn default() -> Self {
        Self { sums: Counts::default(), recorded: Counts::default(), proven: true }
    }
}

impl WarehouseCheck {
    pub fn consistent(&self) -> bool {
        self.proven && self.counters == self.ledger && self.counters.reserved == self.held_by_reservations
    }

    /// Whether the check can judge the warehouse: no write landed while it read, and the
    /// ledger has recorded every write the counters show (when the counts it saw last are
    /// not the counters, a write is still on its way through the stream, or its record
    /// was lost). Otherwise a difference says nothing yet.
    pub fn settled(&self) -> bool {
        !self.moved && self.recorded == self.counters
    }
}

/// A product's reconciliation, warehouse by warehouse (in id order).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reconciliation {
    pub product_id: String,
    pub warehouses: Vec<WarehouseCheck>,
}

impl Reconciliation {
    /// Puts the three sources together; a warehouse any one of them knows is checked.
    pub fn of(
        product_id: &str,
        counters: &BTreeMap<String, Counts>,
        ledger: &BTreeMap<String, WarehouseLedger>,
        held: &BTreeMap<String, i64>,
    ) -> Self {
        let ids: BTreeSet<&String> = counters.keys().chain(ledger.keys()).chain(held.keys()).collect();
        let warehouses = ids
            .into_iter()
            .map(|w| WarehouseCheck {
                warehouse_id: w.clone(),
                counters: counters.get(w).copied().unwrap_or_default(),
                ledger: ledger.get(w).map(|l| l.sums).unwrap_or_default(),
                held_by_reservations: held.get(w).copied().unwrap_or_default(),
                recorded: ledger.get(w).map(|l| l.recorded).unwrap_or_default(),
                moved: false,
                proven: ledger.get(w).is_none_or(|l| l.proven),
            })
            .collect();
        Self { product_id: product_id.to_string(), warehouses }
    }

    pub fn consistent(&self) -> bool {
        self.warehouses.iter().all(WarehouseCheck::consistent)
    }

    /// The warehouses that do not agree.
    pub fn inconsistent(&self) -> impl Iterator<Item = &WarehouseCheck> {
        self.warehouses.iter().filter(|w| !w.consistent())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_back_from_its_name() {
        for r in Reason::ALL {
            assert_eq!(Reason::parse(r.as_str()), Some(r));
        }
        assert_eq!(Reason::parse("sold"), None);
    }

    fn observed(position: &str, before: (i64, i64), after: (i64, i64), stamped: bool) -> Observed {
        let counts = |(on_hand, reserved)| Counts { on_hand, reserved };
        Observed {
            row: RowKey { product_id: "p".into(), warehouse_id: "main".into(), bucket: 0 },
            position: position.into(),
            event_id: format!("e{position}"),
            at: chrono::DateTime::UNIX_EPOCH,
            before: counts(before),
            after: counts(after),
            stamp: stamped
                .then(|| (format!("m{position}"), Cause::of(Reason::Hold, RefKind::Reservation, "r"))),
            stamped_before: true,
            opened: false,
            actor: "alice".into(),
        }
    }

    #[test]
    fn a_ledger_numbers_changes_skips_redeliveries_and_names_what_came_without_a_reason() {
        let mut l = RowLedger::default();
        let first = l.record(&observed("01", (0, 0), (10, 0), true));
        assert_eq!((first.len(), first[0].seq, first[0].on_hand_change), (1, 1, 10));
        assert!(l.record(&observed("01", (0, 0), (10, 0), true)).is_empty(), "a redelivery");
        assert!(l.record(&observed("02", (10, 0), (10, 0), true)).is_empty(), "no change");
        let unknown = l.record(&observed("03", (10, 0), (10, 3), false));
        assert_eq!(
            (unknown[0].seq, unknown[0].reason, unknown[0].actor.as_str()),
            (2, Reason::Unknown, "unknown")
        );
        // Writes 04 and 05 were never seen: the gap becomes an unknown movement first.
        let gap = l.record(&observed("06", (12, 3), (12, 5), true));
        assert_eq!(
            gap.iter().map(|m| (m.seq, m.reason)).collect::<Vec<_>>(),
            [(3, Reason::Unknown), (4, Reason::Hold)]
        );
        assert_eq!(
            (l.counts, l.ledger, l.unknown),
            (Counts { on_hand: 12, reserved: 5 }, Counts { on_hand: 10, reserved: 2 }, 2)
        );
    }

    #[test]
    fn a_row_older_than_the_ledger_opens_with_its_counts() {
        let mut l = RowLedger::default();
        // Its first write seen is the first that stamped it.
        let m = l.record(&Observed { stamped_before: false, ..observed("07", (8, 1), (8, 3), true) });
        assert_eq!(
            m.iter().map(|m| (m.seq, m.reason)).collect::<Vec<_>>(),
            [(1, Reason::Opening), (2, Reason::Hold)]
        );
        assert_eq!(l.ledger, Counts { on_hand: 8, reserved: 3 });
    }

    #[test]
    fn a_lost_first_write_of_a_row_born_under_the_ledger_is_unknown_and_left_out_of_the_sums() {
        let mut l = RowLedger::default();
        // The row's creation (10 received) never reached the ledger; the hold after it did.
        let m = l.record(&observed("02", (10, 0), (10, 2), true));
        assert_eq!(
            m.iter().map(|m| (m.seq, m.reason)).collect::<Vec<_>>(),
            [(1, Reason::Unknown), (2, Reason::Hold)]
        );
        assert_eq!((l.ledger, l.unknown), (Counts { on_hand: 0, reserved: 2 }, 1));
    }

    #[test]
    fn an_old_stamp_written_back_is_unknown_while_stamps_a_moment_out_of_order_are_new() {
        let at = |ms: u64, n: u128| ulid::Ulid::from_parts(ms, n).to_string();
        let stamped = |position: &str, before, after, id: String| Observed {
            stamp: Some((id, Cause::of(Reason::Hold, RefKind::Reservation, "r"))),
            ..observed(position, before, after, true)
        };
        let t = 1_800_000_000_000;
        let mut l = RowLedger::default();
        let created = at(t, 9);
        let m =
            l.record(&Observed { stamped_before: false, ..stamped("01", (0, 0), (10, 0), created.clone()) });
        assert_eq!(m[0].reason, Reason::Hold);
        // Two hosts a few milliseconds apart: the later write carries the smaller id.
        let m = l.record(&stamped("02", (10, 0), (10, 1), at(t + 5_000, 7)));
        assert_eq!((m[0].reason, m[0].seq), (Reason::Hold, 2));
        let m = l.record(&stamped("03", (10, 1), (10, 2), at(t + 4_990, 3)));
        assert_eq!((m[0].reason, m[0].seq), (Reason::Hold, 3), "a stamp a moment older is a new write's");
        // An hour later, the row as it was after its creation is written back.
        l.record(&stamped("04", (10, 2), (10, 5), at(t + 3_600_000, 1)));
        let back = l.record(&stamped("05", (10, 5), (10, 0), created.clone()));
        assert_eq!(back.len(), 1);
        assert_eq!((back[0].reason, back[0].id.as_str()), (Reason::Unknown, "e05"), "not {created} again");
        // The same stamp on the next write (a write behind the service's back keeps it).
        let again = l.record(&stamped("06", (10, 0), (11, 0), at(t + 3_600_000, 1)));
        assert_eq!(again[0].reason, Reason::Unknown);
    }

    #[test]
    fn a_movement_query_refuses_an_unknown_reason_and_a_time_that_is_not_one() {
        let p = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let q = MovementQuery::from_params(&p(&[("reason", "hold,sale,hold")])).expect("valid");
        assert_eq!(q.reasons, [Reason::Hold, Reason::Sale]);
        assert!(MovementQuery::from_params(&p(&[("reason", "hold,sold")])).is_err());
        let same = "2026-12-02T10:00:00Z";
        assert!(MovementQuery::from_params(&p(&[("from", same), ("to", same)])).is_ok(), "an empty range");
        assert!(MovementQuery::from_params(&p(&[("from", "yesterday")])).is_err());
    }

    #[test]
    fn a_bound_finer_than_a_millisecond_compares_as_the_next_one() {
        let p = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let q = MovementQuery::from_params(&p(&[
            ("from", "2026-12-02T10:00:00.1235Z"),
            ("to", "2026-12-02T10:00:00.2005Z"),
        ]))
        .expect("valid");
        let at = |s: &str| super::super::time::parse_time(s).expect("time");
        // A movement at .123 is before `from`; one at .200 is before `to`.
        assert_eq!(q.from, Some(at("2026-12-02T10:00:00.124Z")));
        assert_eq!(q.to, Some(at("2026-12-02T10:00:00.201Z")));
        let whole = MovementQuery::from_params(&p(&[("to", "2026-12-02T10:00:00.200Z")])).expect("valid");
        assert_eq!(whole.to, Some(at("2026-12-02T10:00:00.200Z")), "a whole millisecond stays");
    }
}
