#[macro_use]
mod support;

use std::collections::BTreeSet;

use chrono::{Duration, Utc};
use evershell_core::{AuditEvent, EventType};
use evershell_store::{AuditFilter, AuditQuery, FilterOp, Order, Store};
use support::TestDb;

on_both_engines!(
    audit_pages_follow_the_key_without_gaps_or_repeats,
    audit_filters_select_in_not_in_and_populated,
    audit_rows_keep_every_column_through_a_round_trip,
    audit_positions_and_head_follow_commits,
    live_reader_tailing_by_position_misses_no_concurrent_commit,
);

fn query(org: &str) -> AuditQuery {
    AuditQuery {
        org_id: org.to_string(),
        workspace_id: None,
        user_id: None,
        category: None,
        filters: Vec::new(),
        from: None,
        to: None,
        order: Order::Asc,
        limit: 100,
        after_key: None,
    }
}

async fn insert_ten_rows(store: &Store) -> String {
    let org = store.ensure_org("acme", "Acme").await.expect("org");
    let base = Utc::now();
    let mut rows = Vec::new();
    for i in 0..10 {
        let mut row = AuditEvent::new(EventType::PolicyDecision, &org, "system");
        row.timestamp = base + Duration::milliseconds(i);
        row.workspace_id = Some(if i % 2 == 0 { "ws_a" } else { "ws_b" }.to_string());
        row.decision = Some(if i < 3 { "deny" } else { "allow" }.to_string());
        row.reason = (i < 3).then(|| "host_not_allowed".to_string());
        row.status_code = Some(if i < 3 { 403 } else { 200 });
        rows.push(row);
    }
    store.insert_audit(&rows).await.expect("insert");
    org
}

/// A row of `workspace`, stamped to the microsecond the store keeps.
fn row_in(org: &str, workspace: &str) -> AuditEvent {
    let mut row = AuditEvent::new(EventType::PolicyDecision, org, "system");
    row.workspace_id = Some(workspace.to_string());
    row.timestamp =
        chrono::DateTime::from_timestamp_micros(row.timestamp.timestamp_micros()).expect("now");
    row
}

async fn audit_pages_follow_the_key_without_gaps_or_repeats(db: TestDb) {
    let org = insert_ten_rows(&db.store).await;
    let mut q = query(&org);
    q.limit = 3;
    let mut seen = Vec::new();
    loop {
        let page = db.store.query_audit(&q).await.expect("page");
        seen.extend(page.iter().map(|r| r.id.clone()));
        if page.len() < 3 {
            break;
        }
        let last = page.last().expect("non-empty");
        q.after_key = Some((last.timestamp, last.id.clone()));
    }
    assert_eq!(seen.len(), 10);
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 10);
}

async fn audit_filters_select_in_not_in_and_populated(db: TestDb) {
    let store = &db.store;
    let org = insert_ten_rows(store).await;
    let mut q = query(&org);
    let count = |q: &AuditQuery| {
        let q = q.clone();
        async move { store.query_audit(&q).await.expect("q").len() }
    };
    q.filters = vec![AuditFilter {
        column: "decision",
        op: FilterOp::In(vec!["deny".into()]),
    }];
    assert_eq!(count(&q).await, 3);
    q.filters = vec![AuditFilter {
        column: "decision",
        op: FilterOp::NotIn(vec!["deny".into()]),
    }];
    assert_eq!(count(&q).await, 7);
    q.filters = vec![AuditFilter {
        column: "reason",
        op: FilterOp::Populated,
    }];
    assert_eq!(count(&q).await, 3);
    // Integer columns compare through their text form on both engines.
    q.filters = vec![AuditFilter {
        column: "status_code",
        op: FilterOp::In(vec!["403".into(), "500".into()]),
    }];
    assert_eq!(count(&q).await, 3);
    q.filters.clear();
    q.workspace_id = Some("ws_a".into());
    q.order = Order::Desc;
    let rows = store.query_audit(&q).await.expect("q");
    assert_eq!(rows.len(), 5);
    assert!(rows.windows(2).all(|w| w[0].timestamp >= w[1].timestamp));
    let other = store.ensure_org("other", "Other").await.expect("org");
    assert!(
        store
            .query_audit(&query(&other))
            .await
            .expect("q")
            .is_empty(),
        "rows never cross orgs"
    );
}

async fn audit_rows_keep_every_column_through_a_round_trip(db: TestDb) {
    let org = db.store.ensure_org("acme", "Acme").await.expect("org");
    let mut row = row_in(&org, "ws_a");
    row.latency_ms = Some(i64::MAX);
    row.bytes_in = Some(0);
    row.bytes_out = Some(-1);
    row.debits = Some([("tokens".to_string(), 1_i64 << 40)].into());
    row.minted = Some(vec!["gitlab".into()]);
    row.detail = Some(serde_json::json!({"nested": {"a": [1, "two", null]}}));
    row.summary = Some("naïve ☃ text".into());
    db.store.insert_audit(&[row.clone()]).await.expect("insert");
    let back = db.store.query_audit(&query(&org)).await.expect("q");
    assert_eq!(back, vec![row]);
}

async fn audit_positions_and_head_follow_commits(db: TestDb) {
    let store = &db.store;
    assert_eq!(store.audit_head().await.expect("head"), 0, "empty log");
    let org = store.ensure_org("acme", "Acme").await.expect("org");
    let first = row_in(&org, "ws_a");
    let second = row_in(&org, "ws_a");
    store
        .insert_audit(std::slice::from_ref(&first))
        .await
        .expect("insert");
    store
        .insert_audit(std::slice::from_ref(&second))
        .await
        .expect("insert");
    let p1 = store.audit_position(&org, &first.id).await.expect("p");
    let p2 = store.audit_position(&org, &second.id).await.expect("p");
    let (p1, p2) = (p1.expect("first row"), p2.expect("second row"));
    assert!(p1 < p2, "{p1} < {p2}");
    assert_eq!(store.audit_head().await.expect("head"), p2);
    assert_eq!(
        store
            .audit_position("other_org", &first.id)
            .await
            .expect("p"),
        None,
        "positions never cross orgs"
    );
    let after = store
        .audit_committed_after(&org, "ws_a", p1, 10)
        .await
        .expect("after");
    assert_eq!(after, vec![(p2, second.clone())]);
    let key = store.audit_key(&org, &second.id).await.expect("key");
    assert_eq!(key, Some((second.timestamp, second.id.clone())));
}

/// Pins the PostgreSQL hazard of identity columns: positions are handed out
/// at insert, so without serialised commits a later position can become
/// visible first and a reader that already moved past it never sees the
/// earlier one.
async fn live_reader_tailing_by_position_misses_no_concurrent_commit(db: TestDb) {
    const WRITERS: usize = 6;
    const ROWS_EACH: usize = 20;
    let org = db.store.ensure_org("acme", "Acme").await.expect("org");
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        let (store, org) = (db.store.clone(), org.clone());
        writers.push(tokio::spawn(async move {
            for _ in 0..ROWS_EACH {
                store
                    .insert_audit(&[row_in(&org, "ws_a")])
                    .await
                    .expect("insert");
            }
        }));
    }

    let mut seen = BTreeSet::new();
    let mut last = 0;
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        let page = db
            .store
            .audit_committed_after(&org, "ws_a", last, 50)
            .await
            .expect("tail");
        for (position, row) in &page {
            assert!(*position > last, "positions only grow");
            last = *position;
            assert!(seen.insert(row.id.clone()), "row {} seen twice", row.id);
        }
        if done && page.is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(seen.len(), WRITERS * ROWS_EACH, "the tail skipped rows");
}
