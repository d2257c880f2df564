//! Who is calling: a caller is an API key (`sk_…`) or a person's session
//! token (`eyJ…`, see [`crate::identity::jwt`]; in an `Authorization`
//! header or the console's session cookie, see [`super::cookies`]), with
//! its scopes and `:own` narrowing. Every failure to authenticate is the
//! same `401`.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use evershell_core::scope::{member_role_scopes, permission_set, Scope};
use evershell_core::ErrorCode;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::cookies;
use super::error::ApiError;
use crate::Ctx;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub org_id: String,
    pub org_slug: String,
    /// `system` for API keys.
    pub user_id: String,
    /// The person's email and member role (sessions only).
    pub email: Option<String>,
    pub role: Option<String>,
    pub scopes: Vec<Scope>,
    pub api_key_label: Option<String>,
    pub api_key_permission_set: Option<String>,
    /// The org's billing posture: `active`, or `suspended` (create-class
    /// routes then answer `423 billing_inactive`).
    pub posture: String,
}

impl Caller {
    /// Whether the caller holds `scope`; an unscoped grant satisfies its
    /// `:own` form, and `workspace:write` satisfies `tasks:write:own`.
    pub fn holds(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|&held| {
            held == scope
                || (scope.is_own() && held == scope.unscoped())
                || (scope == Scope::TasksWriteOwn && held == Scope::WorkspaceWrite)
        })
    }

    /// `None` when the caller may act on every row of the org for
    /// `unscoped`, or `Some(user_id)` when only on rows it created.
    /// Unscoped `workspace:write` widens `tasks:write` to every workspace
    /// of the org (owners and operators run work anywhere).
    pub fn narrowing(&self, unscoped: Scope) -> Option<&str> {
        let wide = self.scopes.contains(&unscoped)
            || (unscoped == Scope::TasksWrite && self.scopes.contains(&Scope::WorkspaceWrite));
        if wide {
            None
        } else {
            Some(&self.user_id)
        }
    }
}

/// A new API key secret: `sk_live_` and 32 random bytes in base62.
pub fn new_key_secret() -> String {
    format!("sk_live_{}", random_base62())
}

/// 32 random bytes in base62 (about 43 characters).
pub fn random_base62() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    // Base62 of a 256-bit number, by repeated division.
    let mut digits = bytes.to_vec();
    let mut out = Vec::new();
    while digits.iter().any(|&d| d != 0) {
        let mut rem = 0u32;
        for d in digits.iter_mut() {
            let acc = (rem << 8) | u32::from(*d);
            *d = (acc / 62) as u8;
            rem = acc % 62;
        }
        out.push(ALPHABET[rem as usize]);
    }
    out.reverse();
    String::from_utf8(out).expect("alphabet is ascii")
}

/// The displayable prefix of a key: `sk_live_...` and its last four characters.
pub fn key_prefix(secret: &str) -> String {
    format!("sk_live_...{}", &secret[secret.len().saturating_sub(4)..])
}

/// SHA-256 of the installation pepper and the key secret, hex-encoded.
pub fn hash_key(pepper: &str, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(pepper.as_bytes());
    hasher.update([0u8]);
    hasher.update(secret.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh random pepper for a new installation.
pub fn new_pepper() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

/// The token of an `Authorization: Bearer …` header.
pub(crate) fn bearer(headers: &axum::http::HeaderMap) -> Option<String> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// The credentials a request presents, in order of precedence.
enum Presented {
    ApiKey(String),
    Token(String),
    /// A session token from the console cookie.
    Cookie(String),
    /// Something that is neither an API key nor a session token.
    Garbled,
    Nothing,
}

/// `Authorization` first, then (SSE routes only) `?api_key=`, then the
/// session cookie.
fn presented(parts: &Parts, sse: bool) -> Presented {
    if let Some(token) = bearer(&parts.headers) {
        return if token.starts_with("sk_") {
            Presented::ApiKey(token)
        } else if token.starts_with("eyJ") {
            Presented::Token(token)
        } else {
            Presented::Garbled
        };
    }
    // A query string ends up in logs and browser history, so only API
    // keys, and only on SSE routes, travel there; never a session token.
    if let Some(token) = query_api_key(parts).filter(|_| sse) {
        return if token.starts_with("sk_") {
            Presented::ApiKey(token)
        } else {
            Presented::Garbled
        };
    }
    match cookies::read(&parts.headers, cookies::SESSION) {
        Some(token) => Presented::Cookie(token.to_string()),
        None => Presented::Nothing,
    }
}

/// `?api_key=` is accepted on SSE routes only (the routes table says which).
fn query_api_key(parts: &Parts) -> Option<String> {
    let query = parts.uri.query()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "api_key").then(|| v.to_string())
    })
}

impl FromRequestParts<Arc<Ctx>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        ctx: &Arc<Ctx>,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let sse = parts
            .extensions
            .get::<super::routes::AllowsQueryKey>()
            .is_some();
        let caller = match presented(parts, sse) {
            Presented::ApiKey(token) => key_caller(ctx, &token).await?,
            Presented::Token(token) => {
                session_caller(
                    ctx,
                    &token,
                    org_header(parts).or_else(|| host_org(parts, ctx)),
                )
                .await?
            }
            Presented::Cookie(token) => {
                if !cookies::same_origin_or_safe(
                    &parts.method,
                    &parts.headers,
                    &ctx.config.public_url,
                ) {
                    tracing::debug!(method = %parts.method, "cross-origin cookie request refused");
                    return Err(ApiError::new(
                        ErrorCode::PermissionDenied,
                        "a request authenticated by the session cookie that changes something \
                         must carry this server's Origin",
                    ));
                }
                session_caller(
                    ctx,
                    &token,
                    org_header(parts).or_else(|| host_org(parts, ctx)),
                )
                .await?
            }
            Presented::Garbled => return Err(invalid()),
            Presented::Nothing => {
                return Err(ApiError::new(
                    ErrorCode::Unauthenticated,
                    "missing credentials",
                ))
            }
        };
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

fn invalid() -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, "invalid credentials")
}

async fn key_caller(ctx: &Ctx, token: &str) -> Result<Caller, ApiError> {
    let hash = hash_key(&ctx.pepper, token);
    let Some(key) = ctx.store.authenticate_api_key(&hash).await? else {
        return Err(invalid());
    };
    let scopes = permission_set(&key.permission_set)
        .unwrap_or_default()
        .to_vec();
    Ok(Caller {
        org_id: key.org_id,
        org_slug: key.org_slug,
        user_id: "system".to_string(),
        email: None,
        role: None,
        scopes,
        api_key_label: Some(key.label),
        api_key_permission_set: Some(key.permission_set),
        posture: key.posture,
    })
}

/// The org a session caller names with `Evershell-Org: <slug>`, if any.
fn org_header(parts: &Parts) -> Option<String> {
    let value = parts.headers.get("evershell-org")?.to_str().ok()?;
    Some(value.trim().to_string())
}

/// The org a request's host names when `base_domain` is configured:
/// `acme.<base_domain>` → `acme`.
fn host_org(parts: &Parts, ctx: &Ctx) -> Option<String> {
    let domain = ctx.config.base_domain.as_deref()?;
    let host = parts.headers.get(axum::http::header::HOST)?.to_str().ok()?;
    org_from_host(host, domain)
}

/// `acme.example.com:8443` under `example.com` → `acme`; a host that is
/// not exactly one label below the domain names no org.
fn org_from_host(host: &str, domain: &str) -> Option<String> {
    let host = host.to_ascii_lowercase();
    let host = host.split(':').next()?.trim_end_matches('.');
    let slug = host.strip_suffix(domain)?.strip_suffix('.')?;
    (!slug.is_empty() && !slug.contains('.')).then(|| slug.to_string())
}

/// A session caller: the token must verify and its user must still be a
/// member of the org it acts in (membership is read on every request, so a
/// removed member is refused at once). The org is the token's, or the one
/// `Evershell-Org` names, where a non-member gets `403`.
async fn session_caller(
    ctx: &Ctx,
    token: &str,
    org_slug: Option<String>,
) -> Result<Caller, ApiError> {
    let now = chrono::Utc::now().timestamp();
    let claims = match ctx.sessions.verify(&ctx.store, token, now).await {
        Ok(claims) => claims,
        Err(crate::identity::jwt::TokenError::Store(e)) => return Err(e.into()),
        Err(e) => {
            tracing::debug!(error = %e, "session token refused");
            return Err(invalid());
        }
    };
    let Some(mut member) = ctx.store.membership(&claims.org, &claims.sub).await? else {
        return Err(invalid());
    };
    if let Some(slug) = org_slug.filter(|slug| *slug != member.org_slug) {
        member = named_org_membership(ctx, &slug, &claims.sub).await?;
    }
    let scopes = member_role_scopes(&member.role)
        .unwrap_or_default()
        .to_vec();
    Ok(Caller {
        org_id: member.org_id,
        org_slug: member.org_slug,
        user_id: member.user_id,
        email: Some(member.email),
        role: Some(member.role),
        scopes,
        api_key_label: None,
        api_key_permission_set: None,
        posture: member.posture,
    })
}

async fn named_org_membership(
    ctx: &Ctx,
    slug: &str,
    user_id: &str,
) -> Result<evershell_store::MembershipView, ApiError> {
    let denied = || {
        ApiError::new(
            ErrorCode::PermissionDenied,
            "the caller is not a member of the org it names",
        )
    };
    let Some(org_id) = ctx.store.org_id_by_slug(slug).await? else {
        return Err(denied());
    };
    ctx.store
        .membership(&org_id, user_id)
        .await?
        .ok_or_else(denied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_secrets_are_long_base62_and_hash_with_the_pepper() {
        let secret = new_key_secret();
        assert!(
            secret.starts_with("sk_live_") && secret.len() >= 8 + 40,
            "{secret}"
        );
        assert!(secret[8..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(hash_key("a", &secret), hash_key("b", &secret));
        assert_eq!(key_prefix("sk_live_abcdWXYZ"), "sk_live_...WXYZ");
    }

    #[test]
    fn the_host_names_the_org_one_label_below_the_base_domain() {
        let domain = "evershell.example.com";
        let org = |host| org_from_host(host, domain);
        assert_eq!(org("acme.evershell.example.com").as_deref(), Some("acme"));
        assert_eq!(
            org("ACME.Evershell.Example.com:8443").as_deref(),
            Some("acme")
        );
        assert_eq!(org("acme.evershell.example.com.").as_deref(), Some("acme"));
        assert_eq!(org("evershell.example.com"), None);
        assert_eq!(org("a.b.evershell.example.com"), None);
        assert_eq!(org("acmeevershell.example.com"), None);
        assert_eq!(org("acme.example.com"), None);
    }

    #[test]
    fn unscoped_grants_satisfy_their_own_forms() {
        let caller = Caller {
            org_id: "org".into(),
            org_slug: "default".into(),
            user_id: "system".into(),
            email: None,
            role: None,
            scopes: vec![Scope::WorkspaceRead, Scope::WorkspaceWrite],
            api_key_label: None,
            api_key_permission_set: None,
            posture: "active".into(),
        };
        assert!(caller.holds(Scope::WorkspaceReadOwn));
        assert!(caller.holds(Scope::TasksWriteOwn));
        assert!(!caller.holds(Scope::AuditRead));
        assert_eq!(caller.narrowing(Scope::WorkspaceRead), None);
        assert_eq!(caller.narrowing(Scope::AuditRead), Some("system"));
        assert_eq!(caller.narrowing(Scope::TasksWrite), None);
    }
}
