//! `GET /v1/me/session` and `GET /v1/config`.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;

use crate::api::auth::Caller;
use crate::api::error::ApiResult;
use crate::Ctx;

/// Who the caller is. API keys carry `api_key_label` and
/// `api_key_permission_set`; sessions carry `email` and `role`.
#[derive(Serialize, JsonSchema)]
pub struct MeSession {
    /// `system` for API keys.
    pub user_id: String,
    pub org_id: String,
    pub org_slug: String,
    /// The scopes the caller holds.
    pub permissions: Vec<&'static str>,
    /// Every org of a session's user (empty for API keys).
    pub memberships: Vec<Membership>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub api_key_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub api_key_permission_set: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub role: Option<String>,
}

/// One org of the user and the member role held there.
#[derive(Serialize, JsonSchema)]
pub struct Membership {
    pub org_id: String,
    pub slug: String,
    pub role: String,
}

/// The defaults roles get, and the server version.
#[derive(Serialize, JsonSchema)]
pub struct ConfigView {
    pub defaults: Defaults,
    /// The OpenID Connect provider people sign in with, when configured.
    pub oidc: Option<OidcView>,
    pub version: &'static str,
}

/// The configured OpenID Connect provider.
#[derive(Serialize, JsonSchema)]
pub struct OidcView {
    pub issuer: String,
    pub display_name: String,
}

#[derive(Serialize, JsonSchema)]
pub struct Defaults {
    pub task_timeout_seconds: u64,
    pub idle_timeout_seconds: u64,
    pub oauth_redirect_uri: String,
    /// The redirect URI to register at the OpenID Connect provider.
    pub oidc_redirect_uri: String,
}

/// The caller's identity; `memberships` lists every org of a session's
/// user (empty for API keys).
pub async fn me_session(State(ctx): State<Arc<Ctx>>, caller: Caller) -> ApiResult<Json<MeSession>> {
    let memberships = match caller.api_key_label {
        Some(_) => Vec::new(),
        None => ctx
            .store
            .memberships_of(&caller.user_id)
            .await?
            .into_iter()
            .map(|m| Membership {
                org_id: m.org_id,
                slug: m.org_slug,
                role: m.role,
            })
            .collect(),
    };
    Ok(Json(MeSession {
        permissions: caller.scopes.iter().map(|s| s.as_str()).collect(),
        user_id: caller.user_id,
        org_id: caller.org_id,
        org_slug: caller.org_slug,
        memberships,
        api_key_label: caller.api_key_label,
        api_key_permission_set: caller.api_key_permission_set,
        email: caller.email,
        role: caller.role,
    }))
}

/// Role defaults, the redirect URIs to register at OAuth and OpenID
/// Connect providers, and the OpenID Connect provider people sign in with
/// (`null` when none is configured).
pub async fn get_config(State(ctx): State<Arc<Ctx>>, _caller: Caller) -> Json<ConfigView> {
    let public_url = &ctx.config.public_url;
    let oidc = ctx.oidc.as_ref().map(|oidc| OidcView {
        issuer: oidc.settings().issuer.clone(),
        display_name: oidc.settings().display_name.clone(),
    });
    Json(ConfigView {
        defaults: Defaults {
            task_timeout_seconds: crate::DEFAULT_TASK_TIMEOUT_SECONDS,
            idle_timeout_seconds: crate::DEFAULT_IDLE_TIMEOUT_SECONDS,
            oauth_redirect_uri: format!("{public_url}/oauth/callback"),
            oidc_redirect_uri: format!("{public_url}{}", crate::identity::oidc::CALLBACK_PATH),
        },
        oidc,
        version: env!("CARGO_PKG_VERSION"),
    })
}
