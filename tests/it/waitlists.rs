//! Waitlists, the store and service side (the routes come with the offer job): joining a
//! queue keeps its units from buyers who did not wait, in join order; leaving gives them
//! back; a join is refused while a hold could be filled, and counts against the caps as
//! a hold does.

use futures::future::join_all;
use serde_json::json;
use shared::domain::caller::Caller;
use shared::domain::ids::ProductId;
use shared::domain::waitlist::{NewEntry, WaitlistStatus};
use shared::domain::DomainError;
use shared::service::Created;
use stockhold_tests::*;

fn buyer() -> Caller {
    Caller { user_id: unique("waiter"), is_admin: false }
}

fn want(quantity: i64, warehouse: Option<&str>) -> NewEntry {
    let mut body = json!({ "quantity": quantity });
    if let Some(w) = warehouse {
        body["warehouse_id"] = json!(w);
    }
    NewEntry::from_json(body.as_object().expect("object")).expect("valid")
}

async fn join(
    gw: &TestGateway,
    who: &Caller,
    product: &str,
    q: i64,
) -> Result<shared::domain::waitlist::Entry, DomainError> {
    match gw.app.join_waitlist(who, &id::<ProductId>(product), want(q, None), None).await? {
        Created::New(e) => Ok(e),
        Created::Replay(_) => panic!("no key, no replay"),
    }
}

async fn waiting(gw: &TestGateway, product: &str) -> i64 {
    let r = gw.get(&format!("/api/products/{product}"), None).await;
    r.body["stock"][0]["waiting"].as_i64().expect("waiting")
}

#[tokio::test]
async fn a_queue_keeps_its_units_from_buyers_who_did_not_wait_and_leaving_gives_them_back() {
    let (gw, product, alice) = shop(2).await;
    let held = gw.reserve(&alice, &product, 2).await;
    let (bob, carol) = (buyer(), buyer());
    let b = join(&gw, &bob, &product, 2).await.expect("sold out: bob may wait");
    assert_eq!((b.status, b.quantity, b.warehouse_id.as_str()), (WaitlistStatus::Waiting, 2, "main"));
    let c = join(&gw, &carol, &product, 1).await.expect("carol may wait");
    assert_eq!(waiting(&gw, &product).await, 3);
    let placed = |who: Caller, id: String| {
        let gw = &gw;
        async move { gw.app.get_waitlist_entry(&who, &id).await.expect("read").position }
    };
    assert_eq!(placed(bob.clone(), b.id.clone()).await, Some(1));
    assert_eq!(placed(carol.clone(), c.id.clone()).await, Some(2));
    assert!(matches!(gw.app.get_waitlist_entry(&buyer(), &b.id).await, Err(DomainError::NotFound(_))));

    // Bob leaves: his units are no longer kept, twice is once, carol moves up.
    let left = gw.app.leave_waitlist(&bob, &b.id).await.expect("leave");
    assert_eq!((left.status, left.ev), (WaitlistStatus::Left, 2));
    let again = gw.app.leave_waitlist(&bob, &b.id).await.expect("leave again");
    assert_eq!(again.status, WaitlistStatus::Left);
    assert_eq!(waiting(&gw, &product).await, 1);
    assert_eq!(placed(carol.clone(), c.id.clone()).await, Some(1));
    let admin = Caller { user_id: "admin-waits".into(), is_admin: true };
    let queue = gw
        .app
        .waitlist_queue(
            &admin,
            &id(&product),
            &shared::domain::stock::WarehouseId::parse("main").expect("id"),
            10,
            None,
        )
        .await
        .expect("queue");
    assert_eq!(queue.items.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), [c.id.as_str()]);

    // Alice's two come back: one is carol's, one anyone's.
    let r = gw.send("DELETE", &format!("/api/reservations/{held}"), Some(&alice), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let dave = token(&unique("dave"), false);
    let r = gw.post("/api/reservations", Some(&dave), json!({"product_id": product, "quantity": 2})).await;
    assert_eq!((r.status, r.body["available"].clone()), (409, json!(1)), "{}", r.body);
    assert_eq!(
        gw.post("/api/reservations", Some(&dave), json!({"product_id": product, "quantity": 1})).await.status,
        201
    );
    assert_eq!(gw.stock_of(&product, "main").await, (2, 1, 1), "carol's unit still there");
}

#[tokio::test]
async fn a_join_is_refused_while_a_hold_could_be_filled_and_counts_against_the_caps() {
    let gw = gateway().await;
    let admin = token("admin-waits", true);
    let body = json!({"sku": unique("WL"), "name": "Limited", "price_cents": 100, "stock": {"main": 3},
                      "max_per_customer": 2});
    let r = gw.post("/api/products", Some(&admin), body).await;
    let product = r.body["id"].as_str().expect("id").to_string();
    let erin = buyer();
    assert_eq!(join(&gw, &erin, &product, 2).await, Err(DomainError::StockAvailable { available: 3 }));
    let other = token(&unique("frank"), false);
    gw.reserve(&other, &product, 2).await;
    assert!(join(&gw, &erin, &product, 2).await.is_ok(), "2 wanted, 1 there");
    assert_eq!(waiting(&gw, &product).await, 2);
    let more = join(&gw, &erin, &product, 1).await;
    assert!(matches!(more, Err(DomainError::PurchaseLimitReached { limit: 2, remaining: 0 })), "{more:?}");

    let two = gw.product(json!({"main": 0, "east": 0})).await;
    let r = gw.app.join_waitlist(&erin, &id(&two), want(1, None), None).await;
    assert!(matches!(r, Err(DomainError::Validation(_))), "which warehouse? {r:?}");
    let r = gw.app.join_waitlist(&erin, &id(&two), want(1, Some("west")), None).await;
    assert!(matches!(r, Err(DomainError::NotFound("warehouse"))), "{r:?}");
    let bucketed = gw.bucketed_product(json!({"main": 0}), 2).await;
    assert!(matches!(join(&gw, &erin, &bucketed, 1).await, Err(DomainError::Validation(_))));
    let r =
        gw.send("PATCH", &format!("/api/products/{two}"), Some(&admin), Some(json!({"active": false}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = gw.app.join_waitlist(&erin, &id(&two), want(1, Some("east")), None).await;
    assert!(matches!(r, Err(DomainError::ProductInactive)), "{r:?}");
}

/// Twenty buyers join a sold-out warehouse at once: every join applies, the queue asks for
/// all their units, and their places are 1..=20 in join (id) order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_racing_joins_all_queue_each_in_its_own_place() {
    let (gw, product, _) = shop(0).await;
    let callers: Vec<Caller> = (0..20).map(|_| buyer()).collect();
    let joined = join_all(callers.iter().map(|c| join(&gw, c, &product, 1))).await;
    let mut entries: Vec<_> = joined.into_iter().map(|r| r.expect("joins")).collect();
    assert_eq!(waiting(&gw, &product).await, 20);
    entries.sort_by(|a, b| a.id.cmp(&b.id));
    for (i, e) in entries.iter().enumerate() {
        let who = callers.iter().find(|c| c.user_id == e.user_id).expect("caller");
        let placed = gw.app.get_waitlist_entry(who, &e.id).await.expect("read");
        assert_eq!(placed.position, Some(i as i64 + 1));
    }
}

/// The contract's walk, with the offer job run by hand where the stream will run it:
/// two units back go to the first two waiters as holds; the third, wanting two, is not
/// jumped by a later waiter wanting one, and the unit it waits for stays with the queue
/// until a restock completes it.
#[tokio::test]
async fn units_coming_back_become_holds_of_the_waiters_in_join_order_never_jumping_one() {
    let (gw, product, alice) = shop(2).await;
    let held = gw.reserve(&alice, &product, 2).await;
    let (bob, carol, dave, erin) = (buyer(), buyer(), buyer(), buyer());
    let b = join(&gw, &bob, &product, 1).await.expect("join");
    let c = join(&gw, &carol, &product, 1).await.expect("join");
    let d = join(&gw, &dave, &product, 2).await.expect("join");
    let e = join(&gw, &erin, &product, 1).await.expect("join");
    let main = shared::domain::stock::WarehouseId::parse("main").expect("id");
    assert_eq!(
        gw.app.offer_waiting(&product, &main).await.expect("run"),
        Default::default(),
        "nothing back yet"
    );

    let r = gw.send("DELETE", &format!("/api/reservations/{held}"), Some(&alice), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let run = gw.app.offer_waiting(&product, &main).await.expect("run");
    assert_eq!(
        run.offered.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        [b.id.as_str(), c.id.as_str()]
    );
    let bobs = gw.app.get_waitlist_entry(&bob, &b.id).await.expect("read");
    assert_eq!((bobs.entry.status, bobs.position), (WaitlistStatus::Offered, None));
    assert_eq!(bobs.entry.reservation_id.as_deref(), Some(run.offered[0].1.as_str()));
    let hold =
        gw.get(&format!("/api/reservations/{}", run.offered[0].1), Some(&token(&bob.user_id, false))).await;
    assert_eq!(
        (hold.status, hold.body["status"].clone(), hold.body["quantity"].clone()),
        (200, json!("active"), json!(1))
    );
    let r = gw.app.leave_waitlist(&bob, &b.id).await;
    assert_eq!(r, Err(DomainError::WaitlistEntryNotWaiting { status: "offered" }));
    assert_eq!(gw.stock_of(&product, "main").await, (2, 2, 0));
    assert_eq!(waiting(&gw, &product).await, 3, "dave's two and erin's one");

    // One unit back: dave needs two, so neither he nor erin behind him gets it, nor a
    // buyer who did not wait.
    let admin = token("admin-waits", true);
    let stock_path = format!("/api/products/{product}/stock");
    let add = |n: i64| gw.post(&stock_path, Some(&admin), json!({"warehouse_id": "main", "delta": n}));
    assert_eq!(add(1).await.status, 200);
    assert_eq!(gw.app.offer_waiting(&product, &main).await.expect("run"), Default::default());
    let frank = token(&unique("frank"), false);
    let r = gw.post("/api/reservations", Some(&frank), json!({"product_id": product, "quantity": 1})).await;
    assert_eq!((r.status, r.body["available"].clone()), (409, json!(0)), "{}", r.body);
    // A second unit completes dave's, then erin's comes.
    assert_eq!(add(2).await.status, 200);
    let run = gw.app.offer_waiting(&product, &main).await.expect("run");
    assert_eq!(
        run.offered.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        [d.id.as_str(), e.id.as_str()]
    );
    assert_eq!(gw.stock_of(&product, "main").await, (5, 5, 0));
    assert_eq!(waiting(&gw, &product).await, 0);
    assert_eq!(
        gw.app.offer_waiting(&product, &main).await.expect("run"),
        Default::default(),
        "a second run offers nothing twice"
    );
}

/// An entry's life is in the audit log and the event feed: `WaitlistJoined`, then
/// `WaitlistOffered` (numbered 1, 2, `data` the entry with its `reservation_id`) or
/// `WaitlistLeft`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entrys_life_is_audited_and_published_as_events_of_the_entry() {
    let app = app_on_fresh_table().await;
    start_audit_poller(&app).await;
    let gw = gateway_for(app).await;
    let product = gw.product(json!({"main": 1})).await;
    let alice = token(&unique("alice"), false);
    let held = gw.reserve(&alice, &product, 1).await;
    let (bob, carol) = (buyer(), buyer());
    let b = join(&gw, &bob, &product, 1).await.expect("join");
    let c = join(&gw, &carol, &product, 1).await.expect("join");
    gw.app.leave_waitlist(&carol, &c.id).await.expect("leave");
    let r = gw.send("DELETE", &format!("/api/reservations/{held}"), Some(&alice), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let main = shared::domain::stock::WarehouseId::parse("main").expect("id");
    let run = gw.app.offer_waiting(&product, &main).await.expect("run");
    assert_eq!(run.offered.len(), 1);

    let entries = audit_entries(&gw, "waitlist_entry", &b.id, 2).await;
    assert_eq!(entries.len(), 2, "{entries:#?}");
    assert_eq!(entries[1]["changes"]["status"], json!({"old": "waiting", "new": "offered"}));
    assert_eq!(entries[1]["actor"], "system");
    let got = events_of(&gw, "waitlist_entry", &b.id, 2).await;
    let kinds: Vec<&str> = got.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds, ["WaitlistJoined", "WaitlistOffered"], "{got:#?}");
    assert_eq!(got.iter().filter_map(|e| e["sequence"].as_u64()).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(got[1]["data"]["reservation_id"].as_str(), Some(run.offered[0].1.as_str()));
    assert_eq!(
        (got[1]["data"]["status"].clone(), got[1]["data"]["position"].clone()),
        (json!("offered"), json!(null))
    );
    let got = events_of(&gw, "waitlist_entry", &c.id, 2).await;
    let kinds: Vec<&str> = got.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(kinds, ["WaitlistJoined", "WaitlistLeft"], "{got:#?}");
}
