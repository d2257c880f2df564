//! API keys: `GET`/`POST /v1/api-keys`, `DELETE /v1/api-keys/{id}`. Only
//! sessions hold `apikeys:write`, so a key can never mint or revoke keys.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use evershell_core::scope::permission_set;
use evershell_core::{ErrorCode, EventType};
use evershell_store::{ApiKeyMeta, NewApiKey};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::auth::{hash_key, key_prefix, new_key_secret, Caller};
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{ApiJson, ApiPath};
use crate::api::respond::{Created, ResourceStatus};
use crate::api::validate::Fields;
use crate::Ctx;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub label: String,
    /// `full_access`, `submit_observe` or `read_only`.
    pub permission_set: String,
    /// When the key stops authenticating (RFC 3339, in the future); keys
    /// without it live until revoked.
    #[serde(default)]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The org's live keys, never their values.
#[derive(Serialize, JsonSchema)]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKeyMeta>,
}

/// A new key with its value, which no other answer shows.
#[derive(Serialize, JsonSchema)]
pub struct NewKey {
    pub id: String,
    pub label: String,
    pub prefix: String,
    pub permission_set: String,
    pub value: String,
    /// When the key stops authenticating, if it was given one.
    pub expires_at: Option<String>,
}

pub async fn list(State(ctx): State<Arc<Ctx>>, caller: Caller) -> ApiResult<Json<ApiKeyList>> {
    let api_keys = ctx.store.list_api_keys(&caller.org_id).await?;
    Ok(Json(ApiKeyList { api_keys }))
}

/// Creates a key; its `value` is in this answer and nowhere else.
pub async fn create(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> ApiResult<Created<NewKey>> {
    let mut fields = Fields::default();
    fields.non_empty("label", &body.label);
    fields.max_len("label", &body.label, 100);
    if permission_set(&body.permission_set).is_none() {
        fields.add(
            "permission_set",
            "must be full_access, submit_observe or read_only",
        );
    }
    if body.expires_at.is_some_and(|t| t <= chrono::Utc::now()) {
        fields.add("expires_at", "must be in the future");
    }
    fields.into_result()?;

    let secret = zeroize::Zeroizing::new(new_key_secret());
    let prefix = key_prefix(&secret);
    let id = ctx
        .store
        .insert_api_key(NewApiKey {
            org_id: &caller.org_id,
            label: &body.label,
            prefix: &prefix,
            secret_hash: &hash_key(&ctx.pepper, &secret),
            permission_set: &body.permission_set,
            created_by: &caller.user_id,
            expires_at: body.expires_at,
        })
        .await?;
    let summary = format!("created api key {:?}", body.label);
    let row = ctx.config_row(&caller, EventType::ApiKeyCreated, "api_key", &id, summary);
    ctx.audit
        .record_row(row)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Created(NewKey {
        id,
        label: body.label,
        prefix,
        permission_set: body.permission_set,
        value: secret.to_string(),
        expires_at: body
            .expires_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    }))
}

/// Revokes a key: its next request is `401`.
pub async fn delete_one(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ResourceStatus>> {
    if !ctx.store.revoke_api_key(&caller.org_id, &id).await? {
        let mut e = ApiError::not_found(ErrorCode::NotFound, "api key");
        e.slug = Some("api_key_not_found");
        return Err(e);
    }
    let row = ctx.config_row(
        &caller,
        EventType::ApiKeyRevoked,
        "api_key",
        &id,
        format!("revoked api key {id}"),
    );
    ctx.audit
        .record_row(row)
        .await
        .map_err(ApiError::unavailable)?;
    Ok(Json(ResourceStatus {
        id,
        status: "revoked",
    }))
}
