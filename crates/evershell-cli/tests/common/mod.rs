//! Shared pieces of the end-to-end tests: the demo world with a chosen
//! model script, and waiting for tasks.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use evershell_cli::demo::DemoWorld;
use evershell_testkit::model::ScriptStep;
use serde_json::{json, Value};

pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_evershell"))
}

pub fn bash(command: &str) -> ScriptStep {
    ScriptStep::ToolCalls(vec![("bash".to_string(), json!({ "command": command }))])
}

/// The database engine a test runs the platform on.
#[derive(Debug, Clone, Copy)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Declares `$name` (an `async fn(Engine)`) as two tests, `$name::sqlite`
/// and `$name::postgres`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$name($crate::common::Engine::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                super::$name($crate::common::Engine::Postgres).await;
            }
        }
    )*};
}

/// A configured world (credential, provider, role `role` with `caps`).
pub async fn world(script: Vec<ScriptStep>, role: &str, caps: &str) -> DemoWorld {
    world_on(Engine::Sqlite, script, role, caps).await
}

/// [`world`] on `engine` (PostgreSQL: a fresh database, dropped with the
/// world).
pub async fn world_on(
    engine: Engine,
    script: Vec<ScriptStep>,
    role: &str,
    caps: &str,
) -> DemoWorld {
    let world = match engine {
        Engine::Sqlite => DemoWorld::start(script, exe()).await,
        Engine::Postgres => DemoWorld::start_on_temp_postgres(script, exe()).await,
    }
    .expect("demo world starts");
    world
        .configure(role, caps)
        .await
        .expect("demo world configures");
    world
}

/// Submits a task for `role`; returns `(workspace_id, task_id)`.
pub async fn submit(world: &DemoWorld, role: &str, description: &str) -> (String, String) {
    let accepted: Value = world
        .client
        .post(
            "/v1/tasks",
            &json!({ "role_name": role, "description": description }),
        )
        .await
        .expect("task accepted");
    (
        accepted["workspace_id"].as_str().unwrap().to_string(),
        accepted["task_id"].as_str().unwrap().to_string(),
    )
}

/// Polls the task until it ends (at most `limit`).
pub async fn wait_task(
    client: &evershell_cli::client::Client,
    ws: &str,
    task: &str,
    limit: Duration,
) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let t: Value = client
            .get(&format!("/v1/workspaces/{ws}/tasks/{task}"))
            .await
            .expect("task readable");
        if matches!(
            t["status"].as_str(),
            Some("completed" | "failed" | "cancelled" | "delivery_failed")
        ) {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task did not end in time: {t}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every audit row of a workspace, oldest first.
pub async fn audit_rows(client: &evershell_cli::client::Client, ws: &str) -> Vec<Value> {
    let page: Value = client
        .get(&format!("/v1/workspaces/{ws}/audit?order=asc&limit=10000"))
        .await
        .expect("audit readable");
    page["events"].as_array().cloned().unwrap_or_default()
}
