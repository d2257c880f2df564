//! `POST /auth/sign-in`: email and password in, a session token (and the
//! console's session cookie) out; `POST /auth/sign-out` removes the
//! cookie.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use evershell_core::ErrorCode;
use evershell_store::MembershipView;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::api::cookies;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::ApiJson;
use crate::api::respond::WithCookie;
use crate::identity::password;
use crate::Ctx;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub email: String,
    #[schemars(with = "String")]
    pub password: Zeroizing<String>,
    /// Org slug to act in; the user's oldest membership when absent.
    #[serde(default)]
    pub org: Option<String>,
}

/// A session token and when it expires (RFC 3339).
#[derive(Serialize, JsonSchema)]
pub struct Session {
    pub token: String,
    pub expires_at: String,
}

/// Answers `{token, expires_at}` and sets the session cookie for the
/// console. An unknown email and a wrong password get the same `401` after
/// the same argon2 work; naming an org the user is not a member of is
/// `403 permission_denied`.
pub async fn sign_in(
    State(ctx): State<Arc<Ctx>>,
    ApiJson(body): ApiJson<SignIn>,
) -> ApiResult<WithCookie<Json<Session>>> {
    let email = body.email.trim().to_ascii_lowercase();
    let login = ctx.store.user_login(&email).await?;
    let phc = login.as_ref().and_then(|l| l.password_hash.clone());
    let secret = body.password.clone();
    // argon2 takes tens of milliseconds of CPU: keep it off the reactor.
    let matched = tokio::task::spawn_blocking(move || password::verify(&secret, phc.as_deref()))
        .await
        .map_err(ApiError::internal)?;
    let Some(login) = login.filter(|_| matched) else {
        tracing::debug!("sign-in refused");
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "wrong email or password",
        ));
    };

    let member = pick_membership(&ctx, &login.user_id, body.org.as_deref()).await?;
    let (token, claims) = start_session(&ctx, &member).await?;
    let expires_at = chrono::DateTime::from_timestamp(claims.exp, 0)
        .expect("expiry is a valid time")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    tracing::info!(user_id = %login.user_id, org_id = %member.org_id, method = "password", "session started");
    let cookie = cookies::set_session(&token, claims.exp - claims.iat);
    Ok(WithCookie(cookie, Json(Session { token, expires_at })))
}

/// `POST /auth/sign-out`: removes the session cookie (`204`). Session
/// tokens are not revoked: one copied elsewhere stays valid until it
/// expires.
pub async fn sign_out() -> impl IntoResponse {
    (
        StatusCode::NO_CONTENT,
        [(SET_COOKIE, cookies::clear_session())],
    )
}

/// Signs a session token for `member`'s user acting in its org.
pub(crate) async fn start_session(
    ctx: &Ctx,
    member: &MembershipView,
) -> ApiResult<(String, crate::identity::Claims)> {
    let now = chrono::Utc::now().timestamp();
    ctx.sessions
        .sign(&ctx.store, &member.user_id, &member.org_id, now)
        .await
        .map_err(ApiError::internal)
}

/// The membership of `user_id` in org `org` (a slug), or its oldest one.
pub(crate) async fn pick_membership(
    ctx: &Ctx,
    user_id: &str,
    org: Option<&str>,
) -> ApiResult<MembershipView> {
    let memberships = ctx.store.memberships_of(user_id).await?;
    let found = match org {
        Some(slug) => memberships.into_iter().find(|m| m.org_slug == slug),
        None => memberships.into_iter().next(),
    };
    found.ok_or_else(|| {
        ApiError::new(
            ErrorCode::PermissionDenied,
            "the user is not a member of this org",
        )
    })
}
