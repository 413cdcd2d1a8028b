//! Stock arithmetic for one (product, warehouse) row and the warehouse choice rule.
//! The store enforces the same rules atomically with condition expressions; these
//! functions decide up front and explain failures.

use super::product::{WarehouseId, MAX_QUANTITY};
use chrono::{DateTime, Utc};

/// Units of one product in one warehouse. Invariant: `on_hand = reserved + available`,
/// all three >= 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevel {
    pub warehouse_id: WarehouseId,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub updated_at: DateTime<Utc>,
}

/// Why a stock change cannot apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StockError {
    /// Fewer than the requested units are available; carries what is.
    Insufficient { available: i64 },
    /// The change would take `on_hand` past the maximum.
    TooMuch,
}

impl StockLevel {
    pub fn is_consistent(&self) -> bool {
        self.on_hand >= 0
            && self.reserved >= 0
            && self.available >= 0
            && self.on_hand == self.reserved + self.available
    }

    /// Holds `q` units: available -> reserved.
    pub fn reserve(&self, q: i64) -> Result<Self, StockError> {
        if self.available < q {
            return Err(StockError::Insufficient { available: self.available });
        }
        Ok(Self { reserved: self.reserved + q, available: self.available - q, ..self.clone() })
    }

    /// Gives back `q` held units: reserved -> available.
    pub fn release(&self, q: i64) -> Self {
        Self { reserved: self.reserved - q, available: self.available + q, ..self.clone() }
    }

    /// Adds or removes on-hand units. Reserved units cannot be removed.
    pub fn adjust(&self, delta: i64) -> Result<Self, StockError> {
        if delta < 0 && self.available < -delta {
            return Err(StockError::Insufficient { available: self.available });
        }
        if self.on_hand + delta > MAX_QUANTITY {
            return Err(StockError::TooMuch);
        }
        Ok(Self { on_hand: self.on_hand + delta, available: self.available + delta, ..self.clone() })
    }
}

/// The result of picking a warehouse for a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarehouseChoice {
    /// This warehouse can fill the whole quantity.
    Fill(WarehouseId),
    /// None can; the most any single warehouse could give.
    Insufficient { available: i64 },
}

/// API.md: the one warehouse that can fill the whole quantity with the most available
/// units; ties go to the smallest warehouse id. Splitting across warehouses is not done.
pub fn choose_warehouse(stock: &[StockLevel], quantity: i64) -> WarehouseChoice {
    let best = stock
        .iter()
        .max_by(|a, b| a.available.cmp(&b.available).then_with(|| b.warehouse_id.cmp(&a.warehouse_id)));
    match best {
        Some(s) if s.available >= quantity => WarehouseChoice::Fill(s.warehouse_id.clone()),
        Some(s) => WarehouseChoice::Insufficient { available: s.available },
        None => WarehouseChoice::Insufficient { available: 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(w: &str, on_hand: i64, reserved: i64) -> StockLevel {
        StockLevel {
            warehouse_id: WarehouseId::parse(w).unwrap(),
            on_hand,
            reserved,
            available: on_hand - reserved,
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn reserving_moves_units_from_available_to_reserved() {
        let s = level("main", 10, 2).reserve(3).unwrap();
        assert_eq!((s.on_hand, s.reserved, s.available), (10, 5, 5));
        assert!(s.is_consistent());
    }

    #[test]
    fn reserving_more_than_available_reports_what_is_available() {
        assert_eq!(level("main", 10, 8).reserve(3), Err(StockError::Insufficient { available: 2 }));
    }

    #[test]
    fn releasing_returns_units_to_available() {
        let s = level("main", 10, 5).release(5);
        assert_eq!((s.on_hand, s.reserved, s.available), (10, 0, 10));
    }

    #[test]
    fn removing_stock_cannot_touch_reserved_units() {
        assert_eq!(level("main", 10, 8).adjust(-3), Err(StockError::Insufficient { available: 2 }));
        let s = level("main", 10, 8).adjust(-2).unwrap();
        assert_eq!((s.on_hand, s.reserved, s.available), (8, 8, 0));
    }

    #[test]
    fn adding_stock_cannot_pass_the_maximum() {
        assert_eq!(level("main", MAX_QUANTITY, 0).adjust(1), Err(StockError::TooMuch));
        assert!(level("main", MAX_QUANTITY - 1, 0).adjust(1).is_ok());
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
