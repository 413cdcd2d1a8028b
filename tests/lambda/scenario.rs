//! What every function binary must answer to its fixtures in `events/`, whichever Lambda
//! emulator runs it: cargo-lambda's (`tests/lambda`, in `make test`) or SAM's
//! (`tests/sam_local`, in `make sam-local`). One copy of the expectations for both.

use serde_json::{json, Value};
use shared::domain::caller::Caller;
use shared::domain::product::{Currency, Product, Sku};
use shared::domain::stock::StockLevel;
use shared::domain::stock::{Units, WarehouseId};
use std::path::PathBuf;
use stockhold_tests::*;

pub const PRODUCT: &str = "01KFIXTUREPRODUCT000000000";
pub const RESERVATION: &str = "01KFIXTURERESERVATION00000";
pub const ORDER: &str = "01KFIXTUREORDER00000000000";

pub fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// A Lambda emulator running the function binaries.
pub trait Invoker {
    /// Invokes `function` (its binary name) with a fixture (ids substituted) and returns
    /// its JSON output.
    fn invoke(&self, function: &str, fixture: &str, ids: &[(&str, &str)]) -> Value;

    /// Invokes an HTTP function; returns status, headers and the parsed body.
    fn http(&self, function: &str, fixture: &str, ids: &[(&str, &str)]) -> (u64, Value, Value) {
        let r = self.invoke(function, fixture, ids);
        let body =
            r["body"].as_str().map(|b| serde_json::from_str(b).expect("JSON body")).unwrap_or(Value::Null);
        (r["statusCode"].as_u64().unwrap_or(0), r["headers"].clone(), body)
    }
}

/// An emulator's answer to one invocation: the JSON in the part of its output that
/// `pick` chooses (all of it for cargo-lambda; SAM prints lines of its own first).
pub fn json_output(
    function: &str,
    fixture_name: &str,
    out: &std::process::Output,
    pick: fn(&str) -> &str,
) -> Value {
    assert!(out.status.success(), "{function} {fixture_name}: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(pick(&stdout)).unwrap_or_else(|e| {
        panic!("{function} output is not JSON ({e}): {stdout}\n{}", String::from_utf8_lossy(&out.stderr))
    })
}

/// A fixture with its ids replaced.
pub fn fixture(name: &str, ids: &[(&str, &str)]) -> String {
    let mut data = std::fs::read_to_string(root().join("events").join(name)).expect("fixture");
    for (from, to) in ids {
        data = data.replace(from, to);
    }
    data
}

pub async fn seed_product(app: &shared::service::App) {
    let now = chrono::Utc::now();
    let product = Product {
        id: PRODUCT.into(),
        sku: Sku::parse("FIXTURE-SEED").expect("sku"),
        name: "Seeded".into(),
        price_cents: 1000,
        currency: Currency::usd(),
        stock: vec![StockLevel {
            warehouse_id: WarehouseId::parse("main").expect("w"),
            units: Units { on_hand: 100, reserved: 0, available: 100 },
            incoming: 0,
            waiting: 0,
            updated_at: now,
        }],
        stock_buckets: 1,
        low_stock_threshold: None,
        created_at: now,
        updated_at: now,
        active: true,
        max_per_customer: None,
        version: 1,
        terms: 1,
    };
    app.store.catalogue.create(&product, "seed").await.map_err(|e| format!("{e:?}")).expect("seed");
}

/// Every function answers its fixtures as the contract says, and the table tells the same
/// story afterwards. `app` is the table the functions were started on, seeded.
pub async fn every_function_answers_its_fixtures(app: &shared::service::App, w: &impl Invoker) {
    // products
    let (status, _, body) = w.http("products", "apigw/list-products.json", &[]);
    assert_eq!((status, body["items"][0]["id"].clone()), (200, json!(PRODUCT)));
    let (status, _, body) = w.http("products", "apigw/create-product.json", &[]);
    assert_eq!(
        (status, body["sku"].clone(), body["available"].clone()),
        (201, json!("FIXTURE-TEE"), json!(120))
    );
    let (status, headers, body) = w.http("products", "apigw/create-product.json", &[]);
    assert_eq!((status, body["code"].clone()), (409, json!("conflict")));
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(body["request_id"], "fixture-create-product", "the incoming X-Request-Id is echoed");
    let (status, _, body) = w.http("products", "apigw/adjust-stock.json", &[]);
    assert_eq!((status, body["stock"][0]["on_hand"].clone()), (200, json!(105)));
    let (status, _, body) = w.http("products", "apigw/get-openapi.json", &[]);
    assert_eq!((status, &body["openapi"]), (200, &json!("3.1.0")), "the spec, as JSON");
    // A binary body (the gzip-encoded style sheet) must reach API Gateway base64-encoded.
    let css = w.invoke("products", "apigw/get-docs-asset.json", &[]);
    assert_eq!((css["statusCode"].as_u64(), &css["isBase64Encoded"]), (Some(200), &json!(true)), "{css}");
    assert_eq!(css["headers"]["content-encoding"], "gzip");
    let (status, _, body) = w.http("products", "apigw/get-product.json", &[]);
    assert_eq!((status, body["available"].clone()), (200, json!(105)));
    let (status, headers, body) = w.http("products", "apigw/change-product.json", &[]);
    assert_eq!((status, body["name"].clone()), (200, json!("Seeded, renamed")), "{body}");
    assert_eq!(headers["etag"], "\"2\"");
    // 3 of main's units in transit to a new warehouse, east.
    let (status, _, body) = w.http("products", "apigw/create-transfer.json", &[]);
    assert_eq!((status, body["status"].clone()), (201, json!("in_transit")), "{body}");
    // A route of another function is not this function's.
    let (status, _, _) = w.http("products", "apigw/list-orders.json", &[]);
    assert_eq!(status, 404);

    // reserve (with its Idempotency-Key: the retry returns the same reservation)
    let (status, _, first) = w.http("reserve", "apigw/create-reservation.json", &[]);
    assert_eq!(status, 201, "{first}");
    let (_, _, again) = w.http("reserve", "apigw/create-reservation.json", &[]);
    assert_eq!(again, first);
    let rid = first["id"].as_str().expect("id").to_string();
    let (status, headers, body) = w.http("reserve", "apigw/get-reservation.json", &[(RESERVATION, &rid)]);
    assert_eq!((status, body["status"].clone()), (200, json!("active")));
    assert_eq!(headers["x-request-id"], "fixture-get-reservation");

    // order, transition, list
    let (status, _, order) = w.http("order", "apigw/create-order.json", &[(RESERVATION, &rid)]);
    assert_eq!((status, order["total_cents"].clone()), (201, json!(2000)));
    let oid = order["id"].as_str().expect("id").to_string();
    let (status, _, body) = w.http("order", "apigw/get-order.json", &[(ORDER, &oid)]);
    assert_eq!((status, body["status"].clone()), (200, json!("pending")));
    let (status, _, body) = w.http("transition", "apigw/change-order-status.json", &[(ORDER, &oid)]);
    assert_eq!((status, body["status"].clone()), (200, json!("confirmed")));
    let (status, headers, body) = w.http("transition", "apigw/list-returns.json", &[(ORDER, &oid)]);
    assert_eq!((status, body["items"].clone(), body["next_cursor"].clone()), (200, json!([]), json!(null)));
    assert_eq!(headers["x-request-id"], "fixture-list-returns");
    let (status, _, body) = w.http("list", "apigw/list-orders.json", &[]);
    assert_eq!(
        (status, body["items"][0]["id"].clone(), body["next_cursor"].clone()),
        (200, json!(oid), json!(null))
    );

    // a second hold: extended and released over HTTP, and the jobs find nothing to do
    let caller = Caller { user_id: "alice".into(), is_admin: false };
    let new = shared::domain::reservation::NewReservation {
        product_id: id(PRODUCT),
        quantity: 3,
        warehouse_id: None,
    };
    let second =
        match as_function(app, "reserve").create_reservation(&caller, new, None).await.expect("reserve") {
            shared::service::Created::New(r) => r.id,
            shared::service::Created::Replay(_) => panic!("no replay without a key"),
        };
    let r = w.invoke("expire", "expire.json", &[(RESERVATION, &second)]);
    assert_eq!(r, json!({"reservations": [{"reservation_id": second, "outcome": "not_due"}]}));
    let r = w.invoke("expire", "expire.json", &[]);
    assert_eq!(r["reservations"][0]["outcome"], "not_found");
    // a cart of one line, held and released
    let (status, _, cart) = w.http("reserve", "apigw/create-reservation-batch.json", &[]);
    assert_eq!(status, 201, "{cart}");
    let line = cart["reservations"][0]["id"].as_str().expect("id").to_string();
    let (status, _, _) = w.http("reserve", "apigw/release-reservation.json", &[(RESERVATION, &line)]);
    assert_eq!(status, 200);
    let (status, _, body) = w.http("reserve", "apigw/extend-reservation.json", &[(RESERVATION, &second)]);
    assert_eq!((status, body["status"].clone()), (200, json!("active")), "{body}");
    let (status, _, body) = w.http("reserve", "apigw/release-reservation.json", &[(RESERVATION, &second)]);
    assert_eq!((status, body["status"].clone()), (200, json!("released")));
    let r = w.invoke("sweep", "sweep.json", &[]);
    assert_eq!((r["found"].clone(), r["failed"].clone()), (json!(0), json!(0)));
    // the hourly reconciliation, over one product of whatever the table holds
    let r = w.invoke("reconcile", "reconcile.json", &[]);
    assert_eq!(r["checked"], json!(1), "{r}");

    // audit: the recorded stream batch, then its entries through audit-api
    let r = w.invoke("audit", "audit-stream-batch.json", &[]);
    assert_eq!(r, json!({"batchItemFailures": []}));
    let (status, _, body) = w.http("audit-api", "apigw/list-audit.json", &[]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["changes"]["sku"], json!({"old": null, "new": "TEE-RED-M"}));

    // The table tells the same story: 105 on hand, 3 in transit to east, 2 sold, nothing
    // held.
    let product = app.store.catalogue.get(PRODUCT).await.expect("read").expect("product");
    let east = &product.stock[0];
    assert_eq!((east.warehouse_id.as_str(), east.units.on_hand, east.incoming), ("east", 0, 3));
    assert_eq!(product.stock[1].units, Units { on_hand: 100, reserved: 0, available: 100 });
}
