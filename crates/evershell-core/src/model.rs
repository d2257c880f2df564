//! Domain resources as the API presents them and the store keeps them.
//! Field names and enum values follow the documented API exactly.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An LLM provider: where the agent's model lives and which credential the
/// proxy injects on calls to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Provider {
    pub id: String,
    pub org_id: String,
    pub name: String,
    /// `anthropic | openai | gemini | vertex | azure-openai`.
    pub kind: String,
    pub display_name: String,
    pub domain: String,
    pub credential_name: String,
    pub default_model: String,
    /// Extra caps.yaml the provider contributes besides `_provider`.
    pub capabilities: String,
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Path prefix of OpenAI-compatible servers (`/v1` when absent).
    pub base_path: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
}

/// The provider kinds the platform knows.
pub const PROVIDER_KINDS: &[&str] = &["anthropic", "openai", "gemini", "vertex", "azure-openai"];

/// An agent role: what a workspace's agent is, which model it calls and what
/// it may reach.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentRole {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub provider_id: String,
    pub model: String,
    pub capabilities: String,
    /// `development | staging | production`.
    pub environment: String,
    pub environment_description: String,
    pub task_timeout_seconds: u64,
    pub idle_timeout_seconds: u64,
    /// `high | medium | low | off`.
    pub thinking_effort: String,
    pub max_continuations: u32,
    pub max_context_tokens: u64,
    /// `"" | static | dynamic`.
    pub pool_policy: String,
    pub pool_size: u32,
    pub pool_max_size: u32,
    pub pack_ids: Vec<String>,
    pub resources: Resources,
    pub extra_ports: Vec<u16>,
    pub image: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
}

/// Sandbox limits of a role's workspaces.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub memory_mb: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<u64>,
    pub disk_mb: Option<u64>,
}

/// A typed credential record. The secret value itself is never part of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Credential {
    pub id: String,
    pub org_id: String,
    pub user_id: Option<String>,
    pub name: String,
    pub provider: String,
    pub kind: String,
    pub scopes: Vec<String>,
    pub durable_ref: String,
    pub provider_config: serde_json::Map<String, serde_json::Value>,
    pub last_minted_at: Option<DateTime<Utc>>,
    pub last_minted_status: Option<String>,
    pub allow_user_override: bool,
    /// `active | needs_reauth | failed | revoked`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One isolated runtime for one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Workspace {
    pub id: String,
    pub org_id: String,
    pub role_id: String,
    pub environment: String,
    pub status: String,
    pub created_by_user_id: String,
    pub snapshot_ref: Option<String>,
    pub last_snapshot_error: Option<String>,
    pub parent_workspace_id: Option<String>,
    pub fork_source_snapshot_ref: Option<String>,
    pub fork_point_task_count: Option<u64>,
    /// `current | stale | unknown`, computed on read.
    pub pack_status: String,
    pub policy_version: Option<String>,
    pub task_count: u64,
    pub last_activity_at: Option<DateTime<Utc>>,
    /// Why the workspace is `failed`, when it is.
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub archived_at: Option<DateTime<Utc>>,
}

/// Workspace states.
pub mod workspace_status {
    pub const PROVISIONING: &str = "provisioning";
    pub const IDLE: &str = "idle";
    pub const BUSY: &str = "busy";
    pub const STOPPING: &str = "stopping";
    pub const STOPPED: &str = "stopped";
    pub const FAILED: &str = "failed";
}

/// One unit of work given to a workspace's agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Task {
    pub id: String,
    pub org_id: String,
    pub workspace_id: String,
    pub description: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<f64>,
    pub reason: Option<String>,
    pub result: Option<String>,
    pub iterations: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    pub created_by_user_id: String,
    pub reset_session: bool,
    pub thinking_effort: Option<String>,
    pub max_continuations: Option<u32>,
    pub max_context_tokens: Option<u64>,
    /// File names uploaded with the task (stored under `/data/uploads/<id>/`).
    pub uploads: Vec<String>,
}

/// Task states.
pub mod task_status {
    pub const SUBMITTED: &str = "submitted";
    pub const DELIVERED: &str = "delivered";
    pub const RUNNING: &str = "running";
    pub const COMPACTING: &str = "compacting";
    pub const COMPLETED: &str = "completed";
    pub const FAILED: &str = "failed";
    pub const CANCELLED: &str = "cancelled";
    pub const DELIVERY_FAILED: &str = "delivery_failed";

    /// Whether a task in `status` will never change again.
    pub fn is_terminal(status: &str) -> bool {
        matches!(status, COMPLETED | FAILED | CANCELLED | DELIVERY_FAILED)
    }
}
