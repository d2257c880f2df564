//! `GET /auth/oidc/start` and `GET /auth/oidc/callback`: sign-in through
//! the configured OpenID Connect provider (see [`crate::identity::oidc`]).
//!
//! `start` records the flow (state, nonce, PKCE verifier) in the database,
//! so any replica sharing it can finish the flow, binds it to the browser
//! with a cookie, and redirects to the provider. `callback` takes the flow
//! back exactly once, redeems the code, verifies the ID token and maps its
//! email to an existing user; the session is the same as a password
//! sign-in's, delivered as the console cookie.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use evershell_core::ErrorCode;
use evershell_store::{OidcFlow, OidcLink};
use serde::Deserialize;

use super::sign_in::{pick_membership, start_session};
use crate::api::cookies;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::ApiQuery;
use crate::identity::oidc::{self, FlowSecrets, Identity, Oidc, OidcError};
use crate::Ctx;

/// How long a started sign-in may take, in seconds.
pub const FLOW_LIFETIME_SECONDS: i64 = 600;
/// Longest accepted `return_to`.
const MAX_RETURN_TO: usize = 2048;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartQuery {
    /// Org slug to act in; the user's oldest membership when absent.
    #[serde(default)]
    pub org: Option<String>,
    /// A path on this server to land on afterwards; default `/`.
    #[serde(default)]
    pub return_to: Option<String>,
}

/// The provider's redirect back. Providers may add parameters of their own
/// (`session_state`, `scope`, …), so unknown ones are ignored.
#[derive(Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    /// RFC 9207: the issuer of the response, when the provider says.
    #[serde(default)]
    pub iss: Option<String>,
    /// An error response (RFC 6749 §4.1.2.1).
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
}

/// Redirects (`303`) to the provider's authorization endpoint.
pub async fn start(
    State(ctx): State<Arc<Ctx>>,
    ApiQuery(query): ApiQuery<StartQuery>,
) -> ApiResult<Response> {
    let oidc = configured(&ctx)?;
    let return_to = relative_path(query.return_to.as_deref())?;
    // Org slugs are `^[a-z][a-z0-9-]{1,38}$`; whether the org exists and
    // the person belongs to it is known only after sign-in.
    let slug_shaped = |s: &str| {
        (2..=39).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if query.org.as_deref().is_some_and(|org| !slug_shaped(org)) {
        return Err(ApiError::field("org", "must be an org slug"));
    }

    let secrets = FlowSecrets::new();
    let location = oidc
        .authorization_url(&secrets)
        .await
        .map_err(provider_error)?;
    let flow = OidcFlow {
        org_slug: query.org,
        return_to,
        nonce: secrets.nonce.clone(),
        verifier: secrets.verifier.clone(),
    };
    let now = chrono::Utc::now();
    let expires_at = now + chrono::Duration::seconds(FLOW_LIFETIME_SECONDS);
    ctx.store
        .insert_oidc_flow(&oidc::state_hash(&secrets.state), &flow, now, expires_at)
        .await?;

    let location = HeaderValue::from_str(&location).map_err(ApiError::internal)?;
    let binding = cookies::set_oidc_state(&secrets.state, FLOW_LIFETIME_SECONDS);
    Ok((
        StatusCode::SEE_OTHER,
        [(LOCATION, location), (SET_COOKIE, binding)],
    )
        .into_response())
}

/// Finishes the sign-in: sets the session cookie and redirects (`303`) to
/// the flow's `return_to`. Failures answer with the error envelope; once
/// the browser presented its flow's state, the flow is used up and the
/// flow-binding cookie is removed whatever the outcome.
pub async fn callback(
    State(ctx): State<Arc<Ctx>>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<CallbackQuery>,
) -> Response {
    let oidc = match configured(&ctx) {
        Ok(oidc) => oidc,
        Err(e) => return e.into_response(),
    };
    let Some(state) = query.state.clone() else {
        return ApiError::field("state", "missing").into_response();
    };
    // The state must come back to the browser that started the flow: a
    // callback URL opened in another browser (login CSRF) stops here,
    // before the flow is used up, and leaves that browser's cookie alone.
    let bound = cookies::read(&headers, cookies::OIDC_STATE).is_some_and(|cookie| {
        subtle::ConstantTimeEq::ct_eq(cookie.as_bytes(), state.as_bytes()).into()
    });
    if !bound {
        return refused("this sign-in was not started in this browser, or it expired")
            .into_response();
    }

    let clear = (SET_COOKIE, cookies::clear_oidc_state());
    match finish(&ctx, oidc, &state, query).await {
        Ok((session, return_to)) => {
            let location = HeaderValue::from_str(&return_to).expect("return_to was validated");
            let cookies = AppendHeaders([(SET_COOKIE, session), clear]);
            (StatusCode::SEE_OTHER, [(LOCATION, location)], cookies).into_response()
        }
        Err(e) => (AppendHeaders([clear]), e).into_response(),
    }
}

async fn finish(
    ctx: &Ctx,
    oidc: &Oidc,
    state: &str,
    query: CallbackQuery,
) -> ApiResult<(HeaderValue, String)> {
    let now = chrono::Utc::now();
    let flow = ctx
        .store
        .take_oidc_flow(&oidc::state_hash(state), now)
        .await?
        .ok_or_else(|| refused("unknown, used or expired sign-in state"))?;

    if let Some(error) = query.error {
        return Err(provider_refusal(&error, query.error_description.as_deref()));
    }
    // RFC 9207 §2.4: a response naming another issuer is a mix-up.
    if query
        .iss
        .as_ref()
        .is_some_and(|iss| *iss != oidc.settings().issuer)
    {
        return Err(refused("the sign-in response names another issuer"));
    }
    let code = query
        .code
        .as_deref()
        .ok_or_else(|| ApiError::field("code", "missing"))?;
    let identity = oidc
        .redeem(code, &flow.verifier, &flow.nonce, now.timestamp())
        .await
        .map_err(provider_error)?;

    let member = member_for(ctx, oidc, &identity, flow.org_slug.as_deref()).await?;
    let (token, claims) = start_session(ctx, &member).await?;
    tracing::info!(user_id = %member.user_id, org_id = %member.org_id, method = "oidc", "session started");
    Ok((
        cookies::set_session(&token, claims.exp - claims.iat),
        flow.return_to,
    ))
}

/// The membership the verified identity signs in to. Users are never
/// created here: an email without a user, or a user without a membership
/// of the org, is refused.
async fn member_for(
    ctx: &Ctx,
    oidc: &Oidc,
    identity: &Identity,
    org: Option<&str>,
) -> ApiResult<evershell_store::MembershipView> {
    let Some(login) = ctx.store.user_login(&identity.email).await? else {
        tracing::debug!("oidc sign-in refused: no user with this email");
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "no Evershell user has this email; ask an org owner for an invitation",
        ));
    };
    let link = ctx
        .store
        .link_oidc_subject(&oidc.settings().issuer, &identity.subject, &login.user_id)
        .await?;
    if matches!(link, OidcLink::OtherSubject | OidcLink::OtherUser) {
        tracing::warn!(user_id = %login.user_id, link = ?link, "oidc sign-in refused: subject mismatch");
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "this provider account is not the one this user signed in with before",
        ));
    }
    pick_membership(ctx, &login.user_id, org).await
}

fn configured(ctx: &Ctx) -> ApiResult<&Oidc> {
    ctx.oidc.as_deref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            "OpenID Connect sign-in is not configured",
        )
    })
}

fn refused(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, message)
}

/// The provider's error response: its error code goes back in `details`
/// (only when it is a plain token; the description, free text from the
/// URL, only to the log).
fn provider_refusal(error: &str, description: Option<&str>) -> ApiError {
    tracing::debug!(error, description, "identity provider refused the sign-in");
    let plain = !error.is_empty()
        && error.len() <= 64
        && error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    let code = if plain { error } else { "invalid_error" };
    let mut e = match code {
        "server_error" | "temporarily_unavailable" => ApiError::new(
            ErrorCode::IdentityProviderError,
            "the identity provider could not sign you in",
        ),
        _ => refused("the identity provider refused the sign-in"),
    };
    e.details = Some(crate::api::error::ErrorDetails {
        provider_error: Some(code.to_string()),
        ..Default::default()
    });
    e
}

/// One mapping of provider failures to answers: the provider failing is
/// `502`, a refused code or token `401`, an unusable email `403`.
fn provider_error(e: OidcError) -> ApiError {
    match &e {
        OidcError::Unreachable { .. }
        | OidcError::HttpStatus { .. }
        | OidcError::BadDocument { .. } => {
            tracing::warn!(error = %e, "identity provider failed");
            ApiError::new(
                ErrorCode::IdentityProviderError,
                "the identity provider could not be used",
            )
        }
        OidcError::ClientRejected { .. } => {
            tracing::error!(error = %e, "identity provider refused the configured client");
            ApiError::new(
                ErrorCode::IdentityProviderError,
                "the identity provider refused this server's client credentials",
            )
        }
        OidcError::CodeRejected { .. } | OidcError::IdToken(_) | OidcError::UserInfoSubject => {
            tracing::debug!(error = %e, "oidc sign-in refused");
            refused("the identity provider's answer was refused")
        }
        OidcError::NoEmail | OidcError::EmailNotVerified => {
            tracing::debug!(error = %e, "oidc sign-in refused");
            ApiError::new(
                ErrorCode::PermissionDenied,
                "the identity provider did not vouch for an email address",
            )
        }
    }
}

/// `return_to` must be a path on this server: it starts with one `/` and
/// holds no backslash or control character, so no browser reads it as
/// another host (`//evil.test`, `/\evil.test`).
fn relative_path(return_to: Option<&str>) -> ApiResult<String> {
    let Some(path) = return_to else {
        return Ok("/".to_string());
    };
    let safe = path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= MAX_RETURN_TO
        && !path.contains('\\')
        && path.bytes().all(|b| b.is_ascii_graphic());
    if safe {
        Ok(path.to_string())
    } else {
        Err(ApiError::field(
            "return_to",
            "must be a path on this server",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_is_a_path_on_this_server() {
        assert_eq!(relative_path(None).unwrap(), "/");
        for good in ["/", "/workspaces/ws_1?tab=audit#top", "/a/b%20c"] {
            assert_eq!(relative_path(Some(good)).unwrap(), good);
        }
        for bad in [
            "https://evil.test/",
            "//evil.test",
            "/\\evil.test",
            "evil.test",
            "",
            "/a b",
            "/a\nLocation: x",
            "javascript:alert(1)",
        ] {
            assert!(relative_path(Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn provider_errors_keep_only_a_plain_code() {
        let e = provider_refusal("access_denied", Some("<script>"));
        assert_eq!(e.code, ErrorCode::Unauthenticated);
        assert_eq!(
            e.details.unwrap().provider_error.as_deref(),
            Some("access_denied")
        );
        let e = provider_refusal("<b>x</b>", None);
        assert_eq!(
            e.details.unwrap().provider_error.as_deref(),
            Some("invalid_error")
        );
        let e = provider_refusal("temporarily_unavailable", None);
        assert_eq!(e.code, ErrorCode::IdentityProviderError);
    }
}
