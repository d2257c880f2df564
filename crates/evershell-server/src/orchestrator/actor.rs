//! One workspace's actor: provisions the sandbox, binds the proxy to its
//! listeners, delivers queued tasks one at a time, ingests the agent's
//! events, enforces the task timeout and notices a dying sandbox.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use evershell_core::agent::{AgentEvent, EventsPage, ModelTarget, TaskDelivery};
use evershell_core::model::{task_status, workspace_status, AgentRole, Provider, Task, Workspace};
use evershell_core::{AuditEvent, ErrorCode, EventType};
use evershell_proxy::{Proxy, ServeHandle, WorkspaceBinding};
use evershell_runtime::{LocalRuntime, Sandbox, SandboxSpec};
use evershell_store::{AgentEventBatch, DocTable};
use hyper::Method;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::agent_client::{self, AgentCallError};
use super::events::{self, RowContext};
use crate::api::error::{ApiError, ApiResult};
use crate::Ctx;

/// How long a new sandbox's agent has to answer `/healthz`.
const AGENT_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Long-poll window of the event pump.
const EVENTS_WAIT_SECONDS: u64 = 20;
const DELIVERY_ATTEMPTS: u32 = 3;

pub enum Command {
    /// A task was queued.
    Kick,
    Cancel {
        task_id: String,
        by: String,
        reply: oneshot::Sender<ApiResult<()>>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// A page of agent events and the channel that tells the pump it is
/// committed.
type EventBatch = (Vec<AgentEvent>, oneshot::Sender<bool>);

pub struct WorkspaceActor {
    ctx: Arc<Ctx>,
    runtime: Arc<LocalRuntime>,
    proxy: Arc<Proxy>,
    ws: Workspace,
    sandbox: Option<Sandbox>,
    serving: Option<ServeHandle>,
    task_tx: watch::Sender<Option<String>>,
    /// The delivered task and when it times out.
    current: Option<(String, Instant)>,
    /// Tasks whose cancel was a timeout: they end `failed`, `task_timeout`.
    timed_out: Option<String>,
    /// The sandbox's host uid, which must serve the agent socket.
    uid: u32,
}

/// The role and provider a workspace runs with.
struct Profile {
    role: AgentRole,
    provider: Provider,
}

impl WorkspaceActor {
    pub fn new(
        ctx: Arc<Ctx>,
        runtime: Arc<LocalRuntime>,
        proxy: Arc<Proxy>,
        ws: Workspace,
    ) -> WorkspaceActor {
        let (task_tx, _) = watch::channel(None);
        WorkspaceActor {
            ctx,
            runtime,
            proxy,
            ws,
            sandbox: None,
            serving: None,
            task_tx,
            current: None,
            timed_out: None,
            uid: 0,
        }
    }

    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let profile = match self.profile().await {
            Ok(profile) => profile,
            Err(reason) => return self.fail(None, reason).await,
        };
        let socket = match self.provision(&profile).await {
            Ok(socket) => socket,
            Err(reason) => return self.fail(Some(&profile), reason).await,
        };
        let (events_tx, mut events_rx) = mpsc::channel::<EventBatch>(4);
        let after = self.event_cursor().await;
        let pump = tokio::spawn(pump(socket.clone(), self.uid, after, events_tx));
        let mut exit = self.sandbox.as_ref().expect("provisioned").exit_watch();

        loop {
            if self.current.is_none() {
                self.deliver_next(&profile, &socket).await;
            }
            let deadline = self.current.as_ref().map(|(_, at)| *at);
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Kick) => {}
                    Some(Command::Cancel { task_id, by, reply }) => {
                        let _ = reply.send(self.cancel(&profile, &socket, &task_id, &by).await);
                    }
                    Some(Command::Shutdown { done }) => {
                        self.teardown().await;
                        let _ = done.send(());
                        break;
                    }
                    None => {
                        self.teardown().await;
                        break;
                    }
                },
                Some((page, ack)) = events_rx.recv() => {
                    let committed = self.apply_events(&profile, page).await;
                    let _ = ack.send(committed);
                }
                _ = exit.changed() => {
                    let code = *exit.borrow();
                    pump.abort();
                    self.teardown().await;
                    let reason = match code {
                        Some(code) => format!("sandbox_exited: status {code}"),
                        None => "sandbox_exited".to_string(),
                    };
                    return self.fail(Some(&profile), reason).await;
                }
                _ = sleep_until(deadline) => {
                    if let Some((task_id, _)) = self.current.clone() {
                        self.timed_out = Some(task_id.clone());
                        self.current = Some((task_id.clone(), Instant::now() + Duration::from_secs(3600)));
                        let _ = self.cancel(&profile, &socket, &task_id, "system").await;
                    }
                }
            }
        }
        pump.abort();
    }

    /// Brings a workspace left live by a previous run of the server back to
    /// a consistent state before its sandbox is started again: agent events
    /// still in the sandbox's durable log are committed, and tasks that were
    /// in flight (their agent died with the previous server) end `failed`
    /// with reason `server_restarted`. Queued tasks stay queued.
    pub async fn recover(&mut self, data: &std::path::Path) {
        if let Ok(profile) = self.profile().await {
            let after = self.event_cursor().await;
            let leftover = read_event_log(data, after);
            if !leftover.is_empty() && !self.apply_events(&profile, leftover).await {
                tracing::error!(workspace = %self.ws.id, "leftover agent events could not be committed");
            }
        }
        self.end_open_tasks("server_restarted", false).await;
        self.ws.status = workspace_status::PROVISIONING.to_string();
        let mut row = AuditEvent::new(
            EventType::WorkspaceRestarted,
            &self.ws.org_id,
            &self.ws.created_by_user_id,
        );
        row.workspace_id = Some(self.ws.id.clone());
        row.reason = Some("server_restarted".to_string());
        self.save_ws(vec![row]).await;
    }

    async fn profile(&self) -> Result<Profile, String> {
        let store = &self.ctx.store;
        let role: Option<AgentRole> = store
            .get_doc(DocTable::AgentRoles, &self.ws.org_id, &self.ws.role_id)
            .await
            .map_err(|e| format!("role lookup failed: {e}"))?;
        let role = role.ok_or("role_not_found")?;
        let provider: Option<Provider> = store
            .get_doc(DocTable::Providers, &self.ws.org_id, &role.provider_id)
            .await
            .map_err(|e| format!("provider lookup failed: {e}"))?;
        let provider = provider.ok_or("provider_not_found")?;
        Ok(Profile { role, provider })
    }

    fn rows<'a>(&'a self, profile: &'a Profile) -> RowContext<'a> {
        RowContext {
            org_id: &self.ws.org_id,
            workspace_id: &self.ws.id,
            user_id: &self.ws.created_by_user_id,
            role_name: &profile.role.name,
            provider_name: &profile.provider.name,
        }
    }

    /// Compiles the policy, starts the sandbox, binds the proxy and waits
    /// for the agent. Returns the agent's socket.
    async fn provision(&mut self, profile: &Profile) -> Result<PathBuf, String> {
        let policy = Arc::new(compile_policy(profile)?);
        let runtime_row = self
            .ctx
            .store
            .workspace_runtime_row(&self.ws.id)
            .await
            .map_err(|e| format!("store: {e}"))?
            .ok_or("workspace row missing")?;
        self.uid = runtime_row.sandbox_uid;
        let spec = SandboxSpec {
            workspace_id: self.ws.id.clone(),
            uid: runtime_row.sandbox_uid,
            hostname: "workspace".to_string(),
            extra_tcp_ports: profile.role.extra_ports.clone(),
            env: Vec::new(),
            command: agent_command(),
        };
        let runtime = self.runtime.clone();
        let started = tokio::task::spawn_blocking(move || runtime.start(&spec))
            .await
            .map_err(|e| format!("sandbox start panicked: {e}"))?;
        let mut sandbox = started.map_err(|e| format!("sandbox_start_failed: {e}"))?;

        let binding = WorkspaceBinding {
            workspace_id: self.ws.id.clone(),
            org_id: self.ws.org_id.clone(),
            user_id: self.ws.created_by_user_id.clone(),
            role_name: profile.role.name.clone(),
            provider_name: profile.provider.name.clone(),
            environment: self.ws.environment.clone(),
            policy: policy.clone(),
            task_id: self.task_tx.subscribe(),
        };
        self.serving = Some(
            self.proxy
                .serve(Arc::new(binding), sandbox.take_listeners()),
        );
        let socket = sandbox.agent_socket();
        self.sandbox = Some(sandbox);
        wait_for_agent(&socket, self.uid).await?;

        self.ws.status = workspace_status::IDLE.to_string();
        self.ws.policy_version = Some(policy.version().to_string());
        self.ws.reason = None;
        let mut row = self
            .rows(profile)
            .row(EventType::WorkspaceProvisioned, None);
        row.detail = Some(serde_json::json!({ "policy_version": policy.version() }));
        self.save_ws(vec![row]).await;
        Ok(socket)
    }

    async fn event_cursor(&self) -> u64 {
        match self.ctx.store.workspace_runtime_row(&self.ws.id).await {
            Ok(Some(row)) => row.agent_event_seq,
            _ => 0,
        }
    }

    /// Delivers the oldest queued task, if any.
    async fn deliver_next(&mut self, profile: &Profile, socket: &std::path::Path) {
        let open = match self.ctx.store.open_tasks(&self.ws.id).await {
            Ok(open) => open,
            Err(e) => {
                tracing::error!(workspace = %self.ws.id, error = %e, "cannot read queued tasks");
                return;
            }
        };
        let Some(mut task) = open
            .into_iter()
            .find(|t| t.status == task_status::SUBMITTED)
        else {
            return;
        };
        let delivery = delivery(profile, &task);
        let body = serde_json::to_vec(&delivery).expect("deliveries serialise");
        let mut last_error = String::new();
        for attempt in 0..DELIVERY_ATTEMPTS {
            let result = agent_client::call(
                socket,
                self.uid,
                Method::POST,
                "/tasks",
                Some(body.clone()),
                Duration::from_secs(10),
            )
            .await;
            match result {
                Ok((status, _)) if status.is_success() => {
                    task.status = task_status::DELIVERED.to_string();
                    let row = self
                        .rows(profile)
                        .row(EventType::TaskDelivered, Some(&task.id));
                    self.save_task(&task, vec![row]).await;
                    self.ws.status = workspace_status::BUSY.to_string();
                    self.save_ws(Vec::new()).await;
                    let timeout = Duration::from_secs(profile.role.task_timeout_seconds.max(1));
                    self.current = Some((task.id.clone(), Instant::now() + timeout));
                    self.task_tx.send_replace(Some(task.id.clone()));
                    return;
                }
                Ok((status, body)) => {
                    last_error = format!(
                        "agent answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    )
                }
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
        }
        events::finish(
            &mut task,
            task_status::DELIVERY_FAILED,
            Some(last_error.clone()),
        );
        let mut row = self
            .rows(profile)
            .row(EventType::TaskDeliveryFailed, Some(&task.id));
        row.reason = Some(last_error);
        self.save_task(&task, vec![row]).await;
    }

    async fn cancel(
        &mut self,
        profile: &Profile,
        socket: &std::path::Path,
        task_id: &str,
        by: &str,
    ) -> ApiResult<()> {
        let path = format!("/tasks/{task_id}/cancel");
        let answer = agent_client::call(
            socket,
            self.uid,
            Method::POST,
            &path,
            None,
            Duration::from_secs(10),
        )
        .await;
        match answer {
            Ok((status, _)) if status.is_success() => {}
            Ok((status, _)) if status.as_u16() == 404 || status.as_u16() == 409 => {
                return Err(ApiError::conflict("invalid_state", "no task is running"));
            }
            Ok((status, _)) => {
                return Err(ApiError::new(
                    ErrorCode::AgentUnreachable,
                    format!("agent answered {status}"),
                ))
            }
            Err(e) => {
                tracing::warn!(workspace = %self.ws.id, error = %e, "cancel could not reach the agent");
                return Err(ApiError::new(
                    ErrorCode::AgentUnreachable,
                    "agent unreachable",
                ));
            }
        }
        let mut row = self
            .rows(profile)
            .row(EventType::TaskCancelRequested, Some(task_id));
        row.detail = Some(serde_json::json!({ "requested_by": by }));
        if self.timed_out.as_deref() == Some(task_id) {
            row.reason = Some("task_timeout".to_string());
        }
        self.record(vec![row]).await;
        Ok(())
    }

    /// Commits a page of agent events: rows, task changes, the workspace's
    /// state and the new cursor, atomically. Returns whether it committed.
    async fn apply_events(&mut self, profile: &Profile, page: Vec<AgentEvent>) -> bool {
        let Some(last_seq) = page.last().map(|e| e.seq) else {
            return true;
        };
        let mut tasks: HashMap<String, Task> = HashMap::new();
        let mut rows = Vec::new();
        let mut ended = false;
        for event in &page {
            let row = events::to_row(&self.rows(profile), event);
            let Some(task_id) = event.task_id.as_deref() else {
                rows.extend(row);
                continue;
            };
            if !tasks.contains_key(task_id) {
                match self
                    .ctx
                    .store
                    .task(&self.ws.org_id, &self.ws.id, task_id)
                    .await
                {
                    Ok(Some(task)) => {
                        tasks.insert(task_id.to_string(), task);
                    }
                    Ok(None) => {
                        // Not a task of this workspace: the agent cannot
                        // write rows about other workspaces' tasks.
                        tracing::warn!(workspace = %self.ws.id, task = %task_id, "agent event names a foreign task");
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(workspace = %self.ws.id, error = %e, "task lookup failed");
                        return false;
                    }
                }
            }
            rows.extend(row);
            let task = tasks.get_mut(task_id).expect("inserted above");
            if events::advance(task, event) {
                if self.timed_out.as_deref() == Some(task_id) {
                    task.status = task_status::FAILED.to_string();
                    task.reason = Some("task_timeout".to_string());
                }
                if self.current.as_ref().is_some_and(|(id, _)| id == task_id) {
                    ended = true;
                }
            }
        }
        let mut ws = self.ws.clone();
        ws.last_activity_at = Some(Utc::now());
        ws.updated_at = Utc::now();
        if ended {
            ws.status = workspace_status::IDLE.to_string();
            ws.task_count += 1;
        }
        let batch = AgentEventBatch {
            workspace_id: self.ws.id.clone(),
            new_seq: last_seq,
            rows,
            tasks: tasks.into_values().collect(),
            workspace: Some(ws.clone()),
        };
        if let Err(e) = self.ctx.store.apply_agent_events(&batch).await {
            tracing::error!(workspace = %self.ws.id, error = %e, "agent events not committed; will retry");
            return false;
        }
        self.ctx.audit.publish(&batch.rows);
        self.ws = ws;
        if ended {
            self.current = None;
            self.timed_out = None;
            self.task_tx.send_replace(None);
        }
        true
    }

    /// Marks the workspace `failed` with `reason`, failing its open tasks.
    async fn fail(mut self, profile: Option<&Profile>, reason: String) {
        tracing::warn!(workspace = %self.ws.id, %reason, "workspace failed");
        self.teardown().await;
        self.end_open_tasks(&reason, true).await;
        self.ws.status = workspace_status::FAILED.to_string();
        self.ws.reason = Some(reason.clone());
        let mut row = match profile {
            Some(profile) => self.rows(profile).row(EventType::WorkspaceFailed, None),
            None => {
                let mut row = AuditEvent::new(
                    EventType::WorkspaceFailed,
                    &self.ws.org_id,
                    &self.ws.created_by_user_id,
                );
                row.workspace_id = Some(self.ws.id.clone());
                row
            }
        };
        row.reason = Some(reason);
        self.save_ws(vec![row]).await;
        self.ctx.orchestrator.forget(&self.ws.id).await;
    }

    /// Ends the workspace's unfinished tasks with `reason`: in-flight ones
    /// `failed`, and queued ones `delivery_failed` when `queued_too`.
    async fn end_open_tasks(&self, reason: &str, queued_too: bool) {
        let open = self
            .ctx
            .store
            .open_tasks(&self.ws.id)
            .await
            .unwrap_or_default();
        for mut task in open {
            let status = match task.status.as_str() {
                task_status::SUBMITTED if !queued_too => continue,
                task_status::SUBMITTED => task_status::DELIVERY_FAILED,
                _ => task_status::FAILED,
            };
            events::finish(&mut task, status, Some(reason.to_string()));
            self.save_task(&task, Vec::new()).await;
        }
    }

    async fn teardown(&mut self) {
        self.serving = None;
        if let Some(mut sandbox) = self.sandbox.take() {
            let _ = tokio::task::spawn_blocking(move || sandbox.kill()).await;
        }
    }

    async fn save_ws(&mut self, rows: Vec<AuditEvent>) {
        self.ws.updated_at = Utc::now();
        match self.ctx.store.save_workspace(&self.ws, &rows).await {
            Ok(()) => self.ctx.audit.publish(&rows),
            Err(e) => {
                tracing::error!(workspace = %self.ws.id, error = %e, "workspace state not saved")
            }
        }
    }

    async fn save_task(&self, task: &Task, rows: Vec<AuditEvent>) {
        match self.ctx.store.save_task(task, &rows).await {
            Ok(()) => self.ctx.audit.publish(&rows),
            Err(e) => tracing::error!(task = %task.id, error = %e, "task state not saved"),
        }
    }

    async fn record(&self, rows: Vec<AuditEvent>) {
        for row in rows {
            if let Err(e) = self.ctx.audit.record_row(row).await {
                tracing::error!(workspace = %self.ws.id, error = %e, "audit row not recorded");
            }
        }
    }
}

/// Largest agent event log the control plane reads on recovery.
const MAX_EVENT_LOG_BYTES: u64 = 64 * 1024 * 1024;

/// Events after `after` in an agent's durable log
/// (`data/.evershell/events.jsonl`, one JSON event a line), read without
/// following links the agent may have planted; unreadable lines are
/// skipped.
fn read_event_log(data: &std::path::Path, after: u64) -> Vec<AgentEvent> {
    let bytes = match super::confined::read_file(
        data,
        &[".evershell", "events.jsonl"],
        MAX_EVENT_LOG_BYTES,
    ) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Vec::new(),
        Err(e) => {
            tracing::warn!(error = %e, "agent event log unreadable on recovery");
            return Vec::new();
        }
    };
    let logged = String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|line| serde_json::from_str::<AgentEvent>(line).ok())
        .collect();
    events::contiguous(after, logged)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The merged policy: the provider's `_provider` capability and its extra
/// capabilities, then the role's.
fn compile_policy(profile: &Profile) -> Result<evershell_caps::Policy, String> {
    let provider = &profile.provider;
    let mut provider_caps = vec![evershell_caps::provider_capability(
        &provider.kind,
        &provider.domain,
        provider.base_path.as_deref(),
        &provider.credential_name,
    )];
    if !provider.capabilities.trim().is_empty() {
        provider_caps.extend(
            evershell_caps::parse(&provider.capabilities)
                .map_err(|e| format!("provider caps: {e}"))?,
        );
    }
    let role_caps = if profile.role.capabilities.trim().is_empty() {
        Vec::new()
    } else {
        evershell_caps::parse(&profile.role.capabilities).map_err(|e| format!("role caps: {e}"))?
    };
    Ok(evershell_caps::Policy::compile(provider_caps, role_caps))
}

/// The agent service, run by the multi-call binary mounted in the sandbox.
fn agent_command() -> Vec<String> {
    [
        "/.evershell/bin/evershell",
        "agent",
        "--socket",
        "/run/evershell/agent.sock",
        "--state-dir",
        "/data/.evershell",
        "--workdir",
        "/workspace",
    ]
    .map(str::to_string)
    .to_vec()
}

fn delivery(profile: &Profile, task: &Task) -> TaskDelivery {
    let provider = &profile.provider;
    let base_path = match provider.kind.as_str() {
        "openai" | "azure-openai" => provider
            .base_path
            .clone()
            .unwrap_or_else(|| "/v1".to_string()),
        _ => provider.base_path.clone().unwrap_or_default(),
    };
    TaskDelivery {
        task_id: task.id.clone(),
        description: task.description.clone(),
        reset_session: task.reset_session,
        model: ModelTarget {
            provider_kind: provider.kind.clone(),
            base_url: format!(
                "https://{}{}",
                provider.domain,
                base_path.trim_end_matches('/')
            ),
            model: profile.role.model.clone(),
        },
        thinking_effort: Some(
            task.thinking_effort
                .clone()
                .unwrap_or_else(|| profile.role.thinking_effort.clone()),
        ),
        environment_description: profile.role.environment_description.clone(),
        max_continuations: task
            .max_continuations
            .unwrap_or(profile.role.max_continuations),
        max_context_tokens: task
            .max_context_tokens
            .unwrap_or(profile.role.max_context_tokens),
        uploads: task.uploads.clone(),
    }
}

async fn wait_for_agent(socket: &std::path::Path, uid: u32) -> Result<(), String> {
    let deadline = Instant::now() + AGENT_READY_TIMEOUT;
    let mut last = String::new();
    while Instant::now() < deadline {
        match agent_client::call(
            socket,
            uid,
            Method::GET,
            "/healthz",
            None,
            Duration::from_secs(2),
        )
        .await
        {
            Ok((status, _)) if status.is_success() => return Ok(()),
            Ok((status, _)) => last = format!("healthz answered {status}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!("agent_unreachable: {last}"))
}

/// Long-polls the agent's event log and hands each page to the actor,
/// moving on only once the actor has committed it.
async fn pump(socket: PathBuf, uid: u32, mut after: u64, out: mpsc::Sender<EventBatch>) {
    loop {
        let path = format!("/events?after={after}&wait={EVENTS_WAIT_SECONDS}");
        let timeout = Duration::from_secs(EVENTS_WAIT_SECONDS + 10);
        let page = match agent_client::call(&socket, uid, Method::GET, &path, None, timeout).await {
            Ok((status, body)) if status.is_success() => {
                serde_json::from_slice::<EventsPage>(&body)
            }
            Ok((status, _)) => {
                tracing::debug!(%status, "agent events answered an error");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(AgentCallError::Timeout) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "agent events unreachable");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let Ok(page) = page else {
            tracing::warn!("agent sent a malformed events page");
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let events = events::contiguous(after, page.events);
        let Some(last) = events.last().map(|e| e.seq) else {
            continue;
        };
        let (ack, committed) = oneshot::channel();
        if out.send((events, ack)).await.is_err() {
            return;
        }
        match committed.await {
            Ok(true) => after = last,
            Ok(false) => tokio::time::sleep(Duration::from_millis(500)).await,
            Err(_) => return,
        }
    }
}
