//! Returns of a delivered order: the request, the return as made, and the plan of what
//! one return changes on its order. A return takes back units line by line (a product's
//! units from its order lines in order), so each unit goes back to the warehouse and
//! bucket it was sold from, and no line ever takes back more than it sold.

use super::ids::{Id, ProductId};
use super::movement::parse_note;
use super::order::{Order, OrderStatus};
use super::stock::MAX_QUANTITY;
use super::validate::{int_in, product_lines, string, Fields};
use super::DomainError;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Most lines in one return: an order has at most 25 lines, so at most 25 products.
pub const MAX_RETURN_LINES: usize = 25;

/// One line of a return request: units of one product, put back on sale or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnRequestLine {
    pub product_id: ProductId,
    pub quantity: i64,
    pub restock: bool,
}

/// A validated `POST /api/orders/{id}/returns` body: 1..=25 lines, no product twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReturn {
    pub lines: Vec<ReturnRequestLine>,
    pub note: Option<String>,
}

impl ReturnRequestLine {
    fn from_json(obj: &Map<String, Value>) -> Result<Self, DomainError> {
        let mut f = Fields::new(obj);
        let product_id =
            f.required("product_id", |v| ProductId::parse(string(v)?).map_err(|e| e.to_string()));
        let quantity = f.required("quantity", |v| int_in(v, 1, MAX_QUANTITY));
        let restock = f.required("restock", |v| v.as_bool().ok_or_else(|| "must be a boolean".to_string()));
        f.finish(|| Some(Self { product_id: product_id?, quantity: quantity?, restock: restock? }))
    }
}

impl NewReturn {
    pub fn from_json(obj: &Map<String, Value>) -> Result<Self, DomainError> {
        let mut f = Fields::new(obj);
        f.not_null(&["note"]);
        let mut line_errors = Vec::new();
        let lines = f.required("items", |v| {
            product_lines(
                v,
                MAX_RETURN_LINES,
                "return line",
                ReturnRequestLine::from_json,
                |l| l.product_id.clone(),
                &mut line_errors,
            )
        });
        for (field, message) in line_errors {
            f.error(&field, message);
        }
        let note = f.optional("note", |v| parse_note(string(v)?));
        f.finish(|| Some(Self { lines: lines?, note }))
    }
}

impl super::fingerprint::Canonical for NewReturn {
    fn canonical(&self) -> Value {
        let lines: Vec<Value> = self
            .lines
            .iter()
            .map(|l| serde_json::json!({"product_id": l.product_id, "quantity": l.quantity, "restock": l.restock}))
            .collect();
        serde_json::json!({ "items": lines, "note": self.note })
    }
}

/// Units of one product back into one stock row (the warehouse and bucket an order line
/// sold them from), restocked or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnLine {
    pub product_id: String,
    pub warehouse_id: String,
    /// Internal, not in the API (as on order lines).
    pub bucket: usize,
    pub quantity: i64,
    pub restock: bool,
}

/// A return as made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderReturn {
    pub id: String,
    pub order_id: String,
    pub lines: Vec<ReturnLine>,
    pub note: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl OrderReturn {
    /// Units per product (every returned unit gives the customer's allowance back,
    /// restocked or not).
    pub fn units_per_product(&self) -> BTreeMap<&str, i64> {
        let mut out = BTreeMap::new();
        for l in &self.lines {
            *out.entry(l.product_id.as_str()).or_insert(0) += l.quantity;
        }
        out
    }

    /// Units per stock row (product, warehouse, bucket) that go back on sale.
    pub fn restocked_per_row(&self) -> BTreeMap<(&str, &str, usize), i64> {
        let mut out = BTreeMap::new();
        for l in self.lines.iter().filter(|l| l.restock) {
            *out.entry((l.product_id.as_str(), l.warehouse_id.as_str(), l.bucket)).or_insert(0) += l.quantity;
        }
        out
    }
}

/// What one return changes on its order, judged against the order as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnPlan {
    pub ret: OrderReturn,
    /// (order line index, units it takes back).
    pub per_line: Vec<(usize, i64)>,
    /// The order's returned units before (the sum over its lines).
    pub returned_before: i64,
    /// The order's units (the sum of its lines' quantities).
    pub sold: i64,
    /// The order after the return (its lines' `returned`, and `returned` status when
    /// every unit is back).
    pub after: Order,
}

impl ReturnPlan {
    pub fn completes(&self) -> bool {
        self.after.status == OrderStatus::Returned
    }
}

/// Plans `new` against `order` as read: 409 `order_not_returnable` unless it is
/// delivered; 422 for a product not of the order; 409 `return_exceeds_order` for more
/// units of a product than are left to return. The checks run in that order, the lines
/// in request order.
pub fn plan(
    order: &Order,
    new: &NewReturn,
    id: String,
    now: DateTime<Utc>,
) -> Result<ReturnPlan, DomainError> {
    if order.status != OrderStatus::Delivered {
        return Err(DomainError::OrderNotReturnable);
    }
    let strangers: Vec<_> = new
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| !order.items.iter().any(|i| i.product_id == l.product_id.as_str()))
        .map(|(i, _)| {
            super::FieldError::new(format!("items[{i}].product_id"), "is not a product of the order")
        })
        .collect();
    if !strangers.is_empty() {
        return Err(DomainError::Validation(strangers));
    }
    let mut after = order.clone();
    let mut per_line = Vec::new();
    let mut lines = Vec::new();
    for l in &new.lines {
        let product = l.product_id.as_str();
        let returnable: i64 =
            order.items.iter().filter(|i| i.product_id == product).map(|i| i.quantity - i.returned).sum();
        if l.quantity > returnable {
            return Err(DomainError::ReturnExceedsOrder { product_id: product.to_string(), returnable });
        }
        let mut left = l.quantity;
        for (index, item) in after.items.iter_mut().enumerate().filter(|(_, i)| i.product_id == product) {
            let take = left.min(item.quantity - item.returned);
            if take == 0 {
                continue;
            }
            per_line.push((index, take));
            item.returned += take;
            left -= take;
            // One line of the return per stock row, merged when two order lines sold
            // from the same one.
            match lines.iter_mut().find(|r: &&mut ReturnLine| {
                r.product_id == product && r.warehouse_id == item.warehouse_id && r.bucket == item.bucket
            }) {
                Some(r) => r.quantity += take,
                None => lines.push(ReturnLine {
                    product_id: product.to_string(),
                    warehouse_id: item.warehouse_id.clone(),
                    bucket: item.bucket,
                    quantity: take,
                    restock: l.restock,
                }),
            }
            if left == 0 {
                break;
            }
        }
    }
    let sold = order.items.iter().map(|i| i.quantity).sum();
    let returned_before = order.items.iter().map(|i| i.returned).sum();
    if after.items.iter().all(|i| i.returned == i.quantity) {
        after.status = OrderStatus::Returned;
    }
    after.updated_at = now;
    let ret = OrderReturn { id, order_id: order.id.clone(), lines, note: new.note.clone(), created_at: now };
    after.last_return = Some(ret.clone());
    Ok(ReturnPlan { ret, per_line, returned_before, sold, after })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::OrderItem;
    use serde_json::json;

    fn parse(v: Value) -> Result<NewReturn, DomainError> {
        NewReturn::from_json(v.as_object().expect("object"))
    }

    fn fields(e: DomainError) -> Vec<String> {
        match e {
            DomainError::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("{other:?}"),
        }
    }

    fn line(product: &str, warehouse: &str, quantity: i64) -> OrderItem {
        OrderItem {
            product_id: product.into(),
            sku: format!("SKU-{product}"),
            name: product.into(),
            warehouse_id: warehouse.into(),
            reservation_id: format!("r-{product}-{warehouse}"),
            quantity,
            returned: 0,
            unit_price_cents: 100,
            bucket: 0,
        }
    }

    fn order(status: OrderStatus, items: Vec<OrderItem>) -> Order {
        let now = Utc::now();
        Order {
            id: "o".into(),
            user_id: "alice".into(),
            status,
            currency: "USD".into(),
            items,
            created_at: now,
            updated_at: now,
            last_return: None,
        }
    }

    fn new(lines: &[(&str, i64, bool)]) -> NewReturn {
        parse(json!({"items": lines.iter().map(|(p, q, r)| json!({"product_id": p, "quantity": q, "restock": r}))
            .collect::<Vec<_>>()}))
        .expect("valid")
    }

    #[test]
    fn a_return_names_each_product_once_with_a_quantity_and_whether_it_goes_back_on_sale() {
        let ok = parse(
            json!({"items": [{"product_id": "p", "quantity": 2, "restock": true}], "note": "damaged box"}),
        )
        .expect("valid");
        assert_eq!(
            (ok.lines[0].quantity, ok.lines[0].restock, ok.note.as_deref()),
            (2, true, Some("damaged box"))
        );
        let twice = parse(json!({"items": [{"product_id": "p", "quantity": 1, "restock": true},
                                           {"product_id": "p", "quantity": 1, "restock": false}]}));
        assert_eq!(fields(twice.expect_err("twice")), ["items[1].product_id"]);
        let bad = parse(json!({"items": [{"product_id": "p", "quantity": 0}, 3], "note": null, "why": 1}));
        let mut got = fields(bad.expect_err("bad"));
        got.sort();
        assert_eq!(got, ["items[0].quantity", "items[0].restock", "items[1]", "note", "why"]);
        let many: Vec<Value> =
            (0..26).map(|i| json!({"product_id": format!("p{i}"), "quantity": 1, "restock": true})).collect();
        assert_eq!(fields(parse(json!({"items": many})).expect_err("26")), ["items"]);
        assert_eq!(fields(parse(json!({"items": []})).expect_err("none")), ["items"]);
        let long = "x".repeat(501);
        let note =
            parse(json!({"items": [{"product_id": "p", "quantity": 1, "restock": true}], "note": long}));
        assert_eq!(fields(note.expect_err("long note")), ["note"]);
    }

    #[test]
    fn only_a_delivered_order_takes_returns_and_only_of_its_own_products() {
        for status in OrderStatus::ALL.into_iter().filter(|s| *s != OrderStatus::Delivered) {
            let o = order(status, vec![line("p", "main", 2)]);
            assert_eq!(
                plan(&o, &new(&[("p", 1, true)]), "r".into(), Utc::now()),
                Err(DomainError::OrderNotReturnable)
            );
        }
        let o = order(OrderStatus::Delivered, vec![line("p", "main", 2)]);
        let stranger = plan(&o, &new(&[("p", 1, true), ("q", 1, true)]), "r".into(), Utc::now());
        assert_eq!(fields(stranger.expect_err("q")), ["items[1].product_id"]);
    }

    #[test]
    fn units_come_back_line_by_line_to_the_rows_they_were_sold_from_and_never_more() {
        let o = order(
            OrderStatus::Delivered,
            vec![line("p", "main", 2), line("q", "main", 1), line("p", "east", 3)],
        );
        let first = plan(&o, &new(&[("p", 4, true)]), "r1".into(), Utc::now()).expect("fits");
        assert_eq!(first.per_line, [(0, 2), (2, 2)]);
        assert_eq!(
            first.ret.lines.iter().map(|l| (l.warehouse_id.as_str(), l.quantity)).collect::<Vec<_>>(),
            [("main", 2), ("east", 2)]
        );
        assert!(!first.completes());
        assert_eq!((first.returned_before, first.sold), (0, 6));
        let over = plan(&first.after, &new(&[("p", 2, false)]), "r2".into(), Utc::now());
        assert_eq!(over, Err(DomainError::ReturnExceedsOrder { product_id: "p".into(), returnable: 1 }));
        let rest = plan(&first.after, &new(&[("q", 1, false), ("p", 1, false)]), "r2".into(), Utc::now())
            .expect("fits");
        assert!(rest.completes());
        assert_eq!(rest.after.status, OrderStatus::Returned);
        assert_eq!(rest.returned_before, 4);
        assert!(rest.ret.restocked_per_row().is_empty(), "nothing goes back on sale");
        assert_eq!(rest.ret.units_per_product().into_iter().collect::<Vec<_>>(), [("p", 1), ("q", 1)]);
        let again = plan(&rest.after, &new(&[("q", 1, true)]), "r3".into(), Utc::now());
        assert_eq!(again, Err(DomainError::OrderNotReturnable), "a returned order takes no more");
    }
}
