//! Stable API error codes and the HTTP status each one always carries.

use serde::Serialize;

/// An error code of the documented envelope. The slug and status never change
/// for a given variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ValidationError,
    InvalidCursor,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    RoleNotFound,
    ProviderNotFound,
    WorkspaceNotFound,
    TaskNotFound,
    CredentialNotFound,
    SecretNotFound,
    InvalidState,
    WorkspaceBusy,
    CredentialExists,
    NameTaken,
    MethodNotAllowed,
    PayloadTooLarge,
    BillingInactive,
    RateLimited,
    AgentUnreachable,
    IdentityProviderError,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ValidationError => "validation_error",
            ErrorCode::InvalidCursor => "invalid_cursor",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RoleNotFound => "role_not_found",
            ErrorCode::ProviderNotFound => "provider_not_found",
            ErrorCode::WorkspaceNotFound => "workspace_not_found",
            ErrorCode::TaskNotFound => "task_not_found",
            ErrorCode::CredentialNotFound => "credential_not_found",
            ErrorCode::SecretNotFound => "secret_not_found",
            ErrorCode::InvalidState => "invalid_state",
            ErrorCode::WorkspaceBusy => "workspace_busy",
            ErrorCode::CredentialExists => "credential_exists",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::BillingInactive => "billing_inactive",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::AgentUnreachable => "agent_unreachable",
            ErrorCode::IdentityProviderError => "identity_provider_error",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status this code is always sent with.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            ValidationError | InvalidCursor => 400,
            Unauthenticated => 401,
            PermissionDenied => 403,
            NotFound | RoleNotFound | ProviderNotFound | WorkspaceNotFound | TaskNotFound
            | CredentialNotFound | SecretNotFound => 404,
            InvalidState | WorkspaceBusy | CredentialExists | NameTaken => 409,
            MethodNotAllowed => 405,
            PayloadTooLarge => 413,
            BillingInactive => 423,
            RateLimited => 429,
            AgentUnreachable | IdentityProviderError => 502,
            Unavailable => 503,
            Internal => 500,
        }
    }
}
