//! `GET /v1/me/session` and `GET /v1/config`.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::api::auth::Caller;
use crate::api::error::ApiResult;
use crate::Ctx;

/// The caller's identity; `memberships` lists every org of a session's
/// user (empty for API keys).
pub async fn me_session(State(ctx): State<Arc<Ctx>>, caller: Caller) -> ApiResult<Json<Value>> {
    let permissions: Vec<&str> = caller.scopes.iter().map(|s| s.as_str()).collect();
    let mut body = json!({
        "user_id": caller.user_id,
        "org_id": caller.org_id,
        "org_slug": caller.org_slug,
        "permissions": permissions,
        "memberships": [],
    });
    if caller.api_key_label.is_some() {
        body["api_key_label"] = json!(caller.api_key_label);
        body["api_key_permission_set"] = json!(caller.api_key_permission_set);
        return Ok(Json(body));
    }
    let memberships: Vec<Value> = ctx
        .store
        .memberships_of(&caller.user_id)
        .await?
        .into_iter()
        .map(|m| json!({ "org_id": m.org_id, "slug": m.org_slug, "role": m.role }))
        .collect();
    body["email"] = json!(caller.email);
    body["role"] = json!(caller.role);
    body["memberships"] = json!(memberships);
    Ok(Json(body))
}

/// Role defaults, the redirect URIs to register at OAuth and OpenID
/// Connect providers, and the OpenID Connect provider people sign in with
/// (`null` when none is configured).
pub async fn get_config(State(ctx): State<Arc<Ctx>>, _caller: Caller) -> Json<Value> {
    let public_url = &ctx.config.public_url;
    let oidc = ctx.oidc.as_ref().map(|oidc| {
        json!({
            "issuer": oidc.settings().issuer,
            "display_name": oidc.settings().display_name,
        })
    });
    Json(json!({
        "defaults": {
            "task_timeout_seconds": crate::DEFAULT_TASK_TIMEOUT_SECONDS,
            "idle_timeout_seconds": crate::DEFAULT_IDLE_TIMEOUT_SECONDS,
            "oauth_redirect_uri": format!("{public_url}/oauth/callback"),
            "oidc_redirect_uri": format!("{public_url}{}", crate::identity::oidc::CALLBACK_PATH),
        },
        "oidc": oidc,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
