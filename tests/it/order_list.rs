//! Order lists: every page walk equals the reference answer, cursors cannot be forged or
//! replayed, and scopes hold.

use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use serde_json::json;
use shared::domain::caller::Caller;
use shared::domain::order::{Order, OrderStatus};
use shared::domain::order_query::{OrderQuery, SortOrder};
use std::collections::{BTreeMap, BTreeSet};
use stockhold_tests::*;

fn order(user: &str, status: OrderStatus, total: i64, created: DateTime<Utc>) -> Order {
    one_line_order(user, status, (1, total), created)
}

#[derive(Debug, Clone)]
struct Q {
    /// None: admin, all users; Some((i, admin)): user i, as themselves or via an admin's user_id.
    scope: Option<(usize, bool)>,
    statuses: u8,
    from: Option<i64>,
    to: Option<i64>,
    min: Option<i64>,
    max: Option<i64>,
    sort: usize,
    limit: usize,
}

const SORTS: [SortOrder; 4] =
    [SortOrder::Newest, SortOrder::Oldest, SortOrder::HighestValue, SortOrder::LowestValue];

fn query_strategy() -> impl Strategy<Value = Q> {
    (
        prop_oneof![Just(None), (0..3usize, any::<bool>()).prop_map(Some)],
        0u8..64,
        proptest::option::of(0i64..120),
        proptest::option::of(0i64..120),
        proptest::option::of(0i64..12),
        proptest::option::of(0i64..12),
        0..4usize,
        1..7usize,
    )
        .prop_map(|(scope, statuses, from, to, min, max, sort, limit)| Q {
            scope,
            statuses,
            from,
            to,
            min: min.map(|m| m * 100),
            max: max.map(|m| m * 100),
            sort,
            limit,
        })
}

fn orders_strategy() -> impl Strategy<Value = Vec<(usize, usize, i64, i64)>> {
    // Few distinct totals and times, so ties (broken by id) are common.
    proptest::collection::vec((0..3usize, 0..6usize, 0i64..12, 0i64..100), 1..40)
}

fn reference(orders: &[Order], users: &[String], q: &Q, base: DateTime<Utc>) -> Vec<String> {
    let statuses: BTreeSet<OrderStatus> = OrderStatus::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| q.statuses & (1 << i) != 0)
        .map(|(_, s)| *s)
        .collect();
    let mut hits: Vec<&Order> = orders
        .iter()
        .filter(|o| q.scope.is_none_or(|(u, _)| o.user_id == users[u]))
        .filter(|o| statuses.is_empty() || statuses.contains(&o.status))
        .filter(|o| q.from.is_none_or(|f| o.created_at >= base + Duration::seconds(f)))
        .filter(|o| q.to.is_none_or(|t| o.created_at < base + Duration::seconds(t)))
        .filter(|o| q.min.is_none_or(|m| o.total_cents() >= m))
        .filter(|o| q.max.is_none_or(|m| o.total_cents() <= m))
        .collect();
    let sort = SORTS[q.sort];
    hits.sort_by(|a, b| {
        // The sorted dimension, then the id, both in the sort's direction.
        let key = |o: &Order| {
            let primary = if sort.by_value() { o.total_cents() } else { o.created_at.timestamp_millis() };
            (primary, o.id.clone())
        };
        if sort.descending() {
            key(b).cmp(&key(a))
        } else {
            key(a).cmp(&key(b))
        }
    });
    hits.iter().map(|o| o.id.clone()).collect()
}

fn params(q: &Q, users: &[String], base: DateTime<Utc>) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    let statuses: Vec<&str> = OrderStatus::ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| q.statuses & (1 << i) != 0)
        .map(|(_, s)| s.as_str())
        .collect();
    if !statuses.is_empty() {
        p.insert("status".into(), statuses.join(","));
    }
    let t = |s: i64| shared::domain::time::format_time(base + Duration::seconds(s));
    if let Some(f) = q.from {
        p.insert("created_from".into(), t(f));
    }
    if let Some(to) = q.to {
        p.insert("created_to".into(), t(to));
    }
    if let Some(m) = q.min {
        p.insert("min_total_cents".into(), m.to_string());
    }
    if let Some(m) = q.max {
        p.insert("max_total_cents".into(), m.to_string());
    }
    p.insert("sort".into(), SORTS[q.sort].as_str().into());
    if let Some((u, true)) = q.scope {
        p.insert("user_id".into(), users[u].clone());
    }
    p
}

#[test]
fn walking_every_page_of_any_query_gives_exactly_the_reference_answer() {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let config = ProptestConfig { cases: 10, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(specs in orders_strategy(), queries in proptest::collection::vec(query_strategy(), 4))| {
        rt.block_on(async {
            let app = app_on_fresh_table().await;
            let list = as_function(&app, "list");
            let users: Vec<String> = (0..3).map(|i| unique(&format!("user{i}"))).collect();
            let base = Utc::now() - Duration::days(3);
            let orders: Vec<Order> = specs
                .iter()
                .map(|&(u, s, total, t)| order(&users[u], OrderStatus::ALL[s], total * 100, base + Duration::seconds(t)))
                .collect();
            import_orders(&app, &orders).await;
            for q in &queries {
                let valid_range = !matches!((q.from, q.to), (Some(f), Some(t)) if f >= t)
                    && !matches!((q.min, q.max), (Some(a), Some(b)) if a > b);
                let parsed = OrderQuery::from_params(&params(q, &users, base));
                if !valid_range {
                    prop_assert!(parsed.is_err(), "{q:?} must be refused");
                    continue;
                }
                let query = parsed.expect("valid query");
                let caller = match q.scope {
                    Some((u, false)) => Caller { user_id: users[u].clone(), is_admin: false },
                    _ => Caller { user_id: "admin".into(), is_admin: true },
                };
                let mut got = Vec::new();
                let mut cursor: Option<String> = None;
                loop {
                    let page = list.list_orders(&caller, query.clone(), q.limit, cursor.as_deref()).await.expect("page");
                    got.extend(page.items.iter().map(|o| o.id.clone()));
                    match page.next_cursor {
                        Some(c) => {
                            prop_assert_eq!(page.items.len(), q.limit, "a page before the last is full: {:?}", q);
                            cursor = Some(c);
                        }
                        None => break,
                    }
                    prop_assert!(got.len() <= orders.len(), "no endless walk");
                }
                prop_assert_eq!(&got, &reference(&orders, &users, q, base), "{:?}", q);
            }
            Ok(())
        })?;
    });
}

async fn seeded_user(gw: &TestGateway, n: usize) -> String {
    let user = unique("lister");
    let base = Utc::now() - Duration::hours(1);
    let orders: Vec<Order> = (0..n)
        .map(|i| {
            order(&user, OrderStatus::ALL[i % 6], (i as i64 % 4) * 100, base + Duration::seconds(i as i64))
        })
        .collect();
    import_orders(&gw.app, &orders).await;
    user
}

#[tokio::test]
async fn customers_see_only_their_orders_and_admins_pick_a_user_with_user_id() {
    let gw = gateway().await;
    let alice = seeded_user(&gw, 5).await;
    let bob = seeded_user(&gw, 3).await;
    let r = gw.get("/api/orders?limit=100", Some(&token(&alice, false))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let items = r.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 5);
    assert!(items.iter().all(|o| o["user_id"] == alice.as_str()));
    assert_eq!(r.body["next_cursor"], json!(null));
    let r = gw.get(&format!("/api/orders?user_id={bob}"), Some(&token("root", true))).await;
    assert_eq!(r.body["items"].as_array().expect("items").len(), 3);
    let r = gw.get(&format!("/api/orders?user_id={bob}"), Some(&token(&alice, false))).await;
    assert_eq!((r.status, r.code()), (403, "forbidden"));
    let r = gw.get(&format!("/api/orders?user_id={bob}&status=lost"), Some(&token(&alice, false))).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"), "validation before role");
    for q in [
        "created_from=2026-01-02T00:00:00Z&created_to=2026-01-01T00:00:00Z",
        "sort=best",
        "page=2",
        "limit=0",
        "status=pending,",
    ] {
        let r = gw.get(&format!("/api/orders?{q}"), Some(&token(&alice, false))).await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{q}");
    }
    let r = gw.get("/api/orders", None).await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn forged_truncated_foreign_and_replayed_cursors_are_400_and_leak_nothing() {
    let gw = gateway().await;
    let alice = seeded_user(&gw, 6).await;
    let t = token(&alice, false);
    let first = gw.get("/api/orders?limit=2&sort=oldest", Some(&t)).await;
    let cursor = first.body["next_cursor"].as_str().expect("cursor").to_string();
    let ok = gw.get(&format!("/api/orders?limit=2&sort=oldest&cursor={cursor}"), Some(&t)).await;
    assert_eq!(ok.status, 200);
    let bad = |path: String, who: String| {
        let gw = &gw;
        async move {
            let r = gw.get(&path, Some(&who)).await;
            assert_eq!((r.status, r.code()), (400, "invalid_cursor"), "{path}");
        }
    };
    for i in 0..cursor.len() {
        let mut flipped = cursor.clone().into_bytes();
        flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        if flipped != cursor {
            bad(format!("/api/orders?limit=2&sort=oldest&cursor={flipped}"), t.clone()).await;
        }
    }
    for cut in [1, cursor.len() / 2, cursor.len() - 1] {
        bad(format!("/api/orders?limit=2&sort=oldest&cursor={}", &cursor[..cut]), t.clone()).await;
    }
    let mallory = token(&unique("mallory"), false);
    bad(format!("/api/orders?limit=2&sort=oldest&cursor={cursor}"), mallory).await;
    bad(format!("/api/orders?limit=2&sort=newest&cursor={cursor}"), t.clone()).await;
    bad(format!("/api/orders?limit=2&sort=oldest&status=pending&cursor={cursor}"), t.clone()).await;
    bad(format!("/api/orders?limit=2&sort=oldest&user_id={alice}&cursor={cursor}"), token("root", true))
        .await;
    // A product-list cursor is not an order-list cursor either way.
    let products = gw.get("/api/products?limit=1", None).await;
    if let Some(pc) = products.body["next_cursor"].as_str() {
        bad(format!("/api/orders?cursor={pc}"), t.clone()).await;
    }
    // The limit may change between pages.
    let wider = gw.get(&format!("/api/orders?limit=3&sort=oldest&cursor={cursor}"), Some(&t)).await;
    assert_eq!(wider.status, 200);
}

#[tokio::test]
async fn orders_sort_by_value_for_a_customer_and_for_an_admin() {
    let gw = gateway_for(app_on_fresh_table().await).await;
    let product = gw.product(json!({"main": 20})).await;
    let alice = unique("alice");
    let t = token(&alice, false);
    for q in [2, 5, 1] {
        let hold = gw.reserve(&t, &product, q).await;
        assert_eq!(gw.order(&t, &[&hold]).await.status, 201);
    }
    let totals = |r: &Reply| -> Vec<i64> {
        r.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|o| o["total_cents"].as_i64().unwrap_or(-1))
            .collect()
    };
    let mine = gw.get("/api/orders?sort=highest_value", Some(&t)).await;
    assert_eq!((mine.status, totals(&mine)), (200, vec![5 * 1999, 2 * 1999, 1999]), "{}", mine.body);
    let all = gw.get("/api/orders?sort=lowest_value", Some(&token("root", true))).await;
    assert_eq!((all.status, totals(&all)), (200, vec![1999, 2 * 1999, 5 * 1999]), "{}", all.body);
}
