//! The documented error envelope. Every API error is an [`ApiError`]: a
//! stable code (which fixes the status), a short message, optional
//! `details`, and the request id. Internal causes go to the log under the
//! request id, never into the body.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use evershell_core::ErrorCode;
use schemars::JsonSchema;
use serde::Serialize;

tokio::task_local! {
    /// The id of the request being served; set by the request-id layer.
    pub static REQUEST_ID: String;
}

/// The current request's id, or `unknown` outside a request.
pub fn current_request_id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "unknown".to_string())
}

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    /// Overrides the code's slug for documented `409` variants that carry
    /// their own name (`workspaces_active`, `not_running`, …).
    pub slug: Option<&'static str>,
    pub message: String,
    pub details: Option<ErrorDetails>,
}

/// The body of every error answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    /// Stable slug; each code always comes with the same status.
    pub code: &'static str,
    /// For people; may change between versions.
    pub message: String,
    /// The request's id, also in the `x-request-id` header and the log.
    pub request_id: String,
    /// Present on `validation_error` and `payload_too_large` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "ErrorDetails")]
    pub details: Option<ErrorDetails>,
}

/// What a `validation_error` or `payload_too_large` adds.
#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct ErrorDetails {
    /// Each bad field (a JSON field path, `body`, `content-type`, `query`,
    /// a query parameter or a caps.yaml path) and what is wrong with it.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, String>,
    /// The request body limit a `payload_too_large` refers to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<usize>,
    /// The OpenID Connect provider's own error code, when sign-in through
    /// it failed on its side (`access_denied`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_error: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            slug: None,
            message: message.into(),
            details: None,
        }
    }

    /// A `409` with its own documented slug.
    pub fn conflict(slug: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code: ErrorCode::InvalidState,
            slug: Some(slug),
            message: message.into(),
            details: None,
        }
    }

    /// `400 validation_error` with `details.fields` (field path → message).
    pub fn fields(fields: BTreeMap<String, String>) -> ApiError {
        let message = match fields.len() {
            1 => format!("invalid field {}", fields.keys().next().expect("one field")),
            n => format!("{n} invalid fields"),
        };
        ApiError {
            code: ErrorCode::ValidationError,
            slug: None,
            message,
            details: Some(ErrorDetails {
                fields,
                ..Default::default()
            }),
        }
    }

    /// `413 payload_too_large`: the body is over `limit` bytes.
    pub fn payload_too_large(limit: usize) -> ApiError {
        ApiError {
            code: ErrorCode::PayloadTooLarge,
            slug: None,
            message: format!("request body over the limit of {limit} bytes"),
            details: Some(ErrorDetails {
                fields: BTreeMap::from([(
                    "body".to_string(),
                    format!("must be at most {limit} bytes"),
                )]),
                limit_bytes: Some(limit),
                ..Default::default()
            }),
        }
    }

    pub fn field(path: &str, message: impl Into<String>) -> ApiError {
        ApiError::fields(BTreeMap::from([(path.to_string(), message.into())]))
    }

    pub fn not_found(code: ErrorCode, what: &str) -> ApiError {
        ApiError::new(code, format!("{what} not found"))
    }

    /// An internal failure: logged with its cause under the request id, and
    /// reported to the caller without detail.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(request_id = %current_request_id(), error = %cause, "internal error");
        ApiError::new(ErrorCode::Internal, "internal error")
    }

    pub fn unavailable(cause: impl std::fmt::Display) -> ApiError {
        tracing::warn!(request_id = %current_request_id(), error = %cause, "dependency unavailable");
        ApiError::new(ErrorCode::Unavailable, "service temporarily unavailable")
    }
}

impl From<evershell_store::StoreError> for ApiError {
    fn from(e: evershell_store::StoreError) -> ApiError {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).expect("error codes carry valid statuses");
        let error = ErrorBody {
            code: self.slug.unwrap_or(self.code.as_str()),
            message: self.message,
            request_id: current_request_id(),
            details: self.details,
        };
        (status, axum::Json(ErrorEnvelope { error })).into_response()
    }
}
