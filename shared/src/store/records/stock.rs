//! Stock rows: one per (product, warehouse, bucket), with every stock move as an update
//! whose condition keeps `on_hand = reserved + available`, all >= 0. Every write that
//! moves units stamps its `Cause` on the row (`MOVEMENT`, with a fresh id): the stream
//! carries the change and its reason together, so the ledger learns why without the
//! writer sending anything more. A write of a row cannot be built without a cause.

use super::{n, s, to_attrs, update_at, Attrs};
use crate::domain::movement::Cause;
use crate::domain::stock::{StockLevel, Units, WarehouseId, MAX_QUANTITY};
use crate::domain::time::parse_time;
use crate::store::keys::{stock_pk, stock_sk, BUCKET};
use crate::store::{Item, StoreError};
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure, Update};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The attribute that holds the cause of a row's last change: a map of `id` (new with
/// every write, so a change whose map did not change came without a cause), `reason`,
/// and when present `ref_type`, `ref_id` and `note`.
pub const MOVEMENT: &str = "mv";

/// The stamp of one write: `cause` with a fresh id.
fn stamp(cause: &Cause) -> AttributeValue {
    let mut m = HashMap::from([
        ("id".to_string(), s(ulid::Ulid::new().to_string())),
        ("reason".to_string(), s(cause.reason.as_str())),
    ]);
    if let Some(r) = &cause.reference {
        m.insert("ref_type".into(), s(r.kind.as_str()));
        m.insert("ref_id".into(), s(&r.id));
    }
    if let Some(note) = &cause.note {
        m.insert("note".into(), s(note));
    }
    AttributeValue::M(m)
}

/// A stock row as stored.
#[derive(Debug, Serialize, Deserialize)]
struct StockRecord {
    pk: String,
    sk: String,
    entity: String,
    product_id: String,
    warehouse_id: String,
    on_hand: i64,
    reserved: i64,
    available: i64,
    created_at: String,
    updated_at: String,
    last_actor: String,
    /// Only buckets 1.. name theirs, so unbucketed rows keep the shape they always had.
    #[serde(default, skip_serializing_if = "super::is_zero")]
    bucket: usize,
    /// The product's terms version (`Product::terms`) this row holds under.
    #[serde(default)]
    terms: i64,
    /// Units in transit towards the row (transfers); absent on rows that never had any.
    #[serde(default, skip_serializing_if = "super::is_zero_i64")]
    incoming: i64,
    /// Units waiting waitlist entries ask for; absent on rows that never had any.
    #[serde(default, skip_serializing_if = "super::is_zero_i64")]
    waiting: i64,
}

/// A new row holding `level`'s units under the product's `terms`.
pub fn item(
    product_id: &str,
    bucket: usize,
    level: &StockLevel,
    now: &str,
    actor: &str,
    terms: i64,
    cause: &Cause,
) -> Result<Attrs, StoreError> {
    let mut item = to_attrs(&StockRecord {
        pk: stock_pk(product_id, bucket),
        sk: stock_sk(level.warehouse_id.as_str()),
        entity: "stock".into(),
        product_id: product_id.into(),
        warehouse_id: level.warehouse_id.as_str().into(),
        on_hand: level.units.on_hand,
        reserved: level.units.reserved,
        available: level.units.available,
        created_at: now.into(),
        updated_at: now.into(),
        last_actor: actor.into(),
        bucket,
        terms,
        incoming: level.incoming,
        waiting: level.waiting,
    })?;
    item.insert(MOVEMENT.into(), stamp(cause));
    Ok(item)
}

pub fn level(i: &Item) -> Result<StockLevel, StoreError> {
    let r: StockRecord = super::from_item(i)?;
    Ok(StockLevel {
        warehouse_id: WarehouseId::parse(&r.warehouse_id).map_err(StoreError::Internal)?,
        units: Units { on_hand: r.on_hand, reserved: r.reserved, available: r.available },
        incoming: r.incoming,
        waiting: r.waiting,
        updated_at: parse_time(&r.updated_at).ok_or_else(|| StoreError::Internal("bad stock time".into()))?,
    })
}

/// The bucket a stock row, reservation or order line names (absent: 0).
pub fn bucket_of(i: &Item) -> Result<usize, StoreError> {
    usize::try_from(i.opt_n(BUCKET).unwrap_or(0)).map_err(|_| StoreError::Internal("bad bucket".into()))
}

/// Sets a row's terms (a change of the product's `active` or `max_per_customer`);
/// bookkeeping, so neither `updated_at` nor the writer stamp moves, and no units do.
pub fn retag(
    table: &str,
    product_id: &str,
    bucket: usize,
    warehouse: &str,
    terms: i64,
) -> Result<Update, StoreError> {
    Ok(update_at(table, stock_pk(product_id, bucket), stock_sk(warehouse))
        .update_expression("SET terms = :terms")
        .condition_expression("attribute_exists(pk)")
        .expression_attribute_values(":terms", n(terms))
        .build()?)
}

/// Where a stock move happens, and why.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub table: &'a str,
    pub product_id: &'a str,
    pub bucket: usize,
    pub warehouse: &'a str,
    pub now: &'a str,
    pub actor: &'a str,
    pub cause: &'a Cause,
}

impl Row<'_> {
    /// An update of the row stamped with the time, the actor and the cause (every write
    /// below sets all three).
    fn update(&self) -> UpdateBuilder {
        update_at(self.table, stock_pk(self.product_id, self.bucket), stock_sk(self.warehouse))
            .expression_attribute_values(":now", s(self.now))
            .expression_attribute_values(":actor", s(self.actor))
            .expression_attribute_values(":mv", stamp(self.cause))
    }

    /// An update that sets `counts` (which may read `:zero`) and, on a row that is new,
    /// creates it: its identity, its bucket and the product's `terms`. The writes that may
    /// open a row (an addition, units expected in transit) share it.
    fn creating(&self, counts: &str, terms: i64) -> UpdateBuilder {
        // BUCKET is one of DynamoDB's reserved words, hence `#bucket`.
        let (tag, update) = match self.bucket {
            0 => ("", self.update()),
            b => (
                ", #bucket = :b",
                self.update()
                    .expression_attribute_names("#bucket", BUCKET)
                    .expression_attribute_values(":b", n(b as i64)),
            ),
        };
        update
            .update_expression(format!(
                "SET {counts}, \
                 entity = :entity, product_id = :pid, warehouse_id = :wh{tag}, terms = if_not_exists(terms, :terms), \
                 created_at = if_not_exists(created_at, :now), updated_at = :now, last_actor = :actor, mv = :mv",
            ))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":entity", s("stock"))
            .expression_attribute_values(":pid", s(self.product_id))
            .expression_attribute_values(":wh", s(self.warehouse))
            .expression_attribute_values(":terms", n(terms))
    }

    /// Adds `x` on-hand units, creating the row (and naming its bucket, and the product's
    /// `terms`) if it is new; on condition that on-hand stays within the maximum.
    pub fn add(&self, x: i64, terms: i64) -> Result<Update, StoreError> {
        Ok(self
            .creating(
                "on_hand = if_not_exists(on_hand, :zero) + :x, \
                 available = if_not_exists(available, :zero) + :x, \
                 reserved = if_not_exists(reserved, :zero)",
                terms,
            )
            .condition_expression("attribute_not_exists(on_hand) OR on_hand <= :room")
            .expression_attribute_values(":x", n(x))
            .expression_attribute_values(":room", n(MAX_QUANTITY - x))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()?)
    }

    /// Removes `x` on-hand units, on condition that they are available.
    pub fn remove(&self, x: i64) -> Result<Update, StoreError> {
        self.moved("on_hand = on_hand - :x, available = available - :x", "available >= :x", x)
    }

    /// `remove`, giving the row new hold terms in the same write when `terms` is given.
    pub fn remove_retagged(&self, x: i64, terms: Option<i64>) -> Result<Update, StoreError> {
        match terms {
            None => self.remove(x),
            Some(t) => Self::moved_with(
                self.update().expression_attribute_values(":terms", n(t)),
                "on_hand = on_hand - :x, available = available - :x, terms = :terms",
                "available >= :x",
                x,
            ),
        }
    }

    /// Moves `x` into the row from elsewhere in the same transaction (on-hand and
    /// available), on condition that the row exists.
    pub fn receive(&self, x: i64) -> Result<Update, StoreError> {
        self.moved("on_hand = on_hand + :x, available = available + :x", "attribute_exists(on_hand)", x)
    }

    /// Holds `x` units: available -> reserved, on condition that they are available
    /// beyond the units the waitlist asks for, and that the row holds under the product's
    /// `terms` the hold was decided on. A condition cannot subtract, so the hold names the
    /// `waiting` it saw (0 on a row without a queue): it needs `x + waiting` available
    /// while `waiting` is at most that. A queue that grew since fails the hold, which is
    /// planned again with the new figure; one that shrank only leaves more.
    pub fn hold(&self, x: i64, terms: i64, waiting: i64) -> Result<Update, StoreError> {
        let condition = format!(
            "available >= :need AND (attribute_not_exists(waiting) OR waiting <= :waiting) AND {}",
            super::product::equals_or_absent("terms", ":terms", terms)
        );
        let update = self
            .update()
            .expression_attribute_values(":terms", n(terms))
            .expression_attribute_values(":need", n(x.saturating_add(waiting)))
            .expression_attribute_values(":waiting", n(waiting));
        Self::moved_with(update, "available = available - :x, reserved = reserved + :x", &condition, x)
    }

    /// A count: sets `on_hand` to `to` where it is still `from`, keeping the held units
    /// (`available = to - reserved`, so never below zero). A racing hold moves `reserved`
    /// but not `on_hand`, and passes; a racing sale moves `on_hand`, and fails this.
    pub fn count(&self, from: i64, to: i64) -> Result<Update, StoreError> {
        Ok(self
            .update()
            .update_expression(
                "SET on_hand = :to, available = :to - reserved, updated_at = :now, last_actor = :actor, mv = :mv",
            )
            .condition_expression("on_hand = :from AND reserved <= :to")
            .expression_attribute_values(":from", n(from))
            .expression_attribute_values(":to", n(to))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()?)
    }

    /// Expects `x` units in transit (a transfer towards the row): `incoming` grows,
    /// creating the row with nothing on hand (and the product's `terms`) if it is new.
    pub fn expect(&self, x: i64, terms: i64) -> Result<Update, StoreError> {
        Ok(self
            .creating(
                "incoming = if_not_exists(incoming, :zero) + :x, \
                 on_hand = if_not_exists(on_hand, :zero), available = if_not_exists(available, :zero), \
                 reserved = if_not_exists(reserved, :zero)",
                terms,
            )
            .expression_attribute_values(":x", n(x))
            .build()?)
    }

    /// Receives `x` units in transit: `incoming` -> on hand and available, on condition
    /// that they are incoming and that on-hand stays within the maximum.
    pub fn arrive(&self, x: i64) -> Result<Update, StoreError> {
        Ok(self
            .update()
            .update_expression(
                "SET on_hand = on_hand + :x, available = available + :x, incoming = incoming - :x, \
                 updated_at = :now, last_actor = :actor, mv = :mv",
            )
            .condition_expression("incoming >= :x AND on_hand <= :room")
            .expression_attribute_values(":x", n(x))
            .expression_attribute_values(":room", n(MAX_QUANTITY - x))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()?)
    }

    /// No longer expects `x` units in transit (a cancelled transfer): `incoming` shrinks.
    pub fn unexpect(&self, x: i64) -> Result<Update, StoreError> {
        self.moved("incoming = incoming - :x", "incoming >= :x", x)
    }

    /// Offers `x` units the waitlist asked for to its first entry: available -> reserved
    /// and out of `waiting`, on condition that they are there and asked for.
    pub fn offer(&self, x: i64) -> Result<Update, StoreError> {
        self.moved(
            "available = available - :x, reserved = reserved + :x, waiting = waiting - :x",
            "available >= :x AND waiting >= :x",
            x,
        )
    }

    /// Gives `x` held units back: reserved -> available.
    pub fn give_back(&self, x: i64) -> Result<Update, StoreError> {
        self.moved("available = available + :x, reserved = reserved - :x", "reserved >= :x", x)
    }

    /// Sells `x` held units: they leave reserved and on-hand.
    pub fn sell(&self, x: i64) -> Result<Update, StoreError> {
        self.moved("on_hand = on_hand - :x, reserved = reserved - :x", "reserved >= :x", x)
    }

    /// Puts `x` sold units back on hand and on sale (a cancelled order, a return), on
    /// condition that on-hand stays within the maximum.
    pub fn restock(&self, x: i64) -> Result<Update, StoreError> {
        Ok(self
            .update()
            .update_expression(
                "SET on_hand = on_hand + :x, available = available + :x, updated_at = :now, \
                 last_actor = :actor, mv = :mv",
            )
            .condition_expression("attribute_exists(pk) AND on_hand <= :room")
            .expression_attribute_values(":x", n(x))
            .expression_attribute_values(":room", n(MAX_QUANTITY - x))
            .build()?)
    }

    fn moved(&self, set: &str, condition: &str, x: i64) -> Result<Update, StoreError> {
        Self::moved_with(self.update(), set, condition, x)
    }

    fn moved_with(update: UpdateBuilder, set: &str, condition: &str, x: i64) -> Result<Update, StoreError> {
        Ok(update
            .update_expression(format!("SET {set}, updated_at = :now, last_actor = :actor, mv = :mv"))
            .condition_expression(condition)
            .expression_attribute_values(":x", n(x))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()?)
    }
}
