//! `GET /session`: the session as the control plane shows it — task history,
//! counters and context-window use, not the conversation itself.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::context::Ctx;
use crate::session::Session;

/// `{session_id, started_at, message_count, context_tokens,
/// max_context_tokens, iterations, input_tokens, output_tokens,
/// current_task, tasks}`; ids and times are null before the first task.
pub async fn view(State(ctx): State<Arc<Ctx>>) -> Json<Value> {
    Json(ctx.session.read(|session| match session {
        Some(session) => describe(session),
        None => json!({
            "session_id": null, "started_at": null, "message_count": 0, "context_tokens": 0,
            "max_context_tokens": null, "iterations": 0, "input_tokens": 0, "output_tokens": 0,
            "current_task": null, "tasks": [],
        }),
    }))
}

fn describe(session: &Session) -> Value {
    let all = || session.tasks.iter().chain(&session.current_task);
    let latest = session.current_task.as_ref().or(session.tasks.last());
    json!({
        "session_id": session.session_id,
        "started_at": session.started_at,
        "message_count": session.messages.len(),
        "context_tokens": session.context_tokens,
        "max_context_tokens": latest.map(|t| t.max_context_tokens),
        "iterations": all().map(|t| u64::from(t.iterations)).sum::<u64>(),
        "input_tokens": all().map(|t| t.input_tokens).sum::<u64>(),
        "output_tokens": all().map(|t| t.output_tokens).sum::<u64>(),
        "current_task": session.current_task,
        "tasks": session.tasks,
    })
}
