//! The audit row: one immutable record of something that happened in an org
//! (a configuration change, a proxy decision, a lifecycle step, an agent
//! event). Every row has every column; most are empty for most events.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A row of the audit log, exactly the documented columns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEvent {
    pub id: String,
    pub org_id: String,
    /// The acting user; `system` for API keys and automatic events; for proxy
    /// and agent events, the workspace's creator.
    pub user_id: String,
    /// Set where the event happened, microsecond precision.
    #[serde(with = "micros")]
    #[schemars(with = "DateTime<Utc>")]
    pub timestamp: DateTime<Utc>,
    pub event_type: String,
    pub category: String,
    pub actor: String,
    pub workspace_id: Option<String>,
    pub task_id: Option<String>,
    pub agent_role: Option<String>,
    pub agent_provider: Option<String>,
    pub destination: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub latency_ms: Option<i64>,
    pub transforms_applied: Option<i64>,
    pub validations_applied: Option<i64>,
    pub capability_name: Option<String>,
    pub phase: Option<String>,
    pub policy_type: Option<String>,
    pub debits: Option<BTreeMap<String, i64>>,
    pub budgets: Option<BTreeMap<String, i64>>,
    pub ceilings: Option<BTreeMap<String, String>>,
    pub minted: Option<Vec<String>>,
    pub auth_failures: Option<BTreeMap<String, String>>,
    pub transforms_failed: Option<BTreeMap<String, String>>,
    pub status_code: Option<i64>,
    pub bytes_in: Option<i64>,
    pub bytes_out: Option<i64>,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    pub summary: Option<String>,
    pub detail: Option<serde_json::Value>,
}

impl AuditEvent {
    /// A row of `event_type` in `org_id`, stamped now, with the category and
    /// actor the catalog assigns to that event type.
    pub fn new(event_type: EventType, org_id: &str, user_id: &str) -> AuditEvent {
        AuditEvent {
            id: crate::id::new_audit_id().to_string(),
            org_id: org_id.to_string(),
            user_id: user_id.to_string(),
            timestamp: Utc::now(),
            event_type: event_type.as_str().to_string(),
            category: event_type.category().as_str().to_string(),
            actor: event_type.actor().as_str().to_string(),
            ..AuditEvent::default()
        }
    }
}

/// Serialises timestamps as RFC 3339 with exactly six fractional digits.
mod micros {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// Where a sink accepts audit rows. `record` resolves once the row is durable
/// (committed to the store); a caller that must not act before its row is
/// safe (a proxy deny) awaits it.
pub trait AuditSink: Send + Sync {
    fn record(
        &self,
        event: AuditEvent,
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + '_>>;
}

/// The audit store could not take a row; callers fail closed.
#[derive(Debug, thiserror::Error)]
#[error("audit store unavailable: {0}")]
pub struct AuditError(pub String);

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

string_enum!(
    /// `audit` (configuration, credentials, policy decisions) or `activity`
    /// (workspace, task and agent lifecycle).
    Category { Audit => "audit", Activity => "activity" }
);

string_enum!(
    /// Who emitted a row.
    Actor { ControlPlane => "control-plane", PolicyEngine => "policy-engine", Agent => "agent" }
);

string_enum!(
    /// A proxy decision.
    Decision { Allow => "allow", Deny => "deny" }
);

string_enum!(
    /// Where in a request the proxy took its decision.
    Phase {
        RequestHeaders => "request_headers",
        RequestBody => "request_body",
        ResponseHeaders => "response_headers",
        ResponseBody => "response_body",
        Dns => "dns",
    }
);

string_enum!(
    /// Which policy a proxy row concerns.
    PolicyType { Http => "http", Dns => "dns" }
);

string_enum!(
    /// The closed catalog of audit event types.
    EventType {
        PolicyDecision => "policy_decision",
        ProviderCreated => "provider_created",
        ProviderUpdated => "provider_updated",
        ProviderArchived => "provider_archived",
        ProviderUnarchived => "provider_unarchived",
        ProviderDeleted => "provider_deleted",
        AgentRoleCreated => "agent_role_created",
        AgentRoleUpdated => "agent_role_updated",
        AgentRoleArchived => "agent_role_archived",
        AgentRoleUnarchived => "agent_role_unarchived",
        AgentRoleDeleted => "agent_role_deleted",
        PackCreated => "pack_created",
        PackUpdated => "pack_updated",
        PackFileReplaced => "pack_file_replaced",
        PackVisibilityChanged => "pack_visibility_changed",
        PackCloned => "pack_cloned",
        PackDeleted => "pack_deleted",
        CredentialCreated => "credential_created",
        CredentialDeleted => "credential_deleted",
        CredentialStatusChanged => "credential_status_changed",
        CredentialOauthStarted => "credential_oauth_started",
        SecretCreated => "secret_created",
        SecretDeleted => "secret_deleted",
        ApiKeyCreated => "api_key_created",
        ApiKeyRevoked => "api_key_revoked",
        MemberInvited => "member_invited",
        MemberJoined => "member_joined",
        MemberRoleChanged => "member_role_changed",
        MemberRemoved => "member_removed",
        InvitationRevoked => "invitation_revoked",
        WorkspaceCreated => "workspace_created",
        WorkspaceProvisioned => "workspace_provisioned",
        WorkspaceClaimed => "workspace_claimed",
        WorkspaceStopping => "workspace_stopping",
        WorkspaceStopped => "workspace_stopped",
        WorkspaceResumed => "workspace_resumed",
        WorkspaceRestarted => "workspace_restarted",
        WorkspaceFailed => "workspace_failed",
        WorkspaceArchived => "workspace_archived",
        WorkspaceUnarchived => "workspace_unarchived",
        WorkspaceForked => "workspace_forked",
        SnapshotTaken => "snapshot_taken",
        SnapshotFailed => "snapshot_failed",
        TaskSubmitted => "task_submitted",
        TaskDelivered => "task_delivered",
        TaskDeliveryFailed => "task_delivery_failed",
        TaskCancelRequested => "task_cancel_requested",
        SessionStarted => "session_started",
        SessionReset => "session_reset",
        TaskStarted => "task_started",
        IterationCompleted => "iteration_completed",
        ToolExecuted => "tool_executed",
        CompactionStarted => "compaction_started",
        CompactionCompleted => "compaction_completed",
        TaskCompleted => "task_completed",
    }
);

impl EventType {
    pub fn category(self) -> Category {
        let name = self.as_str();
        let activity = name.starts_with("workspace_")
            || name.starts_with("snapshot_")
            || name.starts_with("task_")
            || name.starts_with("session_")
            || matches!(
                self,
                EventType::IterationCompleted
                    | EventType::ToolExecuted
                    | EventType::CompactionStarted
                    | EventType::CompactionCompleted
            );
        if activity {
            Category::Activity
        } else {
            Category::Audit
        }
    }

    pub fn actor(self) -> Actor {
        use EventType::*;
        match self {
            PolicyDecision => Actor::PolicyEngine,
            SessionStarted | SessionReset | TaskStarted | IterationCompleted | ToolExecuted
            | CompactionStarted | CompactionCompleted | TaskCompleted => Actor::Agent,
            _ => Actor::ControlPlane,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_assigns_documented_category_and_actor() {
        assert_eq!(EventType::PolicyDecision.category(), Category::Audit);
        assert_eq!(EventType::PolicyDecision.actor(), Actor::PolicyEngine);
        assert_eq!(EventType::TaskCompleted.category(), Category::Activity);
        assert_eq!(EventType::TaskCompleted.actor(), Actor::Agent);
        assert_eq!(EventType::TaskSubmitted.actor(), Actor::ControlPlane);
        assert_eq!(EventType::SnapshotTaken.category(), Category::Activity);
        assert_eq!(EventType::SecretCreated.category(), Category::Audit);
    }

    #[test]
    fn timestamps_serialise_with_microseconds() {
        let row = AuditEvent::new(EventType::PolicyDecision, "org_1", "system");
        let json = serde_json::to_value(&row).expect("row serialises");
        let ts = json["timestamp"].as_str().expect("timestamp is a string");
        assert_eq!(ts.len(), "2026-01-01T00:00:00.000000Z".len(), "{ts}");
    }
}
