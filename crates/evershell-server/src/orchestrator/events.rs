//! Agent events become audit rows and task state. The agent runs inside
//! the sandbox and is not trusted: its events are recorded as `actor:
//! agent` rows, size-capped, and only ever move a task forward.

use chrono::{DateTime, Utc};

/// The events of `page` that continue the log after `after` without a
/// gap; ingestion stops at the first gap or jump, so a forged sequence
/// number cannot make the control plane skip genuine events.
pub fn contiguous(after: u64, page: Vec<AgentEvent>) -> Vec<AgentEvent> {
    let mut out = Vec::new();
    let fresh = page.into_iter().skip_while(|e| e.seq <= after);
    for (expected, event) in (after + 1..).zip(fresh) {
        if event.seq != expected {
            tracing::warn!(
                expected,
                found = event.seq,
                "agent event log has a gap; stopping there"
            );
            break;
        }
        out.push(event);
    }
    out
}
use evershell_core::agent::AgentEvent;
use evershell_core::model::{task_status, Task};
use evershell_core::{AuditEvent, EventType};

/// Largest `detail` kept from one agent event.
const MAX_DETAIL_BYTES: usize = 64 * 1024;

/// Who the rows of a workspace are attributed to and named after.
pub struct RowContext<'a> {
    pub org_id: &'a str,
    pub workspace_id: &'a str,
    pub user_id: &'a str,
    pub role_name: &'a str,
    pub provider_name: &'a str,
}

impl RowContext<'_> {
    /// A workspace-scoped row of `event`, stamped now.
    pub fn row(&self, event: EventType, task_id: Option<&str>) -> AuditEvent {
        let mut row = AuditEvent::new(event, self.org_id, self.user_id);
        row.workspace_id = Some(self.workspace_id.to_string());
        row.task_id = task_id.map(str::to_string);
        row.agent_role = Some(self.role_name.to_string());
        row.agent_provider = Some(self.provider_name.to_string());
        row
    }
}

/// The agent event types the control plane accepts.
fn agent_event_type(name: &str) -> Option<EventType> {
    use EventType::*;
    EventType::parse(name).filter(|t| {
        matches!(
            t,
            SessionStarted
                | SessionReset
                | TaskStarted
                | IterationCompleted
                | ToolExecuted
                | CompactionStarted
                | CompactionCompleted
                | TaskCompleted
        )
    })
}

/// The audit row of one agent event, or `None` for an event type outside
/// the agent's part of the catalog (logged and dropped).
pub fn to_row(ctx: &RowContext<'_>, event: &AgentEvent) -> Option<AuditEvent> {
    let Some(kind) = agent_event_type(&event.event_type) else {
        tracing::warn!(workspace = %ctx.workspace_id, event_type = %event.event_type, "agent sent an unknown event type");
        return None;
    };
    // The row is stamped by the control plane when it commits it: the agent
    // could claim any time. Its own time is kept in the detail.
    let mut row = ctx.row(kind, event.task_id.as_deref());
    let mut detail = event.detail.clone();
    if serde_json::to_vec(&detail).map(|b| b.len()).unwrap_or(0) > MAX_DETAIL_BYTES {
        detail = serde_json::json!({ "truncated": true });
    }
    if let serde_json::Value::Object(map) = &mut detail {
        map.insert("seq".into(), event.seq.into());
        if DateTime::parse_from_rfc3339(&event.timestamp).is_ok() {
            map.insert("agent_timestamp".into(), event.timestamp.clone().into());
        }
    }
    row.detail = Some(detail);
    Some(row)
}

/// Moves `task` forward according to `event`; whether the task ended.
pub fn advance(task: &mut Task, event: &AgentEvent) -> bool {
    if task_status::is_terminal(&task.status) {
        return false;
    }
    let detail = &event.detail;
    let number = |key: &str| detail.get(key).and_then(serde_json::Value::as_u64);
    match event.event_type.as_str() {
        "task_started" => task.status = task_status::RUNNING.to_string(),
        "compaction_started" => task.status = task_status::COMPACTING.to_string(),
        "compaction_completed" => task.status = task_status::RUNNING.to_string(),
        "iteration_completed" => {
            task.iterations = number("iteration").unwrap_or(task.iterations + 1);
            task.input_tokens += number("input_tokens").unwrap_or(0);
            task.output_tokens += number("output_tokens").unwrap_or(0);
        }
        "task_completed" => {
            let status = detail
                .get("status")
                .and_then(|v| v.as_str())
                .unwrap_or(task_status::FAILED);
            let status = match status {
                task_status::COMPLETED | task_status::CANCELLED => status,
                _ => task_status::FAILED,
            };
            finish(
                task,
                status,
                detail
                    .get("reason")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
            );
            task.result = detail
                .get("result")
                .and_then(|v| v.as_str())
                .map(|r| truncate(r, 4096));
            task.iterations = number("iterations").unwrap_or(task.iterations);
            task.input_tokens = number("input_tokens").unwrap_or(task.input_tokens);
            task.output_tokens = number("output_tokens").unwrap_or(task.output_tokens);
            return true;
        }
        _ => {}
    }
    false
}

/// Ends `task` with `status` and `reason`, stamping its completion time.
pub fn finish(task: &mut Task, status: &str, reason: Option<String>) {
    let now = Utc::now();
    task.status = status.to_string();
    task.reason = reason.filter(|r| !r.is_empty());
    task.completed_at = Some(now);
    task.duration_seconds = Some((now - task.created_at).num_milliseconds() as f64 / 1000.0);
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> AgentEvent {
        AgentEvent {
            seq,
            timestamp: "2026-01-01T00:00:00Z".into(),
            event_type: "tool_executed".into(),
            task_id: None,
            detail: serde_json::json!({}),
        }
    }

    #[test]
    fn a_forged_sequence_jump_stops_ingestion_at_the_gap() {
        let page = vec![event(3), event(4), event(5), event(1_000_000), event(6)];
        let kept: Vec<u64> = contiguous(3, page).iter().map(|e| e.seq).collect();
        assert_eq!(kept, vec![4, 5]);
        assert!(contiguous(3, vec![event(7)]).is_empty());
    }
}
