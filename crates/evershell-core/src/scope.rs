//! Scopes: `<resource>:<verb>[:own]`, the closed set callers are granted.

use serde::{Deserialize, Serialize};

/// One scope of the closed set. `:own` variants narrow a route to rows the
/// caller created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "caps:write")]
    CapsWrite,
    #[serde(rename = "workspace:read")]
    WorkspaceRead,
    #[serde(rename = "workspace:read:own")]
    WorkspaceReadOwn,
    #[serde(rename = "workspace:write")]
    WorkspaceWrite,
    #[serde(rename = "workspace:write:own")]
    WorkspaceWriteOwn,
    #[serde(rename = "tasks:write")]
    TasksWrite,
    #[serde(rename = "tasks:write:own")]
    TasksWriteOwn,
    #[serde(rename = "audit:read")]
    AuditRead,
    #[serde(rename = "audit:read:own")]
    AuditReadOwn,
    #[serde(rename = "members:read")]
    MembersRead,
    #[serde(rename = "members:read:own")]
    MembersReadOwn,
    #[serde(rename = "members:write")]
    MembersWrite,
    #[serde(rename = "auth:write")]
    AuthWrite,
    #[serde(rename = "auth:write:own")]
    AuthWriteOwn,
    #[serde(rename = "secrets:write")]
    SecretsWrite,
    #[serde(rename = "apikeys:write")]
    ApikeysWrite,
    #[serde(rename = "billing:write")]
    BillingWrite,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CapsWrite => "caps:write",
            Scope::WorkspaceRead => "workspace:read",
            Scope::WorkspaceReadOwn => "workspace:read:own",
            Scope::WorkspaceWrite => "workspace:write",
            Scope::WorkspaceWriteOwn => "workspace:write:own",
            Scope::TasksWrite => "tasks:write",
            Scope::TasksWriteOwn => "tasks:write:own",
            Scope::AuditRead => "audit:read",
            Scope::AuditReadOwn => "audit:read:own",
            Scope::MembersRead => "members:read",
            Scope::MembersReadOwn => "members:read:own",
            Scope::MembersWrite => "members:write",
            Scope::AuthWrite => "auth:write",
            Scope::AuthWriteOwn => "auth:write:own",
            Scope::SecretsWrite => "secrets:write",
            Scope::ApikeysWrite => "apikeys:write",
            Scope::BillingWrite => "billing:write",
        }
    }

    /// The unscoped form of an `:own` scope (itself for unscoped ones).
    pub fn unscoped(self) -> Scope {
        match self {
            Scope::WorkspaceReadOwn => Scope::WorkspaceRead,
            Scope::WorkspaceWriteOwn => Scope::WorkspaceWrite,
            Scope::TasksWriteOwn => Scope::TasksWrite,
            Scope::AuditReadOwn => Scope::AuditRead,
            Scope::MembersReadOwn => Scope::MembersRead,
            Scope::AuthWriteOwn => Scope::AuthWrite,
            other => other,
        }
    }

    pub fn is_own(self) -> bool {
        self.unscoped() != self
    }
}

/// The scopes of an API key template (identity: "API keys"). Keys never hold
/// member, billing, key, credential or secret scopes.
pub fn permission_set(name: &str) -> Option<&'static [Scope]> {
    use Scope::*;
    match name {
        "full_access" => Some(&[
            CapsWrite,
            WorkspaceRead,
            WorkspaceWrite,
            TasksWrite,
            AuditRead,
        ]),
        "submit_observe" => Some(&[WorkspaceRead, WorkspaceWrite, TasksWrite, AuditRead]),
        "read_only" => Some(&[WorkspaceRead, AuditRead]),
        _ => None,
    }
}

/// The default scopes of a member role (`owner`, `operator`, `member`).
pub fn member_role_scopes(role: &str) -> Option<&'static [Scope]> {
    use Scope::*;
    match role {
        "owner" => Some(&[
            CapsWrite,
            AuthWrite,
            SecretsWrite,
            WorkspaceRead,
            WorkspaceWrite,
            TasksWriteOwn,
            AuditRead,
            MembersRead,
            MembersWrite,
            ApikeysWrite,
            BillingWrite,
        ]),
        "operator" => Some(&[
            CapsWrite,
            AuthWrite,
            SecretsWrite,
            WorkspaceRead,
            WorkspaceWrite,
            TasksWriteOwn,
            AuditRead,
            MembersRead,
            ApikeysWrite,
        ]),
        "member" => Some(&[
            WorkspaceReadOwn,
            WorkspaceWriteOwn,
            TasksWriteOwn,
            AuditReadOwn,
            MembersRead,
            AuthWriteOwn,
        ]),
        _ => None,
    }
}
