//! The documented error envelope. Every API error is an [`ApiError`]: a
//! stable code (which fixes the status), a short message, optional
//! `details`, and the request id. Internal causes go to the log under the
//! request id, never into the body.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use evershell_core::ErrorCode;
use serde_json::json;

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
    pub details: Option<serde_json::Value>,
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
            details: Some(json!({ "fields": fields })),
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
        let mut error = json!({
            "code": self.slug.unwrap_or(self.code.as_str()),
            "message": self.message,
            "request_id": current_request_id(),
        });
        if let Some(details) = self.details {
            error["details"] = details;
        }
        (status, axum::Json(json!({ "error": error }))).into_response()
    }
}
