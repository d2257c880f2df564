//! Orchestration of workspaces and tasks. Each live workspace has one
//! actor task that owns its sandbox and proxy listeners and is the only
//! writer of its state; API handlers persist submissions and then nudge the
//! actor. Every transition is committed (with its audit rows) before it is
//! reported.

mod actor;
mod agent_client;
mod confined;
mod events;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

use chrono::Utc;
use evershell_core::id::{new_id, Kind};
use evershell_core::model::{task_status, workspace_status, AgentRole, Provider, Task, Workspace};
use evershell_core::{AuditSink, ErrorCode, EventType};
use evershell_proxy::ca::CertificateAuthority;
use evershell_proxy::{Proxy, ProxyConfig};
use evershell_runtime::{LocalRuntime, LocalRuntimeConfig};
use evershell_store::secrets::MasterKey;
use evershell_store::{DocTable, Store};
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::api::auth::Caller;
use crate::api::error::{ApiError, ApiResult};
use crate::api::handlers::tasks::Submission;
use crate::broker::{StoreBudgets, StoreCredentials, StoreSecrets};
use crate::{AuditWriter, Ctx, ServerConfig};
use actor::{Command, WorkspaceActor};
use events::RowContext;

pub struct Orchestrator {
    ctx: OnceLock<Weak<Ctx>>,
    runtime: Arc<LocalRuntime>,
    proxy: Arc<Proxy>,
    actors: Mutex<HashMap<String, mpsc::Sender<Command>>>,
}

impl Orchestrator {
    pub fn new(
        config: &ServerConfig,
        store: &Store,
        master: &Arc<MasterKey>,
        audit: &Arc<AuditWriter>,
        ca: CertificateAuthority,
    ) -> anyhow::Result<Arc<Orchestrator>> {
        let runtime = LocalRuntime::new(LocalRuntimeConfig {
            root: config.data_dir.join("workspaces"),
            exe: config.exe.clone(),
            ca_pem: ca.cert_pem().to_string(),
        });
        let mut extra_roots = Vec::new();
        for pem in &config.proxy.extra_roots_pem {
            for cert in rustls_pemfile::certs(&mut pem.as_bytes()) {
                extra_roots.push(cert?);
            }
        }
        let proxy_config = ProxyConfig {
            extra_roots,
            resolve: config.proxy.resolve.clone(),
            ..ProxyConfig::default()
        };
        let credentials = Arc::new(StoreCredentials {
            store: store.clone(),
            master: master.clone(),
        });
        let sink: Arc<dyn AuditSink> = audit.clone();
        let proxy = Proxy::builder(proxy_config, ca, sink, credentials)
            .secrets(Arc::new(StoreSecrets {
                store: store.clone(),
                master: master.clone(),
            }))
            .budget_store(Arc::new(StoreBudgets {
                store: store.clone(),
            }))
            .build();
        Ok(Arc::new(Orchestrator {
            ctx: OnceLock::new(),
            runtime: Arc::new(runtime),
            proxy,
            actors: Mutex::new(HashMap::new()),
        }))
    }

    /// Gives the orchestrator its context once the context exists.
    pub fn attach(&self, ctx: Weak<Ctx>) {
        let _ = self.ctx.set(ctx);
    }

    fn ctx(&self) -> Arc<Ctx> {
        self.ctx
            .get()
            .and_then(Weak::upgrade)
            .expect("the orchestrator lives inside its context")
    }

    /// Creates a workspace for `role` with its first task, then starts
    /// provisioning it.
    pub async fn submit_new(
        &self,
        caller: &Caller,
        role: AgentRole,
        sub: Submission,
    ) -> ApiResult<(Workspace, Task)> {
        let ctx = self.ctx();
        let provider = provider_of(&ctx, &role).await?;
        let now = Utc::now();
        let ws = Workspace {
            id: new_id(Kind::Workspace),
            org_id: caller.org_id.clone(),
            role_id: role.id.clone(),
            environment: sub
                .environment
                .clone()
                .unwrap_or_else(|| role.environment.clone()),
            status: workspace_status::PROVISIONING.to_string(),
            created_by_user_id: caller.user_id.clone(),
            snapshot_ref: None,
            last_snapshot_error: None,
            parent_workspace_id: None,
            fork_source_snapshot_ref: None,
            fork_point_task_count: None,
            pack_status: "unknown".to_string(),
            policy_version: None,
            task_count: 0,
            last_activity_at: Some(now),
            reason: None,
            created_at: now,
            updated_at: now,
            archived_at: None,
        };
        let task = new_task(caller, &ws, &sub);
        let rows_ctx = row_context(&ws, &role, &provider);
        let mut created = rows_ctx.row(EventType::WorkspaceCreated, None);
        created.summary = Some(format!("workspace created for role {}", role.name));
        let submitted = rows_ctx.row(EventType::TaskSubmitted, Some(&task.id));
        let rows = [created, submitted];
        ctx.store
            .create_workspace_with_task(&ws, &task, &rows)
            .await?;
        ctx.audit.publish(&rows);

        // The actor starts after the files are stored, so the first task is
        // never delivered without them; if they cannot be, it ends now.
        let stored = self.store_uploads(&ctx, &ws, &task, &sub).await;
        if stored.is_err() {
            let mut ended = task.clone();
            events::finish(
                &mut ended,
                task_status::DELIVERY_FAILED,
                Some("upload_failed".to_string()),
            );
            ctx.store.save_task(&ended, &[]).await?;
        }
        self.spawn_actor(&ctx, ws.clone()).await;
        stored?;
        Ok((ws, task))
    }

    /// Queues a follow-up task on `ws`.
    pub async fn submit_follow_up(
        &self,
        caller: &Caller,
        ws: &Workspace,
        sub: Submission,
    ) -> ApiResult<Task> {
        let ctx = self.ctx();
        if ws.archived_at.is_some() {
            return Err(ApiError::conflict(
                "workspace_archived",
                "workspace is archived",
            ));
        }
        if !matches!(ws.status.as_str(), "provisioning" | "idle" | "busy") {
            return Err(ApiError::conflict(
                "invalid_state",
                format!("workspace is {}", ws.status),
            ));
        }
        let role: AgentRole = ctx
            .store
            .get_doc(DocTable::AgentRoles, &ws.org_id, &ws.role_id)
            .await?
            .ok_or_else(|| ApiError::not_found(ErrorCode::RoleNotFound, "agent role"))?;
        let provider = provider_of(&ctx, &role).await?;
        let task = new_task(caller, ws, &sub);
        // The files land before the task exists, so that the actor can never
        // deliver the task without them.
        self.store_uploads(&ctx, ws, &task, &sub).await?;
        let row = row_context(ws, &role, &provider).row(EventType::TaskSubmitted, Some(&task.id));
        ctx.store
            .add_task(&task, std::slice::from_ref(&row))
            .await?;
        ctx.audit.publish(&[row]);
        self.send(&ws.id, Command::Kick).await;
        Ok(task)
    }

    /// Asks the agent to cancel the running task of `ws`.
    pub async fn cancel(&self, caller: &Caller, ws: &Workspace) -> ApiResult<Task> {
        let ctx = self.ctx();
        let running = ctx.store.open_tasks(&ws.id).await?.into_iter().find(|t| {
            matches!(
                t.status.as_str(),
                task_status::DELIVERED | task_status::RUNNING | task_status::COMPACTING
            )
        });
        let Some(task) = running else {
            return Err(ApiError::conflict("invalid_state", "no task is running"));
        };
        let (reply, done) = oneshot::channel();
        let by = caller.user_id.clone();
        if !self
            .send(
                &ws.id,
                Command::Cancel {
                    task_id: task.id.clone(),
                    by,
                    reply,
                },
            )
            .await
        {
            return Err(ApiError::conflict(
                "invalid_state",
                "workspace has no running sandbox",
            ));
        }
        done.await
            .map_err(|_| ApiError::new(ErrorCode::AgentUnreachable, "workspace stopped"))??;
        Ok(task)
    }

    /// The budget counters of a workspace as the proxy holds them now.
    pub fn budget(&self, workspace_id: &str) -> Vec<evershell_proxy::BudgetCounter> {
        self.proxy.budget(workspace_id)
    }

    /// Stops every actor and its sandbox. Workspaces keep their persisted
    /// state; the next start recovers them.
    pub async fn shutdown(&self) {
        let actors: Vec<_> = self.actors.lock().await.drain().collect();
        for (_, tx) in actors {
            let (done, wait) = oneshot::channel();
            if tx.send(Command::Shutdown { done }).await.is_ok() {
                let _ = wait.await;
            }
        }
    }

    async fn send(&self, ws_id: &str, command: Command) -> bool {
        let tx = self.actors.lock().await.get(ws_id).cloned();
        match tx {
            Some(tx) => tx.send(command).await.is_ok(),
            None => false,
        }
    }

    async fn spawn_actor(&self, ctx: &Arc<Ctx>, ws: Workspace) {
        let (tx, rx) = mpsc::channel(64);
        self.actors.lock().await.insert(ws.id.clone(), tx);
        let actor = WorkspaceActor::new(ctx.clone(), self.runtime.clone(), self.proxy.clone(), ws);
        tokio::spawn(actor.run(rx));
    }

    /// Recovers every workspace a previous run left live and starts its
    /// actor again (see `WorkspaceActor::recover`).
    pub async fn recover(&self) -> anyhow::Result<()> {
        let ctx = self.ctx();
        for ws in ctx.store.live_workspaces().await? {
            let data = self.runtime.paths(&ws.id).data;
            let (tx, rx) = mpsc::channel(64);
            self.actors.lock().await.insert(ws.id.clone(), tx);
            let mut actor =
                WorkspaceActor::new(ctx.clone(), self.runtime.clone(), self.proxy.clone(), ws);
            actor.recover(&data).await;
            tokio::spawn(actor.run(rx));
        }
        Ok(())
    }

    async fn forget(&self, ws_id: &str) {
        self.actors.lock().await.remove(ws_id);
    }

    async fn store_uploads(
        &self,
        ctx: &Ctx,
        ws: &Workspace,
        task: &Task,
        sub: &Submission,
    ) -> ApiResult<()> {
        if sub.files.is_empty() {
            return Ok(());
        }
        let row = ctx
            .store
            .workspace_runtime_row(&ws.id)
            .await?
            .expect("workspace was just stored");
        let paths = self.runtime.paths(&ws.id);
        let Err(e) = confined::store_uploads(&paths.data, row.sandbox_uid, &task.id, &sub.files)
        else {
            return Ok(());
        };
        // The agent controls the directory the files go to (it may have put
        // a link there): refuse the submission rather than run it without.
        tracing::warn!(workspace = %ws.id, task = %task.id, error = %e, "uploads could not be stored");
        Err(ApiError::conflict(
            "invalid_state",
            "the workspace's uploads directory cannot take files; the task was not queued",
        ))
    }
}

fn new_task(caller: &Caller, ws: &Workspace, sub: &Submission) -> Task {
    Task {
        id: new_id(Kind::Task),
        org_id: ws.org_id.clone(),
        workspace_id: ws.id.clone(),
        description: sub.description.clone(),
        status: task_status::SUBMITTED.to_string(),
        created_at: Utc::now(),
        completed_at: None,
        duration_seconds: None,
        reason: None,
        result: None,
        iterations: 0,
        input_tokens: 0,
        output_tokens: 0,
        metadata: sub.metadata.clone(),
        created_by_user_id: caller.user_id.clone(),
        reset_session: sub.reset_session,
        thinking_effort: sub.thinking_effort.clone(),
        max_continuations: sub.max_continuations,
        max_context_tokens: sub.max_context_tokens,
        uploads: sub.files.iter().map(|(name, _)| name.clone()).collect(),
    }
}

async fn provider_of(ctx: &Ctx, role: &AgentRole) -> ApiResult<Provider> {
    let provider: Option<Provider> = ctx
        .store
        .get_doc(DocTable::Providers, &role.org_id, &role.provider_id)
        .await?;
    let provider =
        provider.ok_or_else(|| ApiError::not_found(ErrorCode::ProviderNotFound, "provider"))?;
    if provider.archived_at.is_some() {
        return Err(ApiError::conflict(
            "provider_archived",
            "the role's provider is archived",
        ));
    }
    Ok(provider)
}

fn row_context<'a>(
    ws: &'a Workspace,
    role: &'a AgentRole,
    provider: &'a Provider,
) -> RowContext<'a> {
    RowContext {
        org_id: &ws.org_id,
        workspace_id: &ws.id,
        user_id: &ws.created_by_user_id,
        role_name: &role.name,
        provider_name: &provider.name,
    }
}
