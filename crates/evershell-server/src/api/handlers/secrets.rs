//! Secrets: opaque named values transforms reference as `secrets["name"]`.
//! Only names are ever returned; values are encrypted at rest.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use evershell_core::{AuditEvent, ErrorCode, EventType};
use evershell_store::secrets::MasterKey;
use evershell_store::{NewSecret, SecretMeta, Store};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::api::auth::Caller;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{ApiJson, ApiPath};
use crate::api::respond::Created;
use crate::api::validate::Fields;
use crate::Ctx;

/// Largest secret value accepted.
const MAX_VALUE_BYTES: usize = 64 * 1024;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSecret {
    pub name: String,
    /// Not empty, at most 64 KiB.
    #[schemars(with = "String")]
    pub value: Zeroizing<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceSecret {
    /// Not empty, at most 64 KiB.
    #[schemars(with = "String")]
    pub value: Zeroizing<String>,
}

/// The org's secrets, by name; never their values.
#[derive(Serialize, JsonSchema)]
pub struct SecretList {
    pub secrets: Vec<SecretMeta>,
}

/// `{"name", "status": "deleted"}`.
#[derive(Serialize, JsonSchema)]
pub struct SecretStatus {
    pub name: String,
    pub status: &'static str,
}

pub async fn list(State(ctx): State<Arc<Ctx>>, caller: Caller) -> ApiResult<Json<SecretList>> {
    let secrets = ctx.store.list_secrets(&caller.org_id).await?;
    Ok(Json(SecretList { secrets }))
}

/// The metadata of a secret just written; a concurrent delete may have
/// removed it since.
async fn written(ctx: &Ctx, org_id: &str, name: &str) -> ApiResult<SecretMeta> {
    ctx.store
        .secret_meta(org_id, name)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::SecretNotFound, "secret"))
}

pub async fn create(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateSecret>,
) -> ApiResult<Created<SecretMeta>> {
    let row = put_secret(
        &ctx.store,
        &ctx.master,
        &caller.org_id,
        &caller.user_id,
        &body.name,
        &body.value,
        false,
    )
    .await?;
    ctx.audit.publish(&[row]);
    Ok(Created(written(&ctx, &caller.org_id, &body.name).await?))
}

pub async fn replace(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ReplaceSecret>,
) -> ApiResult<Json<SecretMeta>> {
    let row = put_secret(
        &ctx.store,
        &ctx.master,
        &caller.org_id,
        &caller.user_id,
        &name,
        &body.value,
        true,
    )
    .await?;
    ctx.audit.publish(&[row]);
    Ok(Json(written(&ctx, &caller.org_id, &name).await?))
}

pub async fn delete_one(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<SecretStatus>> {
    let mut row = AuditEvent::new(EventType::SecretDeleted, &caller.org_id, &caller.user_id);
    row.subject_type = Some("secret".into());
    row.subject_id = Some(name.clone());
    row.summary = Some(format!("{} deleted secret {name}", caller.user_id));
    let rows = std::slice::from_ref(&row);
    if !ctx
        .store
        .delete_named_secret(&caller.org_id, &name, rows)
        .await?
    {
        return Err(ApiError::not_found(ErrorCode::SecretNotFound, "secret"));
    }
    ctx.audit.publish(rows);
    Ok(Json(SecretStatus {
        name,
        status: "deleted",
    }))
}

/// Validates and stores secret `name` of `org_id` with its `secret_created`
/// row (committed). `replace` allows overwriting an existing value. Shared
/// by the API and `evershell admin set-secret`.
pub async fn put_secret(
    store: &Store,
    master: &MasterKey,
    org_id: &str,
    user_id: &str,
    name: &str,
    value: &str,
    replace: bool,
) -> ApiResult<AuditEvent> {
    let mut fields = Fields::default();
    fields.slug("name", name);
    fields.non_empty("value", value);
    fields.max_len("value", value, MAX_VALUE_BYTES);
    fields.into_result()?;
    let mut row = AuditEvent::new(EventType::SecretCreated, org_id, user_id);
    row.subject_type = Some("secret".into());
    row.subject_id = Some(name.to_string());
    let verb = if replace { "set" } else { "created" };
    row.summary = Some(format!("{user_id} {verb} secret {name}"));
    let secret = NewSecret {
        org_id,
        name,
        value: value.as_bytes(),
        created_by: user_id,
        replace,
    };
    let stored = store
        .put_named_secret(master, secret, std::slice::from_ref(&row))
        .await;
    if let Err(e) = stored {
        if e.is_unique_violation() {
            return Err(ApiError::conflict(
                "secret_exists",
                "a secret with this name exists; PUT /v1/secrets/{name} replaces it",
            ));
        }
        return Err(e.into());
    }
    Ok(row)
}
