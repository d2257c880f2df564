//! Credentials: typed secrets the proxy's broker stamps onto requests. The
//! value is encrypted at rest and never returned.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use evershell_core::id::{new_id, Kind};
use evershell_core::model::Credential;
use evershell_core::{AuditEvent, ErrorCode, EventType, Scope};
use evershell_store::secrets::MasterKey;
use evershell_store::{DocTable, Store};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::api::auth::Caller;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{ApiJson, ApiPath};
use crate::api::respond::{Created, ResourceStatus};
use crate::api::validate::Fields;
use crate::Ctx;

/// Credential kinds the broker can stamp today.
pub const SUPPORTED_KINDS: &[&str] = &["api_key", "query_api_key", "basic_auth"];

/// The body of `POST /v1/credentials`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredential {
    pub name: String,
    pub provider: String,
    /// `api_key`, `query_api_key` or `basic_auth`.
    pub kind: String,
    /// The secret of an `api_key` or `query_api_key` credential.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub api_key: Option<Zeroizing<String>>,
    /// The secret of a `basic_auth` credential.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub password: Option<Zeroizing<String>>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub provider_config: serde_json::Map<String, Value>,
    #[serde(default)]
    pub allow_user_override: bool,
}

pub async fn create(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateCredential>,
) -> ApiResult<Created<Credential>> {
    if !caller.holds(Scope::AuthWrite) {
        // `auth:write:own` only creates personal overrides of OAuth
        // credentials, which this version does not offer.
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "creating org credentials needs auth:write",
        ));
    }
    let who = caller
        .api_key_label
        .as_deref()
        .map(|l| format!("api key {l:?}"))
        .unwrap_or(caller.user_id.clone());
    let (credential, row) = create_credential(
        &ctx.store,
        &ctx.master,
        &caller.org_id,
        &caller.user_id,
        &who,
        body,
    )
    .await?;
    ctx.audit.publish(&[row]);
    Ok(Created(credential))
}

/// The secret a credential of `body.kind` stores, checking that the kind's
/// inputs are present: `api_key` for `api_key` and `query_api_key` (whose
/// optional `provider_config.param` names the query parameter), `password`
/// and `provider_config.username` for `basic_auth`.
fn credential_secret(body: &CreateCredential, fields: &mut Fields) -> Option<Zeroizing<String>> {
    let present = |v: &Option<Zeroizing<String>>| v.clone().filter(|k| !k.trim().is_empty());
    let text = |key: &str| {
        body.provider_config
            .get(key)
            .map(|v| v.as_str().is_some_and(|s| !s.is_empty()))
    };
    match body.kind.as_str() {
        "api_key" | "query_api_key" => {
            if text("param") == Some(false) {
                fields.add("provider_config.param", "must be a non-empty string");
            }
            let secret = present(&body.api_key);
            if secret.is_none() {
                fields.add("api_key", format!("required for kind {}", body.kind));
            }
            secret
        }
        "basic_auth" => {
            if text("username") != Some(true) {
                fields.add("provider_config.username", "required for kind basic_auth");
            }
            let secret = present(&body.password);
            if secret.is_none() {
                fields.add("password", "required for kind basic_auth");
            }
            secret
        }
        _ => None,
    }
}

/// Validates and stores a credential of `org_id`: the value encrypted under
/// its `durable_ref`, the record, and its `credential_created` row
/// (committed). Shared by the API and `evershell admin create-credential`.
pub async fn create_credential(
    store: &Store,
    master: &MasterKey,
    org_id: &str,
    user_id: &str,
    who: &str,
    body: CreateCredential,
) -> ApiResult<(Credential, AuditEvent)> {
    let mut fields = Fields::default();
    fields.slug("name", &body.name);
    fields.non_empty("provider", &body.provider);
    fields.one_of("kind", &body.kind, SUPPORTED_KINDS);
    let secret = credential_secret(&body, &mut fields);
    fields.into_result()?;
    let secret = secret.expect("validated above");

    let now = Utc::now();
    let id = new_id(Kind::Credential);
    let credential = Credential {
        durable_ref: format!("db:{id}"),
        id,
        org_id: org_id.to_string(),
        user_id: None,
        name: body.name,
        provider: body.provider,
        kind: body.kind,
        scopes: body.scopes,
        provider_config: body.provider_config,
        last_minted_at: None,
        last_minted_status: None,
        allow_user_override: body.allow_user_override,
        status: "active".to_string(),
        created_at: now,
        updated_at: now,
    };
    // The value is stored first: a credential row never points at nothing.
    store
        .put_secret(master, &credential.durable_ref, secret.as_bytes())
        .await?;
    let mut row = AuditEvent::new(EventType::CredentialCreated, org_id, user_id);
    row.subject_type = Some("credential".into());
    row.subject_id = Some(credential.id.clone());
    row.summary = Some(format!("{who} created credential {}", credential.name));
    let stored = store
        .insert_doc(
            DocTable::Credentials,
            &credential.id,
            &credential.org_id,
            &credential.name,
            &credential,
            std::slice::from_ref(&row),
        )
        .await;
    if let Err(e) = stored {
        store.delete_secret(&credential.durable_ref).await?;
        if e.is_unique_violation() {
            return Err(ApiError::conflict(
                "credential_exists",
                "a credential with this name exists",
            ));
        }
        return Err(e.into());
    }
    Ok((credential, row))
}

#[derive(Serialize, JsonSchema)]
pub struct CredentialList {
    pub credentials: Vec<Credential>,
}

pub async fn list(State(ctx): State<Arc<Ctx>>, caller: Caller) -> ApiResult<Json<CredentialList>> {
    let credentials: Vec<Credential> = ctx
        .store
        .list_docs(DocTable::Credentials, &caller.org_id, true)
        .await?;
    Ok(Json(CredentialList { credentials }))
}

pub async fn get_one(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Credential>> {
    ctx.store
        .get_doc(DocTable::Credentials, &caller.org_id, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(ErrorCode::CredentialNotFound, "credential"))
}

pub async fn delete_one(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ResourceStatus>> {
    if !caller.holds(Scope::AuthWrite) {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "deleting org credentials needs auth:write",
        ));
    }
    let credential: Credential = ctx
        .store
        .get_doc(DocTable::Credentials, &caller.org_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::CredentialNotFound, "credential"))?;
    // A provider naming it would be left unable to reach its model.
    let providers: Vec<evershell_core::model::Provider> = ctx
        .store
        .list_docs(DocTable::Providers, &caller.org_id, true)
        .await?;
    let users: Vec<&str> = providers
        .iter()
        .filter(|p| p.credential_name == credential.name)
        .map(|p| p.name.as_str())
        .collect();
    if !users.is_empty() {
        return Err(ApiError::conflict(
            "credential_in_use",
            format!("providers use it: {}", users.join(", ")),
        ));
    }
    let summary = format!("deleted credential {}", credential.name);
    let row = ctx.config_row(
        &caller,
        EventType::CredentialDeleted,
        "credential",
        &credential.id,
        summary,
    );
    ctx.store
        .delete_doc(
            DocTable::Credentials,
            &caller.org_id,
            &credential.id,
            std::slice::from_ref(&row),
        )
        .await?;
    ctx.store.delete_secret(&credential.durable_ref).await?;
    ctx.audit.publish(&[row]);
    Ok(Json(ResourceStatus {
        id: credential.id,
        status: "deleted",
    }))
}
