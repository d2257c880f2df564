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

#[derive(Serialize, JsonSchema)]
pub struct ProviderList {
    pub providers: Vec<Provider>,
}

pub async fn create(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateProvider>,
) -> ApiResult<Created<Provider>> {
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
    fields.into_result()?;

    let now = Utc::now();
    let provider = Provider {
        id: new_id(Kind::Provider),
        org_id: caller.org_id.clone(),
        display_name: body.display_name.unwrap_or_else(|| body.name.clone()),
        name: body.name,
        kind: body.kind,
        domain: evershell_caps::normalize_host(&body.domain)
            .expect("validated above")
            .0,
        credential_name: body.credential_name,
        default_model: body.default_model,
        capabilities: body.capabilities,
        config: body.config,
        base_path: body.base_path,
        created_at: now,
        updated_at: now,
        archived_at: None,
    };
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
