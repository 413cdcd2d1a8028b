//! Stock of a product per warehouse, and the warehouse choice rule. The store moves units
//! atomically with condition expressions; these types and functions describe what it
//! holds and decide up front.

use super::validate::matches_charset;
use chrono::{DateTime, Utc};

/// Most units one stock row may hold on hand.
pub const MAX_QUANTITY: i64 = 1_000_000_000;

/// A warehouse id: `^[a-z0-9-]{1,32}$`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WarehouseId(String);

impl WarehouseId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if matches_charset(s, 1, 32, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            Ok(Self(s.to_string()))
        } else {
            Err("must be 1 to 32 characters of a-z, 0-9 or '-'".into())
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The counters of a stock row (or a bucket of one, or their sum). Invariant:
/// `on_hand = reserved + available`, all three >= 0; the store's conditions keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Units {
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
}

/// The stock of one product in one warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevel {
    pub warehouse_id: WarehouseId,
    pub units: Units,
    /// Units in transit towards this warehouse (transfers not yet received): neither on
    /// hand nor available.
    pub incoming: i64,
    /// Units the warehouse's waiting waitlist entries ask for: part of `available`, but
    /// kept for the queue, so other buyers can hold only `holdable`.
    pub waiting: i64,
    pub updated_at: DateTime<Utc>,
}

impl StockLevel {
    /// What a hold by a buyer who did not wait may take: the available units beyond those
    /// the waitlist asks for (never below 0).
    pub fn holdable(&self) -> i64 {
        (self.units.available - self.waiting).max(0)
    }
}

/// Sums rows of the same warehouse (a bucketed product's buckets) into one level each,
/// sorted by warehouse id; the latest `updated_at` of a warehouse's rows is its.
pub fn sum_per_warehouse(rows: Vec<StockLevel>) -> Vec<StockLevel> {
    let mut per_warehouse: std::collections::BTreeMap<WarehouseId, StockLevel> = Default::default();
    for row in rows {
        match per_warehouse.get_mut(&row.warehouse_id) {
            Some(sum) => {
                sum.units.on_hand += row.units.on_hand;
                sum.units.reserved += row.units.reserved;
                sum.units.available += row.units.available;
                sum.incoming += row.incoming;
                sum.waiting += row.waiting;
                sum.updated_at = sum.updated_at.max(row.updated_at);
            }
            None => {
                per_warehouse.insert(row.warehouse_id.clone(), row);
            }
        }
    }
    per_warehouse.into_values().collect()
}

/// The result of picking a warehouse for a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarehouseChoice {
    /// This warehouse can fill the whole quantity.
    Fill(WarehouseId),
    /// None can; the most any single warehouse could give.
    Insufficient { available: i64 },
}

/// docs/api.md: the one warehouse that can fill the whole quantity with the most available
/// units; ties go to the smallest warehouse id. Splitting across warehouses is not done.
pub fn choose_warehouse(stock: &[StockLevel], quantity: i64) -> WarehouseChoice {
    let best = stock
        .iter()
        .max_by(|a, b| a.holdable().cmp(&b.holdable()).then_with(|| b.warehouse_id.cmp(&a.warehouse_id)));
    match best {
        Some(s) if s.holdable() >= quantity => WarehouseChoice::Fill(s.warehouse_id.clone()),
        Some(s) => WarehouseChoice::Insufficient { available: s.holdable() },
        None => WarehouseChoice::Insufficient { available: 0 },
    }
}

/// How often a hold picks its warehouse: when the warehouse a read picked sells out
/// between the read and the write, it picks again.
pub const PICK_ATTEMPTS: usize = 3;

/// How a hold finds its warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickPlan {
    /// The buyer named it.
    Named(WarehouseId),
    /// The product's only warehouse: hold there without reading the product.
    Sole(WarehouseId),
    /// Read the product and `choose_warehouse`.
    Read,
}

/// The named warehouse; else a one-warehouse product's own, with no read before the
/// hold's write (the write's failed condition tells a refusal, with `available`); else a
/// read of the product. After a hold found the product sold out (`sold_out`), holds read
/// first until one succeeds: while a product stays sold out, each refusal then costs a
/// read rather than a failed write on the stock row (in DynamoDB, a write unit of the
/// hot row's partition; on DynamoDB Local, a serial transaction).
pub fn plan_pick(named: Option<&WarehouseId>, sole: Option<&WarehouseId>, sold_out: bool) -> PickPlan {
    match (named, sole) {
        (Some(w), _) => PickPlan::Named(w.clone()),
        (None, Some(w)) if !sold_out => PickPlan::Sole(w.clone()),
        _ => PickPlan::Read,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(w: &str, on_hand: i64, reserved: i64) -> StockLevel {
        StockLevel {
            warehouse_id: WarehouseId::parse(w).unwrap(),
            units: Units { on_hand, reserved, available: on_hand - reserved },
            incoming: 0,
            waiting: 0,
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn a_hold_sees_only_the_units_beyond_those_the_waitlist_asks_for() {
        let waited = StockLevel { waiting: 4, ..level("a", 6, 1) };
        assert_eq!(waited.holdable(), 1);
        assert_eq!(StockLevel { waiting: 9, ..level("a", 6, 1) }.holdable(), 0, "never below 0");
        let b = level("b", 3, 0);
        assert_eq!(
            choose_warehouse(&[waited.clone(), b.clone()], 2),
            WarehouseChoice::Fill(b.warehouse_id.clone())
        );
        assert_eq!(choose_warehouse(&[waited], 2), WarehouseChoice::Insufficient { available: 1 });
    }

    #[test]
    fn a_hold_reads_the_product_only_without_a_named_or_sole_warehouse_or_after_a_sell_out() {
        let (a, b) = (WarehouseId::parse("a").unwrap(), WarehouseId::parse("b").unwrap());
        assert_eq!(plan_pick(Some(&a), Some(&b), true), PickPlan::Named(a.clone()));
        assert_eq!(plan_pick(None, Some(&b), false), PickPlan::Sole(b.clone()));
        assert_eq!(plan_pick(None, Some(&b), true), PickPlan::Read);
        assert_eq!(plan_pick(None, None, false), PickPlan::Read);
    }

    #[test]
    fn rows_of_one_warehouse_sum_and_warehouses_sort() {
        let rows = vec![level("b", 3, 1), level("a", 2, 0), level("b", 4, 2)];
        let sums = sum_per_warehouse(rows);
        assert_eq!(sums.iter().map(|s| s.warehouse_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(sums[1].units, Units { on_hand: 7, reserved: 3, available: 4 });
    }

    #[test]
    fn warehouse_choice_prefers_most_available_then_smallest_id() {
        let stock = [level("b", 5, 0), level("a", 5, 0), level("c", 4, 0)];
        assert_eq!(choose_warehouse(&stock, 5), WarehouseChoice::Fill(WarehouseId::parse("a").unwrap()));
        let stock = [level("b", 5, 0), level("c", 9, 1)];
        assert_eq!(choose_warehouse(&stock, 2), WarehouseChoice::Fill(WarehouseId::parse("c").unwrap()));
    }

    #[test]
    fn warehouse_choice_never_splits_and_reports_the_largest_single_amount() {
        let stock = [level("a", 3, 0), level("b", 4, 0)];
        assert_eq!(choose_warehouse(&stock, 5), WarehouseChoice::Insufficient { available: 4 });
        assert_eq!(choose_warehouse(&[], 1), WarehouseChoice::Insufficient { available: 0 });
    }
}
