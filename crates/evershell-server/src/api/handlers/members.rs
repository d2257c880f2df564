//! Org memberships: `GET`/`POST /v1/orgs/{id}/memberships`,
//! `PATCH`/`DELETE /v1/orgs/{id}/memberships/{user_id}`, and accepting an
//! invitation at `/invitations/{token}` (outside `/v1`: the person has no
//! session yet).
//!
//! The org in the path must be the caller's own org (by id or slug); any
//! other org is `403 permission_denied`, as for every route naming an org.
//! The last owner can be neither demoted nor removed (`409 last_owner`),
//! and only an owner may invite an owner or change anyone's role.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use chrono::{Duration, SecondsFormat, Utc};
use evershell_core::scope::{member_role_scopes, Scope};
use evershell_core::{ErrorCode, EventType};
use evershell_store::members::OWNER;
use evershell_store::{MemberError, MemberRecord, MemberTarget, NewInvitation};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::api::auth::{bearer, hash_key, random_base62, Caller};
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{ApiJson, ApiPath};
use crate::api::respond::{Created, ResourceStatus};
use crate::api::validate::Fields;
use crate::identity::password;
use crate::Ctx;

/// How long an invitation token stays valid.
pub const INVITATION_TTL_DAYS: i64 = 7;

const ROLES: &[&str] = &["owner", "operator", "member"];

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Invite {
    pub email: String,
    /// `owner`, `operator` or `member`.
    pub role: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    pub role: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Accept {
    /// The new account's password when the invited email has no account
    /// yet; otherwise the existing account's password (or send its session
    /// token instead).
    #[serde(default)]
    pub password: Option<Zeroizing<String>>,
}

/// A member, or a pending invitation (`user_id: ""`, `accepted_at: null`).
#[derive(Serialize, JsonSchema)]
pub struct Membership {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub invited_by: Option<String>,
    pub invited_at: String,
    pub accepted_at: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub struct MembershipList {
    pub memberships: Vec<Membership>,
}

/// A new invitation and the single-use token accepting it, shown in this
/// answer only.
#[derive(Serialize, JsonSchema)]
pub struct Invited {
    pub membership: Membership,
    pub invitation: InvitationToken,
}

#[derive(Serialize, JsonSchema)]
pub struct InvitationToken {
    pub token: String,
    pub url: String,
    pub expires_at: String,
}

fn record_json(m: &MemberRecord) -> Membership {
    Membership {
        id: m.id.clone(),
        org_id: m.org_id.clone(),
        user_id: m.user_id.clone(),
        email: m.email.clone(),
        role: m.role.clone(),
        invited_by: m.invited_by.clone(),
        invited_at: m.invited_at.clone(),
        accepted_at: m.accepted_at.clone(),
    }
}

/// The path's org must be the caller's; naming another is `403`.
fn own_org(caller: &Caller, org: &str) -> ApiResult<()> {
    if org == caller.org_id || org == caller.org_slug {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "the caller does not act in this org",
        ))
    }
}

fn only_owners(caller: &Caller, what: &str) -> ApiResult<()> {
    if caller.role.as_deref() == Some(OWNER) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::PermissionDenied,
            format!("only an owner may {what}"),
        ))
    }
}

fn member_error(e: MemberError) -> ApiError {
    match e {
        MemberError::LastOwner => ApiError::conflict(
            "last_owner",
            "the org must keep an owner; promote another member first",
        ),
        MemberError::AlreadyMember(email) => {
            ApiError::conflict("already_member", format!("{email} is already a member"))
        }
        MemberError::Store(e) => e.into(),
    }
}

fn membership_not_found() -> ApiError {
    let mut e = ApiError::not_found(ErrorCode::NotFound, "membership");
    e.slug = Some("membership_not_found");
    e
}

/// Members and pending invitations; `members:read:own` sees only its own
/// membership.
pub async fn list(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(org): ApiPath<String>,
) -> ApiResult<Json<MembershipList>> {
    own_org(&caller, &org)?;
    let narrowed = caller.narrowing(Scope::MembersRead).map(str::to_string);
    let memberships: Vec<Membership> = ctx
        .store
        .list_members(&caller.org_id)
        .await?
        .iter()
        .filter(|m| narrowed.as_deref().is_none_or(|me| m.user_id == me))
        .map(record_json)
        .collect();
    Ok(Json(MembershipList { memberships }))
}

/// Invites `email` as `role`. Without a mailer, the single-use token and
/// the URL accepting it are in this answer (and nowhere else: only a hash
/// is stored).
pub async fn invite(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(org): ApiPath<String>,
    ApiJson(body): ApiJson<Invite>,
) -> ApiResult<Created<Invited>> {
    own_org(&caller, &org)?;
    let email = body.email.trim().to_ascii_lowercase();
    let mut fields = Fields::default();
    fields.email("email", &email);
    fields.one_of("role", &body.role, ROLES);
    fields.into_result()?;
    if body.role == OWNER {
        only_owners(&caller, "invite an owner")?;
    }

    let token = Zeroizing::new(format!("inv_{}", random_base62()));
    let expires_at = Utc::now() + Duration::days(INVITATION_TTL_DAYS);
    let summary = format!("invited {email} as {}", body.role);
    let id = ctx
        .store
        .create_invitation(
            NewInvitation {
                org_id: &caller.org_id,
                email: &email,
                role: &body.role,
                token_hash: &hash_key(&ctx.pepper, &token),
                invited_by: &caller.user_id,
                expires_at,
            },
            |id| vec![ctx.config_row(&caller, EventType::MemberInvited, "membership", id, summary)],
        )
        .await
        .map_err(member_error)?;
    let url = format!("{}/invitations/{}", ctx.config.public_url, token.as_str());
    Ok(Created(Invited {
        membership: Membership {
            id,
            org_id: caller.org_id,
            user_id: String::new(),
            email,
            role: body.role,
            invited_by: Some(caller.user_id),
            invited_at: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
            accepted_at: None,
        },
        invitation: InvitationToken {
            token: token.to_string(),
            url,
            expires_at: expires_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        },
    }))
}

/// Changes a member's role (owners only); `409 pending_invitation` for an
/// invitation not yet accepted, `409 last_owner` when it would leave the
/// org without an owner.
pub async fn change_role(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath((org, key)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ChangeRole>,
) -> ApiResult<Json<Membership>> {
    own_org(&caller, &org)?;
    let mut fields = Fields::default();
    fields.one_of("role", &body.role, ROLES);
    fields.into_result()?;
    only_owners(&caller, "change a member's role")?;
    let member = match ctx.store.member_target(&caller.org_id, &key).await? {
        Some(MemberTarget::Member(m)) => m,
        Some(MemberTarget::Pending(_)) => {
            return Err(ApiError::conflict(
                "pending_invitation",
                "the invitation is not accepted yet; revoke it and invite again",
            ))
        }
        None => return Err(membership_not_found()),
    };
    let summary = format!(
        "changed the role of {} from {} to {}",
        member.email, member.role, body.role
    );
    let row = ctx.config_row(
        &caller,
        EventType::MemberRoleChanged,
        "membership",
        &member.id,
        summary,
    );
    let changed = ctx
        .store
        .change_member_role(&caller.org_id, &member.user_id, &body.role, &[row])
        .await
        .map_err(member_error)?;
    if !changed {
        return Err(membership_not_found());
    }
    let mut out = record_json(&member);
    out.role = body.role;
    Ok(Json(out))
}

/// Removes a member (their sessions stop working for the org with the next
/// request) or revokes a pending invitation.
pub async fn remove(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath((org, key)): ApiPath<(String, String)>,
) -> ApiResult<Json<ResourceStatus>> {
    own_org(&caller, &org)?;
    match ctx.store.member_target(&caller.org_id, &key).await? {
        Some(MemberTarget::Member(member)) => {
            if member.role == OWNER {
                only_owners(&caller, "remove an owner")?;
            }
            let summary = format!("removed {} ({})", member.email, member.role);
            let row = ctx.config_row(
                &caller,
                EventType::MemberRemoved,
                "membership",
                &member.id,
                summary,
            );
            let removed = ctx
                .store
                .remove_member(&caller.org_id, &member.user_id, &[row])
                .await
                .map_err(member_error)?;
            if !removed {
                return Err(membership_not_found());
            }
            Ok(Json(ResourceStatus {
                id: member.id,
                status: "removed",
            }))
        }
        Some(MemberTarget::Pending(invite)) => {
            let summary = format!("revoked the invitation of {}", invite.email);
            let row = ctx.config_row(
                &caller,
                EventType::InvitationRevoked,
                "membership",
                &invite.id,
                summary,
            );
            if !ctx
                .store
                .revoke_invitation(&caller.org_id, &invite.id, &[row])
                .await?
            {
                return Err(membership_not_found());
            }
            Ok(Json(ResourceStatus {
                id: invite.id,
                status: "revoked",
            }))
        }
        None => Err(membership_not_found()),
    }
}

/// Whether the request proves it comes from the existing account `login`:
/// a `Bearer` session token of that user, or the account's password.
async fn proves_account(
    ctx: &Ctx,
    login: &evershell_store::UserLogin,
    password: Option<&Zeroizing<String>>,
    headers: &axum::http::HeaderMap,
) -> ApiResult<()> {
    if let Some(token) = bearer(headers).filter(|t| t.starts_with("eyJ")) {
        let now = Utc::now().timestamp();
        if let Ok(claims) = ctx.sessions.verify(&ctx.store, &token, now).await {
            if claims.sub == login.user_id {
                return Ok(());
            }
        }
    } else if let Some(password) = password {
        let secret = password.clone();
        let phc = login.password_hash.clone();
        let matched =
            tokio::task::spawn_blocking(move || password::verify(&secret, phc.as_deref()))
                .await
                .map_err(ApiError::internal)?;
        if matched {
            return Ok(());
        }
    }
    Err(ApiError::new(
        ErrorCode::Unauthenticated,
        "this email has an account: accept with its password or signed in as it",
    ))
}

fn invitation_not_found() -> ApiError {
    let mut e = ApiError::new(
        ErrorCode::NotFound,
        "no such invitation: it may have expired, been used or been revoked",
    );
    e.slug = Some("invitation_not_found");
    e
}

/// `GET /invitations/{token}`: what accepting would do.
pub async fn show_invitation(
    State(ctx): State<Arc<Ctx>>,
    Path(token): Path<String>,
) -> ApiResult<Json<Value>> {
    let hash = hash_key(&ctx.pepper, &token);
    let (org_slug, email, role, expires_at, _) = ctx
        .store
        .invitation_by_token(&hash)
        .await?
        .ok_or_else(invitation_not_found)?;
    let has_account = ctx.store.user_login(&email).await?.is_some();
    Ok(Json(json!({
        "org_slug": org_slug, "email": email, "role": role, "expires_at": expires_at,
        "account_exists": has_account,
    })))
}

/// `POST /invitations/{token}`: accepts, once. A new account needs a
/// password (at least 12 characters). An existing account must prove it is
/// the invited person — its password, or a session token of that user —
/// so a token alone never attaches someone else's account to an org.
pub async fn accept_invitation(
    State(ctx): State<Arc<Ctx>>,
    Path(token): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<Value>> {
    // An empty body accepts for an existing account.
    let body: Accept = if body.iter().all(u8::is_ascii_whitespace) {
        Accept::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::field("body", format!("malformed json: {e}")))?
    };
    let hash = hash_key(&ctx.pepper, &token);
    let (_, email, _, _, posture) = ctx
        .store
        .invitation_by_token(&hash)
        .await?
        .ok_or_else(invitation_not_found)?;
    // Joining adds to the org: a create-class action like any other.
    if posture != "active" {
        return Err(ApiError::new(
            ErrorCode::BillingInactive,
            format!("the org is {posture}: it takes no new members"),
        ));
    }
    let login = ctx.store.user_login(&email).await?;
    if let Some(login) = &login {
        proves_account(&ctx, login, body.password.as_ref(), &headers).await?;
    }
    let has_account = login.is_some();
    let password_hash = match (&body.password, has_account) {
        (_, true) => None,
        (None, false) => {
            return Err(ApiError::field(
                "password",
                "required: this email has no account yet",
            ))
        }
        (Some(p), false) if p.chars().count() < password::MIN_LENGTH => {
            return Err(ApiError::field(
                "password",
                format!("must be at least {} characters", password::MIN_LENGTH),
            ))
        }
        (Some(p), false) => {
            let p = p.clone();
            Some(
                tokio::task::spawn_blocking(move || password::hash(&p))
                    .await
                    .map_err(ApiError::internal)?
                    .map_err(ApiError::internal)?,
            )
        }
    };
    let joined = ctx
        .store
        .accept_invitation(&hash, password_hash.as_deref(), |joined| {
            let mut row = evershell_core::AuditEvent::new(
                EventType::MemberJoined,
                &joined.org_id,
                &joined.user_id,
            );
            row.subject_type = Some("membership".to_string());
            row.subject_id = Some(joined.membership_id.clone());
            row.summary = Some(format!(
                "{} joined as {} (invitation accepted)",
                joined.email, joined.role
            ));
            vec![row]
        })
        .await?
        .ok_or_else(invitation_not_found)?;
    if joined.already_member {
        return Err(ApiError::conflict(
            "already_member",
            format!("{} is already a member of the org", joined.email),
        ));
    }
    let scopes: Vec<&str> = member_role_scopes(&joined.role)
        .unwrap_or_default()
        .iter()
        .map(|s| s.as_str())
        .collect();
    Ok(Json(json!({
        "membership_id": joined.membership_id, "org_id": joined.org_id,
        "org_slug": joined.org_slug, "user_id": joined.user_id, "email": joined.email,
        "role": joined.role, "permissions": scopes, "account_created": joined.new_user,
    })))
}
