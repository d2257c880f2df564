//! Workspaces and tasks, and the atomic writes that keep them consistent
//! with the audit log.

use evershell_core::model::{task_status, workspace_status, Task, Workspace};
use evershell_core::AuditEvent;
use sqlx::{Any, Transaction};

use crate::{audit, ts, Result, Store};

/// First host uid handed to sandboxes; each workspace gets its own.
const SANDBOX_UID_BASE: i64 = 200_000;

/// What the runtime needs about a workspace besides its document.
#[derive(Debug, Clone)]
pub struct WorkspaceRuntimeRow {
    pub sandbox_uid: u32,
    /// The last agent event sequence number committed to the audit log.
    pub agent_event_seq: u64,
}

/// Agent events applied in one transaction: the rows, the new cursor and the
/// task/workspace changes they imply. Either all of it is committed or none.
pub struct AgentEventBatch {
    pub workspace_id: String,
    pub new_seq: u64,
    pub rows: Vec<AuditEvent>,
    pub tasks: Vec<Task>,
    pub workspace: Option<Workspace>,
}

impl Store {
    /// Creates a workspace and its first task atomically, with their audit
    /// rows. Allocates the workspace's sandbox uid.
    pub async fn create_workspace_with_task(
        &self,
        ws: &Workspace,
        task: &Task,
        rows: &[AuditEvent],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        self.backend.lock_sandbox_uids(&mut tx).await?;
        // One statement, so SQLite reads the highest uid under the write
        // lock it takes for the insert.
        sqlx::query(
            "INSERT INTO workspaces (id, org_id, role_id, status, sandbox_uid, doc, created_at) \
             VALUES ($1, $2, $3, $4, (SELECT COALESCE(MAX(sandbox_uid), $5) + 1 FROM workspaces), \
             $6, $7)",
        )
        .bind(&ws.id)
        .bind(&ws.org_id)
        .bind(&ws.role_id)
        .bind(&ws.status)
        .bind(SANDBOX_UID_BASE - 1)
        .bind(serde_json::to_string(ws)?)
        .bind(ts(&ws.created_at))
        .execute(&mut *tx)
        .await?;
        insert_task(&mut tx, task).await?;
        audit::insert_rows(&mut tx, self.backend, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Adds a follow-up task to an existing workspace, with its audit rows.
    pub async fn add_task(&self, task: &Task, rows: &[AuditEvent]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_task(&mut tx, task).await?;
        audit::insert_rows(&mut tx, self.backend, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Persists a workspace's new state together with the rows reporting it.
    pub async fn save_workspace(&self, ws: &Workspace, rows: &[AuditEvent]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        update_workspace(&mut tx, ws).await?;
        audit::insert_rows(&mut tx, self.backend, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Persists a task's new state together with the rows reporting it.
    pub async fn save_task(&self, task: &Task, rows: &[AuditEvent]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        update_task(&mut tx, task).await?;
        audit::insert_rows(&mut tx, self.backend, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Commits a batch of agent events (see [`AgentEventBatch`]).
    pub async fn apply_agent_events(&self, batch: &AgentEventBatch) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for task in &batch.tasks {
            update_task(&mut tx, task).await?;
        }
        if let Some(ws) = &batch.workspace {
            update_workspace(&mut tx, ws).await?;
        }
        sqlx::query("UPDATE workspaces SET agent_event_seq = $1 WHERE id = $2")
            .bind(batch.new_seq as i64)
            .bind(&batch.workspace_id)
            .execute(&mut *tx)
            .await?;
        // Last, as every writer of audit rows does (see audit::insert_rows).
        audit::insert_rows(&mut tx, self.backend, &batch.rows).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn workspace(&self, org_id: &str, id: &str) -> Result<Option<Workspace>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT doc FROM workspaces WHERE org_id = $1 AND id = $2")
                .bind(org_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(doc,)| serde_json::from_str(&doc).map_err(Into::into))
            .transpose()
    }

    pub async fn workspace_runtime_row(&self, id: &str) -> Result<Option<WorkspaceRuntimeRow>> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT sandbox_uid, agent_event_seq FROM workspaces WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(uid, seq)| WorkspaceRuntimeRow {
            sandbox_uid: uid as u32,
            agent_event_seq: seq as u64,
        }))
    }

    /// Workspaces of `org_id`, newest first; only those created by
    /// `created_by` when given (`:own` narrowing).
    pub async fn list_workspaces(
        &self,
        org_id: &str,
        created_by: Option<&str>,
    ) -> Result<Vec<Workspace>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT doc FROM workspaces WHERE org_id = $1 ORDER BY created_at DESC, id DESC",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        let all: Vec<Workspace> = rows
            .into_iter()
            .map(|(doc,)| serde_json::from_str(&doc))
            .collect::<Result<_, _>>()?;
        Ok(all
            .into_iter()
            .filter(|ws| created_by.is_none_or(|user| ws.created_by_user_id == user))
            .collect())
    }

    /// Every workspace, in any org, whose sandbox should be running.
    pub async fn live_workspaces(&self) -> Result<Vec<Workspace>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT doc FROM workspaces WHERE status IN ($1, $2, $3) ORDER BY created_at",
        )
        .bind(workspace_status::PROVISIONING)
        .bind(workspace_status::IDLE)
        .bind(workspace_status::BUSY)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(doc,)| serde_json::from_str(&doc).map_err(Into::into))
            .collect()
    }

    pub async fn task(&self, org_id: &str, workspace_id: &str, id: &str) -> Result<Option<Task>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT doc FROM tasks WHERE org_id = $1 AND workspace_id = $2 AND id = $3",
        )
        .bind(org_id)
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(doc,)| serde_json::from_str(&doc).map_err(Into::into))
            .transpose()
    }

    /// Tasks of a workspace, newest first.
    pub async fn list_tasks(&self, workspace_id: &str) -> Result<Vec<Task>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT doc FROM tasks WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC",
        )
        .bind(workspace_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(doc,)| serde_json::from_str(&doc).map_err(Into::into))
            .collect()
    }

    /// Tasks of a workspace that have not ended, oldest first.
    pub async fn open_tasks(&self, workspace_id: &str) -> Result<Vec<Task>> {
        let mut tasks = self.list_tasks(workspace_id).await?;
        tasks.retain(|t| !task_status::is_terminal(&t.status));
        tasks.reverse();
        Ok(tasks)
    }
}

async fn insert_task(tx: &mut Transaction<'_, Any>, task: &Task) -> Result<()> {
    sqlx::query(
        "INSERT INTO tasks (id, org_id, workspace_id, status, doc, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&task.id)
    .bind(&task.org_id)
    .bind(&task.workspace_id)
    .bind(&task.status)
    .bind(serde_json::to_string(task)?)
    .bind(ts(&task.created_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn update_task(tx: &mut Transaction<'_, Any>, task: &Task) -> Result<()> {
    sqlx::query("UPDATE tasks SET status = $1, doc = $2 WHERE id = $3")
        .bind(&task.status)
        .bind(serde_json::to_string(task)?)
        .bind(&task.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn update_workspace(tx: &mut Transaction<'_, Any>, ws: &Workspace) -> Result<()> {
    sqlx::query("UPDATE workspaces SET status = $1, doc = $2 WHERE id = $3")
        .bind(&ws.status)
        .bind(serde_json::to_string(ws)?)
        .bind(&ws.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// How many workspaces of `org_id` running one of `role_ids` are live
    /// (provisioning, idle or busy).
    pub async fn live_workspaces_of_roles(&self, org_id: &str, role_ids: &[String]) -> Result<u64> {
        let mut live = 0;
        for role_id in role_ids {
            let (count,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM workspaces WHERE org_id = $1 AND role_id = $2 AND status IN ($3, $4, $5)",
            )
            .bind(org_id)
            .bind(role_id)
            .bind(workspace_status::PROVISIONING)
            .bind(workspace_status::IDLE)
            .bind(workspace_status::BUSY)
            .fetch_one(&self.pool)
            .await?;
            live += count.max(0) as u64;
        }
        Ok(live)
    }
}
