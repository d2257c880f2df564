//! Providers: where a role's model lives and which credential reaches it.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use evershell_core::id::{new_id, Kind};
use evershell_core::model::{Credential, Provider, PROVIDER_KINDS};
use evershell_core::{ErrorCode, EventType};
use evershell_store::DocTable;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::auth::Caller;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{ApiJson, ApiPath, ApiQuery};
use crate::api::respond::Created;
use crate::api::validate::Fields;
use crate::Ctx;

/// Provider kinds the agent service can call today.
const AGENT_KINDS: &[&str] = &["anthropic", "openai"];

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProvider {
    name: String,
    kind: String,
    #[serde(default)]
    display_name: Option<String>,
    domain: String,
    credential_name: String,
    #[serde(default)]
    default_model: String,
    #[serde(default)]
    capabilities: String,
    #[serde(default)]
    config: serde_json::Map<String, Value>,
    #[serde(default)]
    base_path: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Lists archived resources too.
    #[serde(default)]
    pub include_archived: bool,
}

/// `PATCH /v1/providers/{id}`: absent fields stay as they are; `config`
/// merges key by key, a `null` value removing its key; `base_path: ""`
/// removes the base path. The result is validated as a new provider would
/// be.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchProvider {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    credential_name: Option<String>,
    #[serde(default)]
    default_model: Option<String>,
    #[serde(default)]
    capabilities: Option<String>,
    #[serde(default)]
    config: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    base_path: Option<String>,
}

/// Merges `patch` into `config`: each key replaces, `null` removes.
pub fn merge_config(
    config: &mut serde_json::Map<String, Value>,
    patch: serde_json::Map<String, Value>,
) {
    for (key, value) in patch {
        if value.is_null() {
            config.remove(&key);
        } else {
            config.insert(key, value);
        }
    }
}

#[derive(Serialize, JsonSchema)]
pub struct ProviderList {
    pub providers: Vec<Provider>,
}

pub async fn create(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateProvider>,
) -> ApiResult<Created<Provider>> {
    check(&ctx, &caller, &body).await?;
    let now = Utc::now();
    let provider = build(body, new_id(Kind::Provider), &caller.org_id, now, None);
    let summary = format!("created provider {}", provider.name);
    let row = ctx.config_row(
        &caller,
        EventType::ProviderCreated,
        "provider",
        &provider.id,
        summary,
    );
    let stored = ctx
        .store
        .insert_doc(
            DocTable::Providers,
            &provider.id,
            &provider.org_id,
            &provider.name,
            &provider,
            std::slice::from_ref(&row),
        )
        .await;
    if let Err(e) = stored {
        if e.is_unique_violation() {
            return Err(ApiError::field("name", "a provider with this name exists"));
        }
        return Err(e.into());
    }
    ctx.audit.publish(&[row]);
    Ok(Created(provider))
}

pub async fn update(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<PatchProvider>,
) -> ApiResult<Json<Provider>> {
    let current: Provider = ctx
        .store
        .get_doc(DocTable::Providers, &caller.org_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::ProviderNotFound, "provider"))?;
    let mut config = current.config.clone();
    if let Some(patch) = patch.config {
        merge_config(&mut config, patch);
    }
    let body = CreateProvider {
        name: patch.name.unwrap_or(current.name),
        kind: patch.kind.unwrap_or(current.kind),
        display_name: Some(patch.display_name.unwrap_or(current.display_name)),
        domain: patch.domain.unwrap_or(current.domain),
        credential_name: patch.credential_name.unwrap_or(current.credential_name),
        default_model: patch.default_model.unwrap_or(current.default_model),
        capabilities: patch.capabilities.unwrap_or(current.capabilities),
        config,
        base_path: match patch.base_path {
            Some(path) if path.is_empty() => None,
            Some(path) => Some(path),
            None => current.base_path,
        },
    };
    check(&ctx, &caller, &body).await?;
    let mut provider = build(
        body,
        current.id,
        &caller.org_id,
        current.created_at,
        current.archived_at,
    );
    provider.updated_at = Utc::now();
    let summary = format!("updated provider {}", provider.name);
    let row = ctx.config_row(
        &caller,
        EventType::ProviderUpdated,
        "provider",
        &provider.id,
        summary,
    );
    let stored = ctx
        .store
        .replace_doc(
            DocTable::Providers,
            &caller.org_id,
            &provider.id,
            &provider.name,
            &provider,
            std::slice::from_ref(&row),
        )
        .await;
    match stored {
        Ok(true) => {}
        Ok(false) => return Err(ApiError::not_found(ErrorCode::ProviderNotFound, "provider")),
        Err(e) if e.is_unique_violation() => {
            return Err(ApiError::field("name", "a provider with this name exists"))
        }
        Err(e) => return Err(e.into()),
    }
    ctx.audit.publish(&[row]);
    Ok(Json(provider))
}

fn build(
    body: CreateProvider,
    id: String,
    org_id: &str,
    created_at: chrono::DateTime<Utc>,
    archived_at: Option<chrono::DateTime<Utc>>,
) -> Provider {
    Provider {
        id,
        org_id: org_id.to_string(),
        display_name: body.display_name.unwrap_or_else(|| body.name.clone()),
        name: body.name,
        kind: body.kind,
        domain: evershell_caps::normalize_host(&body.domain)
            .expect("validated by check")
            .0,
        credential_name: body.credential_name,
        default_model: body.default_model,
        capabilities: body.capabilities,
        config: body.config,
        base_path: body.base_path,
        created_at,
        updated_at: created_at,
        archived_at,
    }
}

/// Every rule a provider document must satisfy, reported all at once.
async fn check(ctx: &Ctx, caller: &Caller, body: &CreateProvider) -> ApiResult<()> {
    let mut fields = Fields::default();
    fields.slug("name", &body.name);
    fields.one_of("kind", &body.kind, PROVIDER_KINDS);
    if PROVIDER_KINDS.contains(&body.kind.as_str()) && !AGENT_KINDS.contains(&body.kind.as_str()) {
        fields.add(
            "kind",
            format!(
                "the agent does not speak {:?} in this version (use anthropic or openai)",
                body.kind
            ),
        );
    }
    if evershell_caps::normalize_host(&body.domain).is_err() || body.domain.contains('*') {
        fields.add("domain", "must be a host name");
    }
    if body.base_path.is_some() && body.kind != "openai" {
        fields.add(
            "base_path",
            "applies to kind openai (OpenAI-compatible servers) only",
        );
    }
    if let Some(base) = &body.base_path {
        if !base.starts_with('/') || base.contains("..") {
            fields.add("base_path", "must start with / and contain no dot segments");
        }
    }
    fields.caps(&body.capabilities);
    let credential: Option<Credential> = ctx
        .store
        .get_doc(DocTable::Credentials, &caller.org_id, &body.credential_name)
        .await?;
    match credential {
        None => fields.add("credential_name", "no credential with this name"),
        Some(c) if c.provider != body.kind => fields.add(
            "credential_name",
            format!(
                "credential is for provider {:?}, not {:?}",
                c.provider, body.kind
            ),
        ),
        Some(_) => {}
    }
    fields.into_result()
}

pub async fn list(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<ProviderList>> {
    let providers: Vec<Provider> = ctx
        .store
        .list_docs(DocTable::Providers, &caller.org_id, query.include_archived)
        .await?;
    Ok(Json(ProviderList { providers }))
}

pub async fn get_one(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Provider>> {
    ctx.store
        .get_doc(DocTable::Providers, &caller.org_id, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(ErrorCode::ProviderNotFound, "provider"))
}
