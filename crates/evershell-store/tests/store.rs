#[macro_use]
mod support;

use chrono::Utc;
use evershell_core::model::{Task, Workspace};
use evershell_store::{DocTable, NewApiKey, Store, StoreError};
use support::TestDb;

on_both_engines!(
    reopening_a_store_keeps_its_data_and_migrations,
    taken_names_are_unique_violations,
    racing_first_starts_agree_on_one_setting,
    budget_counters_upsert_and_saturate,
    concurrent_workspaces_get_distinct_sandbox_uids,
);

#[tokio::test]
async fn urls_of_other_databases_are_refused() {
    let err = Store::open("mysql://127.0.0.1/evershell").await;
    assert!(matches!(err, Err(StoreError::Url(_))), "{:?}", err.err());
}

async fn reopening_a_store_keeps_its_data_and_migrations(db: TestDb) {
    let org = db.store.ensure_org("acme", "Acme").await.expect("org");
    let again = Store::open(&db.url).await.expect("reopen");
    assert_eq!(again.org_id_by_slug("acme").await.expect("org"), Some(org));
}

async fn taken_names_are_unique_violations(db: TestDb) {
    let store = &db.store;
    let org = store.ensure_org("acme", "Acme").await.expect("org");
    assert_eq!(store.ensure_org("acme", "Acme").await.expect("again"), org);
    let doc = serde_json::json!({"name": "claude"});
    store
        .insert_doc(DocTable::Providers, "prv_1", &org, "claude", &doc, &[])
        .await
        .expect("insert");
    let again = store
        .insert_doc(DocTable::Providers, "prv_2", &org, "claude", &doc, &[])
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    // Errors the store does not translate still say what they are.
    let key = |label| NewApiKey {
        org_id: &org,
        label,
        prefix: "evs_",
        secret_hash: "same-hash",
        permission_set: "owner",
        created_by: "system",
        expires_at: None,
    };
    store.insert_api_key(key("first")).await.expect("first key");
    let duplicate = store.insert_api_key(key("second")).await;
    assert!(
        duplicate
            .as_ref()
            .is_err_and(StoreError::is_unique_violation),
        "{duplicate:?}"
    );
}

async fn racing_first_starts_agree_on_one_setting(db: TestDb) {
    let mut racers = Vec::new();
    for i in 0..8 {
        let store = db.store.clone();
        racers.push(tokio::spawn(async move {
            store
                .setting_or_insert("pepper", &format!("value-{i}"))
                .await
                .expect("setting")
        }));
    }
    let mut values = Vec::new();
    for racer in racers {
        values.push(racer.await.expect("racer"));
    }
    values.dedup();
    assert_eq!(values.len(), 1, "{values:?}");
}

async fn budget_counters_upsert_and_saturate(db: TestDb) {
    let store = &db.store;
    store
        .save_budget_counter("ws_a", "llm", "tokens", 10)
        .await
        .expect("save");
    store
        .save_budget_counter("ws_a", "llm", "tokens", u64::MAX)
        .await
        .expect("save");
    let counters = store.budget_counters("ws_a").await.expect("read");
    let max = i64::MAX as u64;
    assert_eq!(counters, vec![("llm".into(), "tokens".into(), max)]);
}

async fn concurrent_workspaces_get_distinct_sandbox_uids(db: TestDb) {
    let org = db.store.ensure_org("acme", "Acme").await.expect("org");
    let mut creators = Vec::new();
    for i in 0..6 {
        let (store, org) = (db.store.clone(), org.clone());
        creators.push(tokio::spawn(async move {
            let (ws, task) = workspace_with_task(&org, i);
            store
                .create_workspace_with_task(&ws, &task, &[])
                .await
                .expect("create");
            ws.id
        }));
    }
    let mut uids = Vec::new();
    for creator in creators {
        let id = creator.await.expect("creator");
        let row = db.store.workspace_runtime_row(&id).await.expect("row");
        uids.push(row.expect("workspace exists").sandbox_uid);
    }
    uids.sort_unstable();
    assert_eq!(uids, (200_000..200_006).collect::<Vec<u32>>());
}

fn workspace_with_task(org: &str, i: usize) -> (Workspace, Task) {
    let now = Utc::now();
    let ws = serde_json::from_value(serde_json::json!({
        "id": format!("ws_{i}"),
        "org_id": org,
        "role_id": "role_1",
        "environment": "default",
        "status": "provisioning",
        "created_by_user_id": "usr_1",
        "pack_status": "ready",
        "task_count": 1,
        "created_at": now,
        "updated_at": now,
    }))
    .expect("a workspace document");
    let task = serde_json::from_value(serde_json::json!({
        "id": format!("task_{i}"),
        "org_id": org,
        "workspace_id": format!("ws_{i}"),
        "description": "build it",
        "status": "submitted",
        "created_at": now,
        "iterations": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "metadata": {},
        "created_by_user_id": "usr_1",
        "reset_session": false,
        "uploads": [],
    }))
    .expect("a task document");
    (ws, task)
}
