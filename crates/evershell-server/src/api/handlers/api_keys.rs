//! API keys: `GET`/`POST /v1/api-keys`, `DELETE /v1/api-keys/{id}`. Only
//! sessions hold `apikeys:write`, so a key can never mint or revoke keys.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use evershell_core::scope::permission_set;
use evershell_core::{ErrorCode, EventType};
use evershell_store::NewApiKey;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::auth::{hash_key, key_prefix, new_key_secret, Caller};
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::ApiJson;
use crate::api::validate::Fields;
use crate::Ctx;

#[derive(Deserialize)]
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

pub async fn list(State(ctx): State<Arc<Ctx>>, caller: Caller) -> ApiResult<Json<Value>> {
    let keys: Vec<Value> = ctx
        .store
        .list_api_keys(&caller.org_id)
        .await?
        .into_iter()
        .map(|k| {
            json!({
                "id": k.id, "label": k.label, "prefix": k.prefix,
                "permission_set": k.permission_set, "created_by": k.created_by,
                "created_at": k.created_at, "last_used_at": k.last_used_at,
                "expires_at": k.expires_at,
            })
        })
        .collect();
    Ok(Json(json!({ "api_keys": keys })))
}

/// Creates a key; its `value` is in this answer and nowhere else.
pub async fn create(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
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
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id, "label": body.label, "prefix": prefix,
            "permission_set": body.permission_set, "value": secret.as_str(),
            "expires_at": body.expires_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        })),
    ))
}

/// Revokes a key: its next request is `401`.
pub async fn delete_one(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
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
    Ok(Json(json!({ "id": id, "status": "revoked" })))
}
