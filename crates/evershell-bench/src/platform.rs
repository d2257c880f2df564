//! The platform under load: the demo world (control plane, sandbox runtime,
//! proxy and local stand-ins) on one database engine, with one workspace
//! whose task has completed, so that the read route has a real row to read
//! and no agent is busy during the measurement.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use evershell_cli::demo::{DemoWorld, DEMO_CAPS};
use evershell_testkit::model::ScriptStep;
use evershell_testkit::postgres::TempDatabase;
use serde_json::{json, Value};

/// The role whose task creates the measured workspace.
const ROLE: &str = "bench";

/// How long the setup task may take (sandbox start and one model call).
const TASK_LIMIT: Duration = Duration::from_secs(120);

const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A database engine the control plane runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A SQLite file in the world's temporary directory.
    Sqlite,
    /// A throwaway database on the local PostgreSQL server
    /// (`127.0.0.1:5432`), dropped afterwards.
    Postgres,
}

/// A running platform, ready to be loaded.
pub struct Platform {
    pub world: DemoWorld,
    /// The workspace `GET /v1/workspaces/{id}` reads.
    pub workspace_id: String,
    /// Dropped after the world has stopped.
    database: Option<TempDatabase>,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

impl Platform {
    /// Starts the platform on `engine` with `exe` as the binary mounted
    /// into sandboxes, configures the demo provider and a role, and runs one
    /// task to completion.
    pub async fn start(engine: Engine, exe: &Path) -> anyhow::Result<Platform> {
        // One text answer: the agent finishes the task on its first turn.
        let script = vec![ScriptStep::Text("Nothing to do.".to_string())];
        let (world, database) = match engine {
            Engine::Sqlite => (DemoWorld::start(script, exe.to_path_buf()).await?, None),
            Engine::Postgres => {
                let database = TempDatabase::create()
                    .await
                    .context("creating a database on the PostgreSQL server at 127.0.0.1:5432")?;
                let world = DemoWorld::start_on(database.url(), script, exe.to_path_buf()).await?;
                (world, Some(database))
            }
        };
        world.configure(ROLE, DEMO_CAPS).await?;

        let workspace_id = complete_one_task(&world).await?;
        Ok(Platform {
            world,
            workspace_id,
            database,
        })
    }

    /// The owner's full-access API key created on first start.
    pub fn api_key(&self) -> anyhow::Result<&str> {
        self.world
            .server
            .bootstrap
            .api_key
            .as_deref()
            .context("a fresh platform has a bootstrap API key")
    }

    /// Stops the platform, then drops its database.
    pub async fn shutdown(self) {
        self.world.shutdown().await;
        drop(self.database);
    }
}

/// Submits a task and waits until it completes; returns its workspace.
async fn complete_one_task(world: &DemoWorld) -> anyhow::Result<String> {
    let accepted: Value = world
        .client
        .post(
            "/v1/tasks",
            &json!({ "role_name": ROLE, "description": "Say that there is nothing to do." }),
        )
        .await?;
    let ws = accepted["workspace_id"]
        .as_str()
        .context("a task answer names its workspace")?;
    let task = accepted["task_id"]
        .as_str()
        .context("a task answer names its task")?;

    let deadline = tokio::time::Instant::now() + TASK_LIMIT;
    loop {
        let t: Value = world
            .client
            .get(&format!("/v1/workspaces/{ws}/tasks/{task}"))
            .await?;
        match t["status"].as_str() {
            Some("completed") => return Ok(ws.to_string()),
            Some("failed" | "cancelled" | "delivery_failed") => {
                bail!("setup task {task} in workspace {ws} did not complete: {t}")
            }
            _ => {}
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("setup task {task} in workspace {ws} still running after {TASK_LIMIT:?}: {t}");
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
