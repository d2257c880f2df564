//! The loop of one task: call the model with the whole conversation, run the
//! tools it asks for, add the results, and again — until the model ends its
//! turn, `max_continuations` calls have been made, the model call fails, or a
//! cancellation arrives at an iteration boundary.
//!
//! An iteration is one model call and its tool calls. A cancellation lets the
//! model call finish, terminates a running tool (SIGTERM, SIGKILL after the
//! grace period), answers the calls not yet started with "not run", and ends
//! the task after that iteration, so the conversation stays well-formed for
//! the next task. The session is written after every iteration, before its
//! `iteration_completed` event.

use std::sync::Arc;

use evershell_core::agent::TaskDelivery;
use evershell_core::EventType;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::prompt;
use crate::context::Ctx;
use crate::conversation::{Message, ToolResult};
use crate::model::{ModelRequest, ModelTurn, Provider, ThinkingEffort};
use crate::session::TaskStatus;
use crate::tools::{self, ToolSpec};

/// `task_completed.result` carries at most this many bytes of the final
/// assistant text.
const RESULT_LIMIT_BYTES: usize = 4096;

/// The reason of a task that used up its model calls mid-work.
const REASON_MAX_CONTINUATIONS: &str = "max_continuations";
const REASON_CANCELLED: &str = "cancel_requested";
const REASON_EVENT_LOG: &str = "event_log_failed";
const REASON_SESSION: &str = "session_write_failed";

/// One task's run.
struct Run {
    ctx: Arc<Ctx>,
    task: TaskDelivery,
    provider: Provider,
    effort: ThinkingEffort,
    system: String,
    tools: Vec<ToolSpec>,
    cancel: CancellationToken,
    /// The latest non-empty assistant text: the task's result.
    result: String,
}

/// After an iteration.
enum Next {
    Continue,
    EndTurn,
}

/// A tool call taken out of the assistant turn.
struct Call {
    id: String,
    name: String,
    input: Value,
}

/// Runs `task` to its end and records it.
#[tracing::instrument(skip_all, fields(task = %task.task_id))]
pub async fn run(
    ctx: Arc<Ctx>,
    task: TaskDelivery,
    provider: Provider,
    effort: ThinkingEffort,
    cancel: CancellationToken,
) {
    let system = prompt::system_prompt(&ctx.config.workdir, &task.environment_description);
    let mut run = Run {
        ctx,
        task,
        provider,
        effort,
        system,
        tools: tools::specs(),
        cancel,
        result: String::new(),
    };
    let (status, reason) = run.drive().await;
    let result = truncate(&run.result, RESULT_LIMIT_BYTES).to_owned();
    super::end(&run.ctx, status, reason, result).await;
}

impl Run {
    async fn drive(&mut self) -> (TaskStatus, Option<String>) {
        for iteration in 1..=self.task.max_continuations {
            if self.cancel.is_cancelled() {
                return (TaskStatus::Cancelled, Some(REASON_CANCELLED.into()));
            }
            match self.iteration(iteration).await {
                Ok(Next::Continue) => {}
                Ok(Next::EndTurn) => return (TaskStatus::Completed, None),
                Err(reason) => return (TaskStatus::Failed, Some(reason)),
            }
        }
        if self.cancel.is_cancelled() {
            return (TaskStatus::Cancelled, Some(REASON_CANCELLED.into()));
        }
        (TaskStatus::Failed, Some(REASON_MAX_CONTINUATIONS.into()))
    }

    /// One model call and its tools; `Err` is the reason the task fails.
    async fn iteration(&mut self, iteration: u32) -> Result<Next, String> {
        let started = Instant::now();
        let turn = self.call_model().await?;
        let calls: Vec<Call> = turn
            .message
            .tool_calls()
            .iter()
            .map(|c| Call {
                id: c.id.to_owned(),
                name: c.name.to_owned(),
                input: c.input.clone(),
            })
            .collect();
        let text = turn.message.text();
        if !text.is_empty() {
            self.result = text;
        }
        self.record_turn(&turn);

        let results = self.run_tools(iteration, &calls).await?;
        if !results.is_empty() {
            self.ctx
                .session
                .update(|s| s.messages.push(Message::ToolResults { results }));
        }
        self.ctx.session.persist().await.map_err(|error| {
            tracing::error!(error = %crate::error::Report(&error), "cannot write the session");
            REASON_SESSION.to_owned()
        })?;

        let detail = json!({
            "iteration": iteration,
            "model": self.task.model.model,
            "stop_reason": turn.stop_reason,
            "tools": calls.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            "input_tokens": turn.input_tokens,
            "output_tokens": turn.output_tokens,
            "duration_ms": elapsed_ms(started),
        });
        self.emit(EventType::IterationCompleted, detail).await?;
        Ok(if calls.is_empty() {
            Next::EndTurn
        } else {
            Next::Continue
        })
    }

    async fn call_model(&self) -> Result<ModelTurn, String> {
        let messages = self
            .ctx
            .session
            .read(|s| s.map(|s| s.messages.clone()).unwrap_or_default());
        let request = ModelRequest {
            target: &self.task.model,
            system: &self.system,
            messages: &messages,
            tools: &self.tools,
            effort: self.effort,
        };
        self.ctx
            .model
            .complete(self.provider, &request)
            .await
            .map_err(|error| {
                let reason = error.reason();
                tracing::warn!(error = %crate::error::Report(&error), %reason, "model call failed");
                reason
            })
    }

    /// Adds the assistant turn to the conversation and its tokens to the
    /// task's counters.
    fn record_turn(&self, turn: &ModelTurn) {
        self.ctx.session.update(|s| {
            s.messages.push(turn.message.clone());
            s.context_tokens = turn.input_tokens;
            if let Some(task) = s.current_task.as_mut() {
                task.iterations += 1;
                task.input_tokens += turn.input_tokens;
                task.output_tokens += turn.output_tokens;
            }
        });
    }

    /// Runs the calls in order; after a cancellation, answers the remaining
    /// ones without running them.
    async fn run_tools(&self, iteration: u32, calls: &[Call]) -> Result<Vec<ToolResult>, String> {
        let mut results = Vec::with_capacity(calls.len());
        for call in calls {
            if self.cancel.is_cancelled() {
                results.push(ToolResult {
                    call_id: call.id.clone(),
                    content: "not run: the task was cancelled".into(),
                    is_error: true,
                });
                continue;
            }
            let started = Instant::now();
            let outcome =
                tools::execute(&self.ctx.tools, &call.name, &call.input, &self.cancel).await;
            tracing::debug!(tool = %call.name, exit_code = outcome.exit_code, "tool executed");
            let detail = json!({
                "iteration": iteration,
                "tool": call.name,
                "exit_code": outcome.exit_code,
                "duration_ms": elapsed_ms(started),
            });
            self.emit(EventType::ToolExecuted, detail).await?;
            results.push(ToolResult {
                call_id: call.id.clone(),
                content: outcome.content,
                is_error: outcome.is_error,
            });
        }
        Ok(results)
    }

    async fn emit(&self, event_type: EventType, detail: Value) -> Result<(), String> {
        match self
            .ctx
            .events
            .append(event_type, Some(&self.task.task_id), detail)
            .await
        {
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::error!(error = %crate::error::Report(&error), "cannot append an event");
                Err(REASON_EVENT_LOG.to_owned())
            }
        }
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// `text` cut to at most `limit` bytes on a character boundary.
fn truncate(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncates_on_a_character_boundary() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("hi", 4096), "hi");
    }
}
