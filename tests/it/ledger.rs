//! The ledger's consumer (`App::record_movements`, which the `audit` function and the
//! local stream poller run on each batch) against DynamoDB Local, fed writes as the
//! table's stream shows them: redelivery after a crash, two deliveries racing for one
//! row's head, an unreadable head, and the cost of a filtered page over a long history.

use serde_json::{json, Value};
use shared::domain::movement::{Cause, Counts, Movement, Observed, Reason, RowKey};
use shared::store::ledger::{MovementRange, FILTERED_READ};
use std::sync::Arc;
use stockhold_tests::*;

/// A row no product owns: the consumer needs only its writes.
fn new_row() -> RowKey {
    RowKey { product_id: unique("ledger"), warehouse_id: "main".into(), bucket: 0 }
}

const T0: u64 = 1_800_000_000_000;

/// The `n`th write of `row` (stream position `n`), moving its counts by `change` with
/// `reason`, from `before`.
fn write(row: &RowKey, n: u64, before: Counts, change: (i64, i64), reason: Reason) -> Observed {
    let after = Counts { on_hand: before.on_hand + change.0, reserved: before.reserved + change.1 };
    let at = chrono::DateTime::from_timestamp_millis(T0 as i64 + n as i64).expect("time");
    Observed {
        row: row.clone(),
        position: format!("{n:040}"),
        event_id: format!("{}-{n}", row.product_id),
        at,
        before,
        after,
        stamp: Some((ulid::Ulid::from_parts(T0 + n, u128::from(n)).to_string(), Cause::new(reason))),
        stamped_before: n > 1,
        opened: n == 1,
        actor: "tester".into(),
    }
}

/// A row's writes, each from the counts the one before left.
fn history(row: &RowKey, changes: &[((i64, i64), Reason)]) -> Vec<Observed> {
    let mut counts = Counts::default();
    changes
        .iter()
        .enumerate()
        .map(|(i, (change, reason))| {
            let w = write(row, i as u64 + 1, counts, *change, *reason);
            counts = w.after;
            w
        })
        .collect()
}

/// Every movement of `row`, oldest first.
async fn movements_of(app: &shared::service::App, row: &RowKey) -> Vec<Movement> {
    let rows = [row.clone()];
    let range = MovementRange { rows: &rows, from: None, to: None, reasons: &[] };
    let page = app.store.ledger.page(&range, None, 1000).await.expect("page");
    assert!(page.next.is_none());
    page.movements.into_iter().map(|(_, m)| m).collect()
}

fn seqs_and_reasons(ms: &[Movement]) -> Vec<(u64, Reason)> {
    ms.iter().map(|m| (m.seq, m.reason)).collect()
}

#[tokio::test]
async fn a_batch_delivered_again_after_its_movements_were_written_records_nothing_twice() {
    let app = app().await;
    let row = new_row();
    let w = history(&row, &[((10, 0), Reason::Received), ((0, 2), Reason::Hold), ((0, -2), Reason::Release)]);
    let first = app.record_movements(&w[..2], &shared::jobs::stock_events).await.expect("record");
    assert_eq!((first.written, first.failed.len()), (2, 0));
    // The process died after its writes, before the stream's checkpoint: the same records
    // come again, with the next one.
    let again = app.record_movements(&w, &shared::jobs::stock_events).await.expect("record");
    assert_eq!((again.written, again.failed.len()), (1, 0));
    let ms = movements_of(&app, &row).await;
    assert_eq!(seqs_and_reasons(&ms), [(1, Reason::Received), (2, Reason::Hold), (3, Reason::Release)]);
    let ids: std::collections::BTreeSet<&str> = ms.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "each write's movement once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deliveries_racing_for_a_rows_head_leave_one_numbering_without_repeat_or_gap() {
    let app = Arc::new(app().await);
    // Per row: the hold is in one delivery, the release in another (its batch lost the
    // hold), both planned on the same head. Whichever wins, the other's plan is given up
    // whole; delivered again, it records what is still missing.
    let rows: Vec<RowKey> = (0..8).map(|_| new_row()).collect();
    let mut races = Vec::new();
    for row in &rows {
        let w =
            history(row, &[((10, 0), Reason::Received), ((0, 2), Reason::Hold), ((0, -2), Reason::Release)]);
        assert_eq!(
            app.record_movements(&w[..1], &shared::jobs::stock_events).await.expect("record").written,
            1
        );
        let (a, b) = (app.clone(), app.clone());
        let (hold, release) = (w[1].clone(), w[2].clone());
        races.push(tokio::spawn(async move {
            let (x, y) = tokio::join!(
                a.record_movements(std::slice::from_ref(&hold), &shared::jobs::stock_events),
                b.record_movements(std::slice::from_ref(&release), &shared::jobs::stock_events)
            );
            let (x, y) = (x.expect("record"), y.expect("record"));
            // The stream delivers a failed record again (and the hold, in order, before the release).
            for _ in 0..5 {
                let again: Vec<Observed> = [(&x, &hold), (&y, &release)]
                    .iter()
                    .filter(|(r, _)| !r.failed.is_empty())
                    .map(|(_, w)| (*w).clone())
                    .collect();
                if again.is_empty()
                    || a.record_movements(&again, &shared::jobs::stock_events)
                        .await
                        .expect("record")
                        .failed
                        .is_empty()
                {
                    break;
                }
            }
        }));
    }
    for r in races {
        r.await.expect("race");
    }
    for row in &rows {
        let ms = movements_of(&app, row).await;
        let got = seqs_and_reasons(&ms);
        assert!(
            got == [(1, Reason::Received), (2, Reason::Hold), (3, Reason::Release)]
                || got == [(1, Reason::Received), (2, Reason::Unknown), (3, Reason::Release)],
            "one numbering, whoever won: {got:?}"
        );
        let last = ms.last().expect("movements");
        assert_eq!((last.on_hand, last.reserved), (10, 0));
    }
}

#[tokio::test]
async fn a_head_that_does_not_decode_sets_its_rows_writes_aside_and_the_other_rows_go_on() {
    let app = app().await;
    let (bad, good) = (new_row(), new_row());
    put_unreadable_ledger_head(&app, &bad).await;
    let mut batch = history(&bad, &[((5, 0), Reason::Received)]);
    batch.extend(history(&good, &[((7, 0), Reason::Received), ((0, 1), Reason::Hold)]));
    let r = app.record_movements(&batch, &shared::jobs::stock_events).await.expect("the batch goes on");
    assert_eq!(r.written, 2);
    assert!(r.failed.is_empty(), "nothing to retry: a retry cannot mend the head");
    assert_eq!(r.set_aside.into_iter().collect::<Vec<_>>(), std::slice::from_ref(&bad));
    assert_eq!(
        seqs_and_reasons(&movements_of(&app, &good).await),
        [(1, Reason::Received), (2, Reason::Hold)]
    );
    assert!(movements_of(&app, &bad).await.is_empty());
}

#[tokio::test]
async fn a_row_with_more_movements_than_one_transaction_holds_records_them_all_in_order() {
    let app = app().await;
    let row = new_row();
    let changes: Vec<((i64, i64), Reason)> = std::iter::once(((500, 0), Reason::Received))
        .chain((0..120).map(|i| if i % 2 == 0 { ((0, 1), Reason::Hold) } else { ((0, -1), Reason::Release) }))
        .collect();
    let w = history(&row, &changes);
    let r = app.record_movements(&w, &shared::jobs::stock_events).await.expect("record");
    assert_eq!((r.written, r.failed.len()), (121, 0));
    let ms = movements_of(&app, &row).await;
    assert_eq!(ms.iter().map(|m| m.seq).collect::<Vec<_>>(), (1..=121).collect::<Vec<u64>>());
}

#[tokio::test]
async fn a_reason_filter_over_a_long_history_reads_a_bounded_amount_per_page_and_pages_on() {
    let gw = gateway().await;
    let product = gw.product(json!({"main": 5})).await;
    let row = RowKey { product_id: product.clone(), warehouse_id: "main".into(), bucket: 0 };
    // 5,000 holds and releases (seeded with the store's batch writer, after the product's
    // own `received`), seven of them damaged units instead.
    let t = chrono::Utc::now() - chrono::Duration::days(1);
    let seeded: Vec<Movement> = (0..5_000u64)
        .map(|i| {
            let reason = if i % 700 == 350 {
                Reason::Damaged
            } else if i % 2 == 0 {
                Reason::Hold
            } else {
                Reason::Release
            };
            Movement {
                id: format!("seed-{i}"),
                product_id: product.clone(),
                warehouse_id: "main".into(),
                bucket: 0,
                seq: 1_000 + i,
                at: t + chrono::Duration::milliseconds(i as i64),
                reason,
                reference: None,
                actor: "seed".into(),
                note: None,
                on_hand_change: 0,
                reserved_change: 0,
                on_hand: 5,
                reserved: 0,
                available: 5,
            }
        })
        .collect();
    gw.app.store.ledger.put_movements(&seeded).await.expect("seed");

    // One page with a reason no movement has: one Query, at most FILTERED_READ read.
    let rows = [row];
    let none = [Reason::Counted];
    let range = MovementRange { rows: &rows, from: None, to: None, reasons: &none };
    let before = gw.app.store.metrics().snapshot();
    let page = gw.app.store.ledger.page(&range, None, 10).await.expect("page");
    let spent = gw.app.store.metrics().snapshot() - before;
    assert_eq!((spent.requests, page.movements.len()), (1, 0));
    assert!(spent.scanned <= FILTERED_READ as u64, "{spent:?}");
    assert!(page.next.is_some(), "an empty page that goes on");

    // Through the API: the pages of `damaged` hold each of the seven once, in order, and
    // the walk ends.
    let admin = token("auditor", true);
    let (mut found, mut cursor, mut pages) = (Vec::<Value>::new(), None::<String>, 0);
    loop {
        let after = cursor.as_deref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let r = gw
            .get(&format!("/api/products/{product}/movements?reason=damaged&limit=3{after}"), Some(&admin))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        found.extend(r.body["items"].as_array().expect("items").iter().cloned());
        pages += 1;
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 100, "the walk ends");
    }
    let ids: Vec<&str> = found.iter().filter_map(|m| m["id"].as_str()).collect();
    let expected: Vec<String> = (0..5_000).filter(|i| i % 700 == 350).map(|i| format!("seed-{i}")).collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(pages >= 5_000 / FILTERED_READ, "{pages} pages: each read a bounded stretch");
}
