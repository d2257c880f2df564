use chrono::{Duration, Utc};
use evershell_core::{AuditEvent, EventType};
use evershell_store::{AuditFilter, AuditQuery, FilterOp, Order, Store};

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

async fn store_with_rows() -> (tempfile::TempDir, Store, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_sqlite(&dir.path().join("db.sqlite"))
        .await
        .expect("open");
    let org = store.ensure_org("acme", "Acme").await.expect("org");
    let base = Utc::now();
    let mut rows = Vec::new();
    for i in 0..10 {
        let mut row = AuditEvent::new(EventType::PolicyDecision, &org, "system");
        row.timestamp = base + Duration::milliseconds(i);
        row.workspace_id = Some(if i % 2 == 0 { "ws_a" } else { "ws_b" }.to_string());
        row.decision = Some(if i < 3 { "deny" } else { "allow" }.to_string());
        row.reason = (i < 3).then(|| "host_not_allowed".to_string());
        rows.push(row);
    }
    store.insert_audit(&rows).await.expect("insert");
    (dir, store, org)
}

#[tokio::test]
async fn audit_pages_follow_the_key_without_gaps_or_repeats() {
    let (_dir, store, org) = store_with_rows().await;
    let mut q = query(&org);
    q.limit = 3;
    let mut seen = Vec::new();
    loop {
        let page = store.query_audit(&q).await.expect("page");
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

#[tokio::test]
async fn audit_filters_select_in_not_in_and_populated() {
    let (_dir, store, org) = store_with_rows().await;
    let mut q = query(&org);
    q.filters = vec![AuditFilter {
        column: "decision",
        op: FilterOp::In(vec!["deny".into()]),
    }];
    assert_eq!(store.query_audit(&q).await.expect("q").len(), 3);
    q.filters = vec![AuditFilter {
        column: "decision",
        op: FilterOp::NotIn(vec!["deny".into()]),
    }];
    assert_eq!(store.query_audit(&q).await.expect("q").len(), 7);
    q.filters = vec![AuditFilter {
        column: "reason",
        op: FilterOp::Populated,
    }];
    assert_eq!(store.query_audit(&q).await.expect("q").len(), 3);
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
