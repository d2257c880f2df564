//! `GET /v1/me/session` and `GET /v1/config`.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::api::auth::Caller;
use crate::api::error::ApiResult;
use crate::Ctx;

pub async fn me_session(State(ctx): State<Arc<Ctx>>, caller: Caller) -> ApiResult<Json<Value>> {
    let permissions: Vec<&str> = caller.scopes.iter().map(|s| s.as_str()).collect();
    let _ = &ctx;
    Ok(Json(json!({
        "user_id": caller.user_id,
        "org_id": caller.org_id,
        "org_slug": caller.org_slug,
        "permissions": permissions,
        "memberships": [],
        "api_key_label": caller.api_key_label,
        "api_key_permission_set": caller.api_key_permission_set,
    })))
}

pub async fn get_config(State(ctx): State<Arc<Ctx>>, _caller: Caller) -> Json<Value> {
    Json(json!({
        "defaults": {
            "task_timeout_seconds": crate::DEFAULT_TASK_TIMEOUT_SECONDS,
            "idle_timeout_seconds": crate::DEFAULT_IDLE_TIMEOUT_SECONDS,
            "oauth_redirect_uri": format!("{}/oauth/callback", ctx.config.public_url),
        },
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
