//! `POST /tasks` and `POST /tasks/{id}/cancel`.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use evershell_core::agent::TaskDelivery;
use evershell_core::ErrorCode;
use serde_json::{json, Value};

use super::ApiError;
use crate::context::Ctx;
use crate::task::{self, SubmitError, Submitted};

/// `202 {"task_id", "status": "started" | "already_running"}`.
pub async fn submit(
    State(ctx): State<Arc<Ctx>>,
    body: Result<Json<TaskDelivery>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(delivery) = body.map_err(|rejection| ApiError::validation(rejection.body_text()))?;
    let task_id = delivery.task_id.clone();
    let status = match task::submit(&ctx, delivery).await {
        Ok(Submitted::Started) => "started",
        Ok(Submitted::AlreadyRunning) => "already_running",
        Err(SubmitError::Invalid { reason, .. }) => return Err(ApiError::validation(reason)),
        Err(SubmitError::Busy { .. }) => {
            return Err(ApiError::new(
                ErrorCode::WorkspaceBusy,
                "another task is running",
            ))
        }
        Err(SubmitError::AlreadyRan { .. }) => {
            return Err(ApiError::new(
                ErrorCode::InvalidState,
                "this task already ran",
            ))
        }
        Err(error @ SubmitError::State { .. }) => {
            tracing::error!(error = %crate::error::Report(&error), "task delivery failed");
            return Err(ApiError::internal());
        }
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"task_id": task_id, "status": status})),
    ))
}

/// `202 {"task_id", "status": "cancel_requested"}`; `404 task_not_found` when
/// that task is not the one running.
pub async fn cancel(
    State(ctx): State<Arc<Ctx>>,
    Path(task_id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    task::cancel(&ctx, &task_id)
        .await
        .map_err(|_| ApiError::new(ErrorCode::TaskNotFound, "no such task is running"))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"task_id": task_id, "status": "cancel_requested"})),
    ))
}
