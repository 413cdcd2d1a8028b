//! Products and their validated value types.

use super::movement::{parse_note, Cause, Reason};
use super::stock::{StockLevel, WarehouseId, MAX_QUANTITY};
use super::validate::{int_in, matches_charset, string, Fields};
use super::DomainError;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub const MAX_PRICE_CENTS: i64 = 1_000_000_000;
pub const MAX_WAREHOUSES: usize = 50;
/// Most buckets one warehouse's stock of a product may be split into (BENCHMARKS.md,
/// "Hot items"): 16 partitions take about 16,000 write units/s.
pub const MAX_STOCK_BUCKETS: usize = 16;
/// Most stock rows (warehouses x buckets) a product may ever have, so that every
/// operation on it stays one request of DynamoDB's 100 items: its creation (the product,
/// its SKU claim and every row), a read of all its rows at one instant
/// (`TransactGetItems`), a change of its terms (the product and every row). Every path
/// that adds a row (creation, stock added to a new warehouse) keeps to it.
pub const MAX_STOCK_ROWS: usize = 98;

/// Whether a product with `warehouses` warehouses of `buckets` rows each may gain one
/// more warehouse; the message says why not.
pub fn may_open_warehouse(warehouses: usize, buckets: usize) -> Result<(), String> {
    if warehouses >= MAX_WAREHOUSES {
        return Err(format!("the product has {warehouses} warehouses, the most a product may have"));
    }
    let rows = (warehouses + 1) * buckets.max(1);
    if rows > MAX_STOCK_ROWS {
        return Err(format!(
            "a new warehouse would give the product {rows} stock rows ({} warehouses x {} stock_buckets); \
             warehouses x stock_buckets may be at most {MAX_STOCK_ROWS}",
            warehouses + 1,
            buckets.max(1)
        ));
    }
    Ok(())
}

/// A stock-keeping unit: 1..=64 of `[A-Za-z0-9._-]`, unique across products.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sku(String);

impl Sku {
    pub fn parse(s: &str) -> Result<Self, String> {
        if matches_charset(s, 1, 64, |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            Ok(Self(s.to_string()))
        } else {
            Err("must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'".into())
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// ISO 4217 style currency code: three capital letters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Currency(String);

impl Currency {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() == 3 && s.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Self(s.to_string()))
        } else {
            Err("must be three capital letters (ISO 4217)".into())
        }
    }
    pub fn usd() -> Self {
        Self("USD".into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn name(v: &Value) -> Result<String, String> {
    let s = string(v)?;
    let n = s.chars().count();
    if (1..=200).contains(&n) && !s.trim().is_empty() {
        Ok(s.to_string())
    } else {
        Err("must be 1 to 200 characters, not only white space".into())
    }
}

/// A validated `POST /api/products` body.
#[derive(Debug, Clone, PartialEq)]
pub struct NewProduct {
    pub sku: Sku,
    pub name: String,
    pub price_cents: i64,
    pub currency: Currency,
    pub stock: BTreeMap<WarehouseId, i64>,
    /// How many rows (in separate partitions) each warehouse's stock is split into; 1 is
    /// one row, the right choice for all but the hottest items. Fixed at creation.
    pub stock_buckets: usize,
    pub active: bool,
    pub max_per_customer: Option<i64>,
    /// See `Product::low_stock_threshold`.
    pub low_stock_threshold: Option<i64>,
}

fn threshold(v: &Value) -> Result<i64, String> {
    int_in(v, 0, crate::domain::event::MAX_LOW_STOCK_THRESHOLD)
}

/// Most units one customer may be allowed of a product (`max_per_customer`).
pub const MAX_PER_CUSTOMER: i64 = 10_000;

fn per_customer(v: &Value) -> Result<i64, String> {
    int_in(v, 1, MAX_PER_CUSTOMER)
}

impl NewProduct {
    pub fn from_json(obj: &Map<String, Value>) -> Result<Self, DomainError> {
        let mut f = Fields::new(obj);
        // `active` and `max_per_customer` take null (their default); these do not.
        f.not_null(&["currency", "stock", "stock_buckets"]);
        let sku = f.required("sku", |v| Sku::parse(string(v)?));
        let name = f.required("name", name);
        let price_cents = f.required("price_cents", |v| int_in(v, 0, MAX_PRICE_CENTS));
        let currency = f.optional("currency", |v| Currency::parse(string(v)?));
        let mut stock_errors = Vec::new();
        let stock = f.optional("stock", |v| {
            let map = v.as_object().ok_or("must be an object of warehouse id to quantity")?;
            if map.len() > MAX_WAREHOUSES {
                return Err(format!("at most {MAX_WAREHOUSES} warehouses"));
            }
            let mut out = BTreeMap::new();
            for (k, q) in map {
                match (WarehouseId::parse(k), int_in(q, 0, MAX_QUANTITY)) {
                    (Ok(w), Ok(q)) => {
                        out.insert(w, q);
                    }
                    (Err(e), _) => stock_errors.push((format!("stock.{k}"), e)),
                    (_, Err(e)) => stock_errors.push((format!("stock.{k}"), e)),
                }
            }
            Ok(out)
        });
        for (field, msg) in stock_errors {
            f.error(&field, msg);
        }
        let active = f.optional("active", |v| v.as_bool().ok_or_else(|| "must be true or false".to_string()));
        let max_per_customer = f.optional("max_per_customer", per_customer);
        let low_stock_threshold = f.optional("low_stock_threshold", threshold);
        let stock_buckets = f.optional("stock_buckets", |v| {
            let k = int_in(v, 1, MAX_STOCK_BUCKETS as i64)?;
            usize::try_from(k).map_err(|_| "must be a positive integer".to_string())
        });
        if let (Some(k), Some(stock)) = (stock_buckets, &stock) {
            if stock.len() * k > MAX_STOCK_ROWS {
                f.error(
                    "stock_buckets",
                    format!("warehouses x stock_buckets must be at most {MAX_STOCK_ROWS}"),
                );
            }
        }
        f.finish(|| {
            Some(Self {
                sku: sku?,
                name: name?,
                price_cents: price_cents?,
                currency: currency.unwrap_or_else(Currency::usd),
                stock: stock.unwrap_or_default(),
                stock_buckets: stock_buckets.unwrap_or(1),
                active: active.unwrap_or(true),
                max_per_customer,
                low_stock_threshold,
            })
        })
    }
}

/// A validated `POST /api/products/{id}/stock` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockAdjustment {
    pub warehouse_id: WarehouseId,
    pub change: StockChange,
    /// `received` (positive deltas), `removed` or `damaged` (negative ones), `counted`
    /// (counts), with the admin's note: what the movement records.
    pub cause: Cause,
}

/// What an adjustment does to `on_hand`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockChange {
    /// Adds (or, negative, removes) units.
    Delta(i64),
    /// A count: sets `on_hand`, and with `expected`, only if that is the current number.
    Count { set_on_hand: i64, expected: Option<i64> },
}

impl StockAdjustment {
    /// Exactly one of `delta` and `set_on_hand`; `reason` goes only with `delta`, and
    /// `expected_on_hand` only with `set_on_hand`.
    pub fn from_json(obj: &Map<String, Value>) -> Result<Self, DomainError> {
        let mut f = Fields::new(obj);
        f.not_null(&["reason", "note", "expected_on_hand", "set_on_hand", "delta"]);
        let warehouse_id = f.required("warehouse_id", |v| WarehouseId::parse(string(v)?));
        let counting = obj.get("set_on_hand").is_some_and(|v| !v.is_null());
        if counting && obj.get("delta").is_some_and(|v| !v.is_null()) {
            f.error("set_on_hand", "give either delta or set_on_hand, not both");
        }
        if counting && obj.contains_key("reason") {
            f.error("reason", "is not accepted with set_on_hand (a count's reason is counted)");
        }
        if !counting && obj.contains_key("expected_on_hand") {
            f.error("expected_on_hand", "goes only with set_on_hand");
        }
        let change = if counting {
            let set_on_hand = f.required("set_on_hand", |v| int_in(v, 0, MAX_QUANTITY));
            let expected = f.optional("expected_on_hand", |v| int_in(v, 0, MAX_QUANTITY));
            f.mark_seen("delta");
            f.mark_seen("reason");
            set_on_hand.map(|set_on_hand| StockChange::Count { set_on_hand, expected })
        } else {
            f.mark_seen("set_on_hand");
            f.mark_seen("expected_on_hand");
            f.required("delta", |v| match int_in(v, -MAX_QUANTITY, MAX_QUANTITY)? {
                0 => Err("must not be zero".into()),
                d => Ok(StockChange::Delta(d)),
            })
        };
        let reason = if counting {
            None
        } else {
            f.optional("reason", |v| match Reason::parse(string(v)?) {
                Some(r @ (Reason::Received | Reason::Removed | Reason::Damaged)) => Ok(r),
                _ => Err("must be received, removed or damaged".into()),
            })
        };
        let note = f.optional("note", |v| parse_note(string(v)?));
        if let (Some(StockChange::Delta(d)), Some(r)) = (change, reason) {
            match (r, d > 0) {
                (Reason::Received, false) => f.error("reason", "received goes only with a positive delta"),
                (Reason::Removed | Reason::Damaged, true) => {
                    f.error("reason", format!("{} goes only with a negative delta", r.as_str()))
                }
                _ => {}
            }
        }
        f.finish(|| {
            let change = change?;
            let default = match change {
                StockChange::Delta(d) if d > 0 => Reason::Received,
                StockChange::Delta(_) => Reason::Removed,
                StockChange::Count { .. } => Reason::Counted,
            };
            let cause = Cause::new(reason.unwrap_or(default)).with_note(note);
            Some(Self { warehouse_id: warehouse_id?, change, cause })
        })
    }
}

/// A validated `PATCH /api/products/{id}` body: a non-empty subset of the product's own
/// fields that may change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProductChanges {
    pub name: Option<String>,
    pub price_cents: Option<i64>,
    /// `Some(None)`: remove the limit.
    pub max_per_customer: Option<Option<i64>>,
    pub active: Option<bool>,
    /// `Some(None)`: no threshold.
    pub low_stock_threshold: Option<Option<i64>>,
}

impl ProductChanges {
    pub fn from_json(obj: &Map<String, Value>) -> Result<Self, DomainError> {
        let mut f = Fields::new(obj);
        for fixed in
            ["sku", "currency", "stock", "stock_buckets", "id", "available", "created_at", "updated_at"]
        {
            if obj.contains_key(fixed) {
                f.error(fixed, "cannot be changed");
                f.mark_seen(fixed);
            }
        }
        // Only the limit may be null (no limit); a null elsewhere changes nothing and is
        // refused rather than ignored.
        f.not_null(&["name", "price_cents", "active"]);
        let name = f.optional("name", name);
        let price_cents = f.optional("price_cents", |v| int_in(v, 0, MAX_PRICE_CENTS));
        let active = f.optional("active", |v| v.as_bool().ok_or_else(|| "must be true or false".to_string()));
        // null is a value here: it removes the limit.
        let max_per_customer = match obj.get("max_per_customer") {
            None => None,
            Some(Value::Null) => {
                f.mark_seen("max_per_customer");
                Some(None)
            }
            Some(_) => f.optional("max_per_customer", per_customer).map(Some),
        };
        let low_stock_threshold = match obj.get("low_stock_threshold") {
            None => None,
            Some(Value::Null) => {
                f.mark_seen("low_stock_threshold");
                Some(None)
            }
            Some(_) => f.optional("low_stock_threshold", threshold).map(Some),
        };
        if obj.is_empty() {
            f.error(
                "body",
                "name at least one of name, price_cents, max_per_customer, active, low_stock_threshold",
            );
        }
        f.finish(|| Some(Self { name, price_cents, max_per_customer, active, low_stock_threshold }))
    }
}

/// A client's `If-Match`: the product versions it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// `*`: any existing product.
    Any,
    /// The opaque parts of the strong tags it names (weak tags are left out: a strong
    /// comparison never matches them). A version matches only the tag we issue for it,
    /// byte for byte: `"01"` is not `"1"`.
    OneOf(Vec<Vec<u8>>),
}

impl Precondition {
    pub fn holds_for(&self, version: i64) -> bool {
        match self {
            Self::Any => true,
            Self::OneOf(tags) => {
                let ours = version.to_string();
                tags.iter().any(|t| t.as_slice() == ours.as_bytes())
            }
        }
    }

    /// Reads an `If-Match` header (its field lines joined with commas) as RFC 9110 has
    /// it: `*`, or a comma-separated list of entity tags (`"..."` or `W/"..."`, each of
    /// `etagc` bytes). Anything else is an error: a precondition the server cannot read
    /// must refuse the request, never be ignored.
    pub fn parse_if_match(value: &[u8]) -> Result<Self, &'static str> {
        const BAD: &str = "must be * or a comma-separated list of entity tags";
        let ows = |b: &u8| *b == b' ' || *b == b'\t';
        let trimmed = trim(value, ows);
        if trimmed == b"*" {
            return Ok(Self::Any);
        }
        let mut tags = Vec::new();
        let mut named = 0usize;
        let mut rest = trimmed;
        loop {
            // Empty list elements (`a, , b`) are allowed and skipped.
            rest = trim_start(rest, |b| ows(b) || *b == b',');
            if rest.is_empty() {
                break;
            }
            let (weak, after) = match rest.strip_prefix(b"W/") {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let Some(opaque) = after.strip_prefix(b"\"") else { return Err(BAD) };
            let Some(end) = opaque.iter().position(|b| *b == b'"') else { return Err(BAD) };
            let tag = &opaque[..end];
            // etagc: %x21 / %x23-7E / obs-text (%x80-FF).
            if !tag.iter().all(|b| *b == 0x21 || (0x23..=0x7e).contains(b) || *b >= 0x80) {
                return Err(BAD);
            }
            named += 1;
            if !weak {
                tags.push(tag.to_vec());
            }
            rest = trim_start(&opaque[end + 1..], ows);
            match rest.first() {
                None => break,
                Some(b',') => {}
                Some(_) => return Err(BAD),
            }
        }
        if named == 0 {
            return Err(BAD);
        }
        Ok(Self::OneOf(tags))
    }
}

fn trim_start(s: &[u8], drop: impl Fn(&u8) -> bool) -> &[u8] {
    let start = s.iter().position(|b| !drop(b)).unwrap_or(s.len());
    &s[start..]
}

fn trim(s: &[u8], drop: impl Fn(&u8) -> bool + Copy) -> &[u8] {
    let s = trim_start(s, drop);
    let end = s.iter().rposition(|b| !drop(b)).map_or(0, |i| i + 1);
    &s[..end]
}

/// What a product's stock events depend on, read when the stream job makes them
/// (`Catalogue::stock_settings`): the threshold of its `StockLow` events, and whether it
/// spreads a warehouse over bucket rows (whose crossings are not judged: no single row
/// holds a warehouse's `available`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockSettings {
    pub low_stock_threshold: Option<i64>,
    pub stock_buckets: usize,
}

/// A product with its stock per warehouse, sorted by warehouse id.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub id: String,
    pub sku: Sku,
    pub name: String,
    pub price_cents: i64,
    pub currency: Currency,
    /// Summed over buckets: a bucketed product reads like any other.
    pub stock: Vec<StockLevel>,
    /// See `NewProduct::stock_buckets`.
    pub stock_buckets: usize,
    pub created_at: DateTime<Utc>,
    /// Latest change to the product or any of its stock rows: the representation changes
    /// whenever stock moves, so its `updated_at` does too.
    pub updated_at: DateTime<Utc>,
    /// Archived products (`false`) stay readable but take no new holds.
    pub active: bool,
    /// Most units one customer may hold and have on order (not cancelled); `None`: no limit.
    pub max_per_customer: Option<i64>,
    /// Counts changes of the product's own fields (name, price, limit, `active`); the
    /// `ETag` is made from it, so stock movements never change the tag.
    pub version: i64,
    /// The warehouse `available` at or below which a fall is `StockLow` (events);
    /// `None`: no low-stock events. A setting of the product's events, not part of the
    /// `ETag` (`version` does not count its changes).
    pub low_stock_threshold: Option<i64>,
    /// Counts changes of what governs new holds (`active`, `max_per_customer`); every stock
    /// row carries it, and a hold applies only where the row's agrees with the product's.
    pub terms: i64,
}

impl Product {
    /// This product with `changes` applied, or `None` when they change nothing (a PATCH
    /// that changes nothing keeps the version and the tag).
    pub fn changed(&self, changes: &ProductChanges) -> Option<Product> {
        let mut next = self.clone();
        if let Some(name) = &changes.name {
            next.name = name.clone();
        }
        if let Some(price) = changes.price_cents {
            next.price_cents = price;
        }
        if let Some(limit) = changes.max_per_customer {
            next.max_per_customer = limit;
        }
        if let Some(active) = changes.active {
            next.active = active;
        }
        let threshold_only = next == *self;
        if let Some(t) = changes.low_stock_threshold {
            next.low_stock_threshold = t;
        }
        if next == *self {
            return None;
        }
        if !threshold_only {
            next.version += 1;
        }
        if (next.active, next.max_per_customer) != (self.active, self.max_per_customer) {
            next.terms += 1;
        }
        Some(next)
    }

    pub fn available(&self) -> i64 {
        self.stock.iter().map(|s| s.units.available).sum()
    }
}

/// What governs new holds of a product: the rules a hold is decided by, as one read of
/// its item says (the store maps them from the product item and checks each hold's stock
/// row against their version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub buckets: usize,
    pub active: bool,
    pub max_per_customer: Option<i64>,
    /// The terms version every stock row carries (`Product::terms`).
    pub terms: i64,
    /// The warehouses known to have stock rows, sorted (empty when none are, or the
    /// product's item predates the list). Warehouses are only ever added, and a product
    /// with one warehouse takes new terms when it gains a second, so a hold decided on a
    /// list with one warehouse that has since grown fails on its stock row's terms.
    pub warehouses: Vec<WarehouseId>,
}

impl Terms {
    pub fn of(p: &Product) -> Self {
        Self {
            buckets: p.stock_buckets,
            active: p.active,
            max_per_customer: p.max_per_customer,
            terms: p.terms,
            warehouses: {
                let mut w: Vec<WarehouseId> = p.stock.iter().map(|s| s.warehouse_id.clone()).collect();
                w.sort();
                w.dedup();
                w
            },
        }
    }

    /// The product's only warehouse, when it has exactly one.
    pub fn sole_warehouse(&self) -> Option<&WarehouseId> {
        match self.warehouses.as_slice() {
            [w] => Some(w),
            _ => None,
        }
    }

    /// Whether `w` is known to have stock rows.
    pub fn knows(&self, w: &WarehouseId) -> bool {
        self.warehouses.binary_search(w).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Result<Precondition, &'static str> {
        Precondition::parse_if_match(v.as_bytes())
    }

    fn adjustment(body: serde_json::Value) -> Result<StockAdjustment, Vec<String>> {
        let obj = body.as_object().cloned().unwrap_or_default();
        StockAdjustment::from_json(&obj).map_err(|e| match e {
            DomainError::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => vec![other.to_string()],
        })
    }

    #[test]
    fn an_adjustment_takes_its_reason_from_the_sign_unless_told_and_refuses_one_that_does_not_fit() {
        use serde_json::json;
        let reason = |b| adjustment(b).map(|a| a.cause.reason);
        assert_eq!(reason(json!({"warehouse_id": "main", "delta": 5})), Ok(Reason::Received));
        assert_eq!(reason(json!({"warehouse_id": "main", "delta": -5})), Ok(Reason::Removed));
        assert_eq!(
            reason(json!({"warehouse_id": "main", "delta": -5, "reason": "damaged"})),
            Ok(Reason::Damaged)
        );
        for bad in [
            json!({"warehouse_id": "main", "delta": 5, "reason": "damaged"}),
            json!({"warehouse_id": "main", "delta": -5, "reason": "received"}),
            json!({"warehouse_id": "main", "delta": -5, "reason": "sale"}),
            json!({"warehouse_id": "main", "delta": -5, "reason": null}),
        ] {
            assert_eq!(reason(bad.clone()), Err(vec!["reason".to_string()]), "{bad}");
        }
        let long = "x".repeat(501);
        assert_eq!(
            reason(json!({"warehouse_id": "main", "delta": 1, "note": long})),
            Err(vec!["note".into()])
        );
        assert_eq!(reason(json!({"warehouse_id": "main", "delta": 1, "note": ""})), Err(vec!["note".into()]));
    }

    #[test]
    fn a_count_takes_set_on_hand_alone_and_refuses_a_reason_or_a_delta_beside_it() {
        use serde_json::json;
        let counted = adjustment(json!({"warehouse_id": "main", "set_on_hand": 40, "expected_on_hand": 42}));
        let counted = counted.expect("a count");
        assert_eq!(counted.change, StockChange::Count { set_on_hand: 40, expected: Some(42) });
        assert_eq!(counted.cause.reason, Reason::Counted);
        let fields = |b| adjustment(b).err().unwrap_or_default();
        assert_eq!(fields(json!({"warehouse_id": "main", "set_on_hand": 4, "delta": 1})), ["set_on_hand"]);
        assert_eq!(
            fields(json!({"warehouse_id": "main", "set_on_hand": 4, "reason": "received"})),
            ["reason"]
        );
        assert_eq!(
            fields(json!({"warehouse_id": "main", "delta": 4, "expected_on_hand": 3})),
            ["expected_on_hand"]
        );
        assert_eq!(fields(json!({"warehouse_id": "main", "set_on_hand": -1})), ["set_on_hand"]);
        assert_eq!(fields(json!({"warehouse_id": "main"})), ["delta"]);
    }

    #[test]
    fn a_warehouse_opens_only_within_the_rows_every_operation_can_take() {
        assert!(may_open_warehouse(5, 16).is_ok(), "6 x 16 = 96");
        assert!(may_open_warehouse(6, 16).is_err(), "7 x 16 = 112");
        assert!(may_open_warehouse(48, 2).is_ok(), "49 x 2 = 98");
        assert!(may_open_warehouse(49, 2).is_err(), "50 x 2 = 100");
        assert!(may_open_warehouse(49, 1).is_ok());
        assert!(may_open_warehouse(50, 1).is_err(), "51 warehouses");
    }

    #[test]
    fn if_match_compares_tags_as_strings_strongly() {
        let p = parse("\"1\"").unwrap();
        assert!(p.holds_for(1));
        for other in ["\"01\"", "\"+1\"", "\"1.0\"", "W/\"1\""] {
            assert!(!parse(other).unwrap().holds_for(1), "{other}");
        }
        assert!(parse("\"7\", W/\"1\" ,\"1\"").unwrap().holds_for(1));
        assert!(parse(" * ").unwrap().holds_for(42));
        // A comma inside a tag belongs to the tag.
        assert_eq!(parse("\"a,b\"").unwrap(), Precondition::OneOf(vec![b"a,b".to_vec()]));
    }

    #[test]
    fn an_if_match_that_cannot_be_read_is_an_error_not_ignored() {
        for bad in ["", " ", ",", "1", "\"1", "\"1\" \"2\"", "*, \"1\"", "W/1", "\"a\u{7f}\"", "\"a b\""] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(Precondition::parse_if_match(b"\"\x01\"").is_err());
        // obs-text is allowed in a tag (it just names no version of ours).
        assert!(!Precondition::parse_if_match(b"\"\xff\"").unwrap().holds_for(1));
    }
}
