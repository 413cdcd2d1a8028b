//! The authorization matrix: every route, called anonymously, by the owner of the thing,
//! by another user and by an admin, answers what docs/api.md says; every id-taking route
//! treats another user's id exactly like an id that does not exist (no BOLA, no leak of
//! existence), and a refused call changes nothing.

use serde_json::{json, Value};
use shared::functions::routes;
use std::collections::BTreeSet;
use stockhold_tests::{gateway, token, unique, Reply, TestGateway};

/// A reply's body without the per-request id, to compare two refusals.
fn shape(r: &Reply) -> (u16, Value) {
    let mut body = r.body.clone();
    if let Some(o) = body.as_object_mut() {
        o.remove("request_id");
    }
    (r.status, body)
}

struct World {
    gw: TestGateway,
    owner: String,
    other: String,
    admin: String,
    product: String,
}

impl World {
    async fn new() -> Self {
        let gw = gateway().await;
        let product = gw.product(json!({"main": 50})).await;
        Self {
            gw,
            owner: token(&unique("owner"), false),
            other: token(&unique("other"), false),
            admin: token(&unique("admin"), true),
            product,
        }
    }

    async fn hold(&self) -> String {
        self.gw.reserve(&self.owner, &self.product, 1).await
    }

    async fn order(&self) -> String {
        let hold = self.hold().await;
        let r = self.gw.order(&self.owner, &[&hold]).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().expect("id").to_string()
    }

    async fn call(&self, method: &str, path: &str, who: Option<&str>, body: Option<Value>) -> u16 {
        let r = self.gw.send(method, path, who, body).await;
        assert!(r.headers.contains_key("x-request-id"), "{method} {path}");
        if r.status >= 400 {
            assert!(!r.code().is_empty(), "{method} {path}: problem+json expected, got {}", r.body);
        }
        r.status
    }

    /// The statuses for (anonymous, owner, other user, admin).
    async fn row(&self, method: &str, path: &str, body: Option<Value>) -> [u16; 4] {
        [
            self.call(method, path, None, body.clone()).await,
            self.call(method, path, Some(&self.owner), body.clone()).await,
            self.call(method, path, Some(&self.other), body.clone()).await,
            self.call(method, path, Some(&self.admin), body).await,
        ]
    }
}

#[tokio::test]
async fn every_route_answers_anonymous_owner_other_user_and_admin_as_the_contract_says() {
    let w = World::new().await;
    let p = &w.product;
    let mut covered = BTreeSet::new();
    // A route is its method and path template, as API Gateway names it.
    let mut check = |route: &str, got: [u16; 4], want: [u16; 4]| {
        assert_eq!(got, want, "{route}: (anonymous, owner, other user, admin)");
        covered.insert(route.to_string());
    };

    check("GET /api/products", w.row("GET", "/api/products?limit=1", None).await, [200; 4]);
    check("GET /api/products/{id}", w.row("GET", &format!("/api/products/{p}"), None).await, [200; 4]);
    check("GET /api/openapi.json", w.row("GET", "/api/openapi.json", None).await, [200; 4]);
    check("GET /api/docs", w.row("GET", "/api/docs", None).await, [200; 4]);
    check("GET /api/docs/{asset}", w.row("GET", "/api/docs/swagger-ui.css", None).await, [200; 4]);

    // Admin-only writes: customers (owner or not) are refused, by role.
    let new_product = || json!({"sku": unique("SKU"), "name": "Matrix", "price_cents": 100});
    let got = [
        w.call("POST", "/api/products", None, Some(new_product())).await,
        w.call("POST", "/api/products", Some(&w.owner), Some(new_product())).await,
        w.call("POST", "/api/products", Some(&w.other), Some(new_product())).await,
        w.call("POST", "/api/products", Some(&w.admin), Some(new_product())).await,
    ];
    check("POST /api/products", got, [401, 403, 403, 201]);
    let adjust = json!({"warehouse_id": "main", "delta": 1});
    check(
        "POST /api/products/{id}/stock",
        w.row("POST", &format!("/api/products/{p}/stock"), Some(adjust)).await,
        [401, 403, 403, 200],
    );

    check(
        "PATCH /api/products/{id}",
        w.row("PATCH", &format!("/api/products/{p}"), Some(json!({"name": "Renamed"}))).await,
        [401, 403, 403, 200],
    );

    // Any signed-in user may reserve.
    let hold = json!({"product_id": p, "quantity": 1});
    check(
        "POST /api/reservations",
        w.row("POST", "/api/reservations", Some(hold)).await,
        [401, 201, 201, 201],
    );

    let cart = json!({"items": [{"product_id": p, "quantity": 1}]});
    check(
        "POST /api/reservations/batch",
        w.row("POST", "/api/reservations/batch", Some(cart)).await,
        [401, 201, 201, 201],
    );

    let h = w.hold().await;
    check(
        "GET /api/reservations/{id}",
        w.row("GET", &format!("/api/reservations/{h}"), None).await,
        [401, 200, 404, 200],
    );
    // Extension: each caller extends a hold of its own (two extensions of one hold in the
    // same millisecond would meet the extension limit).
    let extend = |h: String| format!("/api/reservations/{h}/extend");
    let (h1, h2) = (w.hold().await, w.hold().await);
    let got = [
        w.call("POST", &extend(h1.clone()), None, None).await,
        w.call("POST", &extend(h1.clone()), Some(&w.owner), None).await,
        w.call("POST", &extend(h2.clone()), Some(&w.other), None).await,
        w.call("POST", &extend(h2), Some(&w.admin), None).await,
    ];
    check("POST /api/reservations/{id}/extend", got, [401, 200, 404, 200]);

    // Release: the other user's attempt leaves the hold active; the owner's release is
    // 200 and the admin's repeat a no-op 200.
    check(
        "DELETE /api/reservations/{id}",
        w.row("DELETE", &format!("/api/reservations/{h}"), None).await,
        [401, 200, 404, 200],
    );

    check("GET /api/orders", w.row("GET", "/api/orders?limit=1", None).await, [401, 200, 200, 200]);
    let by_user = "/api/orders?user_id=someone";
    assert_eq!(w.row("GET", by_user, None).await, [401, 403, 403, 200], "ListOrders with user_id");

    // Orders are made from one's own holds only: the other user and the admin get 404 for
    // the owner's hold, which stays convertible for its owner.
    let h = w.hold().await;
    let body = json!({"reservation_ids": [h]});
    let got = [
        w.call("POST", "/api/orders", None, Some(body.clone())).await,
        w.call("POST", "/api/orders", Some(&w.other), Some(body.clone())).await,
        w.call("POST", "/api/orders", Some(&w.admin), Some(body.clone())).await,
        w.call("POST", "/api/orders", Some(&w.owner), Some(body)).await,
    ];
    check("POST /api/orders", [got[0], got[3], got[1], got[2]], [401, 201, 404, 404]);

    let o = w.order().await;
    check(
        "GET /api/orders/{id}",
        w.row("GET", &format!("/api/orders/{o}"), None).await,
        [401, 200, 404, 200],
    );
    // A customer may only cancel; confirming is the admin's.
    let confirm = json!({"status": "confirmed"});
    check(
        "PATCH /api/orders/{id}",
        w.row("PATCH", &format!("/api/orders/{o}"), Some(confirm)).await,
        [401, 403, 403, 200],
    );
    let o = w.order().await;
    let cancel = json!({"status": "cancelled"});
    let got = [
        w.call("PATCH", &format!("/api/orders/{o}"), None, Some(cancel.clone())).await,
        w.call("PATCH", &format!("/api/orders/{o}"), Some(&w.other), Some(cancel.clone())).await,
        w.call("PATCH", &format!("/api/orders/{o}"), Some(&w.owner), Some(cancel.clone())).await,
        w.call("PATCH", &format!("/api/orders/{o}"), Some(&w.admin), Some(cancel)).await,
    ];
    // The admin's cancel comes after the owner's: the order is already cancelled (409).
    assert_eq!(got, [401, 404, 200, 409], "cancel: (anonymous, other user, owner, admin)");

    // Returns: made by admins of a delivered order, read by its owner and admins.
    let o = w.order().await;
    for status in ["confirmed", "processing", "shipped", "delivered"] {
        assert_eq!(w.gw.set_status(&w.admin, &o, status).await.status, 200, "{status}");
    }
    let back = json!({"items": [{"product_id": p, "quantity": 1, "restock": true}]});
    check(
        "POST /api/orders/{id}/returns",
        w.row("POST", &format!("/api/orders/{o}/returns"), Some(back)).await,
        [401, 403, 403, 201],
    );
    check(
        "GET /api/orders/{id}/returns",
        w.row("GET", &format!("/api/orders/{o}/returns"), None).await,
        [401, 200, 404, 200],
    );

    let audit = format!("/api/audit?entity_type=product&entity_id={p}");
    check("GET /api/audit", w.row("GET", &audit, None).await, [401, 403, 403, 200]);
    let movements = format!("/api/products/{p}/movements");
    check("GET /api/products/{id}/movements", w.row("GET", &movements, None).await, [401, 403, 403, 200]);
    let stock = format!("/api/products/{p}/stock");
    check("GET /api/products/{id}/stock", w.row("GET", &stock, None).await, [401, 403, 403, 200]);
    let reconciliation = format!("/api/products/{p}/reconciliation");
    check(
        "GET /api/products/{id}/reconciliation",
        w.row("GET", &reconciliation, None).await,
        [401, 403, 403, 200],
    );

    check("GET /api/events", w.row("GET", "/api/events?limit=1", None).await, [401, 403, 403, 200]);

    // Transfers are the admin's: each refused call leaves the transfer in transit, so the
    // admin's receive (or cancel) is the one that ends it.
    let move_one =
        json!({"product_id": p, "from_warehouse_id": "main", "to_warehouse_id": "east", "quantity": 1});
    check(
        "POST /api/transfers",
        w.row("POST", "/api/transfers", Some(move_one.clone())).await,
        [401, 403, 403, 201],
    );
    let admin = w.admin.clone();
    let transfer = || async {
        let r = w.gw.post("/api/transfers", Some(&admin), move_one.clone()).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().expect("id").to_string()
    };
    check("GET /api/transfers", w.row("GET", "/api/transfers?limit=1", None).await, [401, 403, 403, 200]);
    let t = transfer().await;
    check(
        "GET /api/transfers/{id}",
        w.row("GET", &format!("/api/transfers/{t}"), None).await,
        [401, 403, 403, 200],
    );
    check(
        "POST /api/transfers/{id}/receive",
        w.row("POST", &format!("/api/transfers/{t}/receive"), None).await,
        [401, 403, 403, 200],
    );
    let t = transfer().await;
    check(
        "POST /api/transfers/{id}/cancel",
        w.row("POST", &format!("/api/transfers/{t}/cancel"), None).await,
        [401, 403, 403, 200],
    );

    let all: BTreeSet<String> = routes().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(covered, all, "every route is in the matrix");
}

/// Object-level authorization: another user's id reads exactly like an unknown id, on
/// every route that takes one, and the refused call changes nothing.
#[tokio::test]
async fn another_users_ids_are_indistinguishable_from_unknown_ids_and_stay_untouched() {
    let w = World::new().await;
    let hold = w.hold().await;
    let order = w.order().await;
    let missing = ulid::Ulid::new().to_string();
    let cases: [(&str, String, String, Option<Value>); 5] = [
        ("GET", format!("/api/reservations/{hold}"), format!("/api/reservations/{missing}"), None),
        ("GET", format!("/api/orders/{order}/returns"), format!("/api/orders/{missing}/returns"), None),
        ("DELETE", format!("/api/reservations/{hold}"), format!("/api/reservations/{missing}"), None),
        ("GET", format!("/api/orders/{order}"), format!("/api/orders/{missing}"), None),
        (
            "PATCH",
            format!("/api/orders/{order}"),
            format!("/api/orders/{missing}"),
            Some(json!({"status": "cancelled"})),
        ),
    ];
    for (method, theirs, unknown, body) in cases {
        let a = w.gw.send(method, &theirs, Some(&w.other), body.clone()).await;
        let b = w.gw.send(method, &unknown, Some(&w.other), body).await;
        assert_eq!(a.status, 404, "{method} {theirs}");
        assert_eq!(shape(&a), shape(&b), "{method}: another user's id must read like an unknown one");
    }
    let theirs = w.gw.post("/api/orders", Some(&w.other), json!({"reservation_ids": [hold]})).await;
    let unknown = w.gw.post("/api/orders", Some(&w.other), json!({"reservation_ids": [missing]})).await;
    assert_eq!(shape(&theirs), shape(&unknown), "POST /api/orders with another user's hold");

    let r = w.gw.get(&format!("/api/reservations/{hold}"), Some(&w.owner)).await;
    assert_eq!(r.body["status"], "active", "the hold is untouched");
    let r = w.gw.get(&format!("/api/orders/{order}"), Some(&w.owner)).await;
    assert_eq!(r.body["status"], "pending", "the order is untouched");
    let list = w.gw.get("/api/orders?limit=100", Some(&w.other)).await;
    assert_eq!(list.body["items"], json!([]), "the other user sees none of the owner's orders");
}
