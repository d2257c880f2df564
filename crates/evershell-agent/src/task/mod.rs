//! A task's life in the agent: delivery (`POST /tasks`), the run, cancellation
//! and the end that every task reaches exactly once — `task_completed` with
//! `completed`, `failed` or `cancelled` — even across an agent restart.
//!
//! Decisions:
//! - One task at a time. A delivery while another task runs is refused
//!   (`409 workspace_busy`); redelivering the running task's id is accepted
//!   again (`202`), so the control plane may retry a delivery whose answer it
//!   lost. A task id that already ran in this session is refused
//!   (`409 invalid_state`).
//! - `task_started` (and `session_started`/`session_reset` before it) is
//!   durable before the `202`.
//! - Reaching `max_continuations` model calls with the model still asking for
//!   tools ends the task `failed`, reason `max_continuations`: the model did
//!   not finish its turn, though its work so far stays in the workspace and
//!   the session.
//! - A task found running when the agent starts (it died or was stopped
//!   mid-task) ends `failed` with reason `agent_restarted`; the session keeps
//!   every iteration that completed.

mod prompt;
mod run;

use std::sync::Arc;

use evershell_core::agent::TaskDelivery;
use evershell_core::EventType;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::context::{Ctx, RunningTask};
use crate::events::EventLogError;
use crate::model::{Provider, ThinkingEffort};
use crate::session::{now, Session, SessionError, TaskRecord, TaskStatus};

/// The reason of a task that a restart interrupted.
pub const REASON_AGENT_RESTARTED: &str = "agent_restarted";

/// How a delivery was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    Started,
    /// The same task id is already running; nothing changed.
    AlreadyRunning,
}

/// Why a delivery was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("task {task_id}: {reason}")]
    Invalid { task_id: String, reason: String },
    #[error("task {task_id}: task {running} is running")]
    Busy { task_id: String, running: String },
    #[error("task {task_id}: already ran in this session")]
    AlreadyRan { task_id: String },
    #[error("task {task_id}: cannot record its start")]
    State {
        task_id: String,
        #[source]
        source: StateError,
    },
}

/// A failure of the agent's durable state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Events(#[from] EventLogError),
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// A `POST /tasks/{id}/cancel` for a task that is not running.
#[derive(Debug, thiserror::Error)]
#[error("task {task_id}: not running")]
pub struct NotRunning {
    pub task_id: String,
}

/// What the runner needs beyond the delivery, checked before acceptance.
struct Plan {
    provider: Provider,
    effort: ThinkingEffort,
}

/// Takes a delivery: checks it, records the start (session, events) and
/// spawns the run.
#[tracing::instrument(skip_all, fields(task = %delivery.task_id))]
pub async fn submit(ctx: &Arc<Ctx>, delivery: TaskDelivery) -> Result<Submitted, SubmitError> {
    let plan = check(&delivery)?;
    let task_id = delivery.task_id.clone();
    let mut running = ctx.running.lock().await;
    if let Some(current) = running.as_ref() {
        if current.task_id == task_id {
            return Ok(Submitted::AlreadyRunning);
        }
        return Err(SubmitError::Busy {
            task_id,
            running: current.task_id.clone(),
        });
    }
    let ran = ctx
        .session
        .read(|s| s.is_some_and(|s| s.tasks.iter().any(|t| t.task_id == task_id)));
    if ran {
        return Err(SubmitError::AlreadyRan { task_id });
    }

    begin(ctx, &delivery)
        .await
        .map_err(|source| SubmitError::State {
            task_id: task_id.clone(),
            source,
        })?;

    let cancel = CancellationToken::new();
    let handle = tokio::spawn(run::run(
        Arc::clone(ctx),
        delivery,
        plan.provider,
        plan.effort,
        cancel.clone(),
    ));
    *running = Some(RunningTask {
        task_id,
        cancel,
        handle,
    });
    tracing::info!("task started");
    Ok(Submitted::Started)
}

/// Asks the running task `task_id` to stop at the end of its iteration.
pub async fn cancel(ctx: &Ctx, task_id: &str) -> Result<(), NotRunning> {
    let running = ctx.running.lock().await;
    match running.as_ref() {
        Some(current) if current.task_id == task_id => {
            tracing::info!(task = task_id, "task cancel requested");
            current.cancel.cancel();
            Ok(())
        }
        _ => Err(NotRunning {
            task_id: task_id.to_owned(),
        }),
    }
}

/// At start: ends a task the previous agent process left running. When the
/// log already holds its `task_completed` (the process died between logging
/// the end and writing the session), the session is brought up to date from
/// it and nothing is emitted twice.
pub async fn recover(ctx: &Ctx) -> Result<(), StateError> {
    let current = ctx.session.read(|s| s.and_then(|s| s.current_task.clone()));
    let Some(current) = current else {
        return Ok(());
    };
    let _slot = ctx.running.lock().await;
    let logged = ctx.events.find_last(|e| {
        e.event_type == EventType::TaskCompleted.as_str()
            && e.task_id.as_deref() == Some(current.task_id.as_str())
    });
    if let Some(event) = logged {
        let status = TaskStatus::parse(event.detail["status"].as_str().unwrap_or_default());
        let reason = event.detail["reason"].as_str().map(str::to_owned);
        tracing::info!(task = %current.task_id, "task end found in the event log");
        close_current(ctx, status.unwrap_or(TaskStatus::Failed), reason);
        ctx.session.persist().await?;
        return Ok(());
    }
    tracing::warn!(task = %current.task_id, "task interrupted by an agent restart");
    finish(
        ctx,
        TaskStatus::Failed,
        Some(REASON_AGENT_RESTARTED.into()),
        String::new(),
    )
    .await
}

/// Records the end of the current task (see [`finish`]) and frees the slot
/// for the next delivery.
async fn end(ctx: &Ctx, status: TaskStatus, reason: Option<String>, result: String) {
    let mut running = ctx.running.lock().await;
    if let Err(error) = finish(ctx, status, reason, result).await {
        tracing::error!(error = %crate::error::Report(&error), "cannot record the end of a task");
    }
    *running = None;
}

fn check(delivery: &TaskDelivery) -> Result<Plan, SubmitError> {
    let invalid = |reason: String| SubmitError::Invalid {
        task_id: delivery.task_id.clone(),
        reason,
    };
    if delivery.task_id.is_empty() {
        return Err(invalid("task_id must not be empty".into()));
    }
    let Some(provider) = Provider::from_kind(&delivery.model.provider_kind) else {
        return Err(invalid(format!(
            "provider kind {:?} is not supported (anthropic, openai)",
            delivery.model.provider_kind
        )));
    };
    let Some(effort) = ThinkingEffort::parse(delivery.thinking_effort.as_deref()) else {
        return Err(invalid(
            "thinking_effort must be high, medium, low or off".into(),
        ));
    };
    if delivery.max_continuations == 0 {
        return Err(invalid("max_continuations must be at least 1".into()));
    }
    Ok(Plan { provider, effort })
}

/// Opens the session (fresh on `reset_session` or when there is none), adds
/// the task's message and record, and emits the start events.
async fn begin(ctx: &Ctx, delivery: &TaskDelivery) -> Result<(), StateError> {
    let previous = ctx.session.read(|s| s.cloned());
    let (mut session, events) = match previous {
        Some(previous) if !delivery.reset_session => (previous, Vec::new()),
        previous => {
            let session = Session::new();
            let mut events = Vec::new();
            if let Some(previous) = previous {
                let detail = json!({
                    "previous_session_id": previous.session_id,
                    "session_id": session.session_id,
                    "dropped_messages": previous.messages.len(),
                });
                events.push((EventType::SessionReset, detail));
            }
            events.push((
                EventType::SessionStarted,
                json!({"session_id": session.session_id}),
            ));
            (session, events)
        }
    };

    session.messages.push(crate::conversation::Message::User {
        text: prompt::task_message(delivery),
    });
    session.current_task = Some(TaskRecord {
        task_id: delivery.task_id.clone(),
        status: TaskStatus::Running,
        reason: None,
        provider_kind: delivery.model.provider_kind.clone(),
        model: delivery.model.model.clone(),
        max_continuations: delivery.max_continuations,
        max_context_tokens: delivery.max_context_tokens,
        iterations: 0,
        input_tokens: 0,
        output_tokens: 0,
        started_at: now(),
        completed_at: None,
    });
    let session_id = session.session_id.clone();
    ctx.session.commit(session).await?;

    let task_id = Some(delivery.task_id.as_str());
    for (event_type, detail) in events {
        ctx.events.append(event_type, task_id, detail).await?;
    }
    let detail = json!({
        "session_id": session_id,
        "provider_kind": delivery.model.provider_kind,
        "model": delivery.model.model,
        "thinking_effort": delivery.thinking_effort.as_deref().unwrap_or("off"),
        "max_continuations": delivery.max_continuations,
        "uploads": delivery.uploads.len(),
    });
    ctx.events
        .append(EventType::TaskStarted, task_id, detail)
        .await?;
    Ok(())
}

/// Moves the current task to the history with its final status, emits
/// `task_completed` with its totals, then writes the session. The event comes
/// first so that a crash in between is repaired by [`recover`], never lost.
/// The caller holds the running slot.
async fn finish(
    ctx: &Ctx,
    status: TaskStatus,
    reason: Option<String>,
    result: String,
) -> Result<(), StateError> {
    let Some(record) = close_current(ctx, status, reason) else {
        return Ok(());
    };
    let detail = json!({
        "status": status.as_str(),
        "reason": record.reason,
        "result": result,
        "iterations": record.iterations,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
    });
    ctx.events
        .append(EventType::TaskCompleted, Some(&record.task_id), detail)
        .await?;
    ctx.session.persist().await?;
    tracing::info!(
        task = %record.task_id,
        status = status.as_str(),
        reason = ?record.reason,
        "task completed"
    );
    Ok(())
}

/// Moves the current task record to the history (in memory) and returns it.
fn close_current(ctx: &Ctx, status: TaskStatus, reason: Option<String>) -> Option<TaskRecord> {
    let record = ctx.session.update(|s| {
        let mut record = s.current_task.take()?;
        record.status = status;
        record.reason = reason;
        record.completed_at = Some(now());
        s.tasks.push(record.clone());
        Some(record)
    });
    record.flatten()
}
