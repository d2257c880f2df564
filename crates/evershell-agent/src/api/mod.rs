//! The agent's HTTP API on its Unix socket, for the control plane only (the
//! socket is outside the sandbox's reach). JSON in and out; every error is
//! `{"error": {"code", "message"}}` with the code's fixed status.

mod events;
mod files;
mod session;
mod tasks;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use evershell_core::ErrorCode;
use serde_json::json;

use crate::context::Ctx;

/// An API failure: a stable code and a short message (never internal detail).
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
}

/// Every route of the agent service.
pub fn router(ctx: Arc<Ctx>) -> Router {
    Router::new()
        .route("/tasks", post(tasks::submit))
        .route("/tasks/{id}/cancel", post(tasks::cancel))
        .route("/events", get(events::poll))
        .route("/session", get(session::view))
        .route("/files", get(files::list))
        .route("/files/content", get(files::content))
        .route("/files/raw", get(files::raw))
        .route("/healthz", get(healthz))
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .with_state(ctx)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::ValidationError, message)
    }

    pub fn internal() -> ApiError {
        ApiError::new(ErrorCode::Internal, "internal error; see the agent log")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).expect("error codes carry valid statuses");
        let body = json!({"error": {"code": self.code.as_str(), "message": self.message}});
        (status, Json(body)).into_response()
    }
}
