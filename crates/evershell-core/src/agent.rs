//! The contract between the control plane and the agent service inside a
//! workspace. The agent listens on a Unix socket that the runtime exposes
//! outside the sandbox; these are the JSON bodies of its routes.

use serde::{Deserialize, Serialize};

/// `POST /tasks`: one task handed to the agent, with the role snapshot it
/// needs to run it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDelivery {
    pub task_id: String,
    pub description: String,
    /// Start a fresh conversation instead of continuing the session.
    #[serde(default)]
    pub reset_session: bool,
    pub model: ModelTarget,
    #[serde(default)]
    pub thinking_effort: Option<String>,
    #[serde(default)]
    pub environment_description: String,
    /// Upper bound of model calls in this task.
    pub max_continuations: u32,
    pub max_context_tokens: u64,
    /// Files uploaded with the task, relative to `/data/uploads/<task_id>/`.
    #[serde(default)]
    pub uploads: Vec<String>,
}

/// Where and how the agent calls its model. The agent sends no credential:
/// the egress proxy adds it on the way out.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelTarget {
    /// Provider kind: `anthropic`, `openai`, …
    pub provider_kind: String,
    /// `https://<provider domain>[/<base_path>]`, no trailing slash.
    pub base_url: String,
    pub model: String,
}

/// One entry of the agent's durable event log. `seq` starts at 1 and grows by
/// one per event; the control plane asks for events after the last `seq` it
/// committed, so none is lost or repeated across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentEvent {
    pub seq: u64,
    /// RFC 3339 with microseconds, when the agent emitted it.
    pub timestamp: String,
    /// One of the agent event types of the audit catalog.
    pub event_type: String,
    pub task_id: Option<String>,
    pub detail: serde_json::Value,
}

/// `GET /events?after=<seq>&wait=<s>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventsPage {
    pub events: Vec<AgentEvent>,
}

/// The terminal statuses of `task_completed`'s `detail.status`.
pub const TASK_COMPLETED: &str = "completed";
pub const TASK_FAILED: &str = "failed";
pub const TASK_CANCELLED: &str = "cancelled";
