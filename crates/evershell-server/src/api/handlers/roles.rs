//! Agent roles: what a workspace's agent is, its model and its capabilities.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use evershell_core::id::{new_id, Kind};
use evershell_core::model::{AgentRole, Provider, Resources};
use evershell_core::{ErrorCode, EventType};
use evershell_store::DocTable;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::providers::ListQuery;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{ApiJson, ApiPath, ApiQuery};
use crate::api::respond::Created;
use crate::api::validate::Fields;
use crate::Ctx;

/// Default upper bound of model calls per task.
pub const DEFAULT_MAX_CONTINUATIONS: u32 = 50;
/// Default context window budget before compaction.
pub const DEFAULT_MAX_CONTEXT_TOKENS: u64 = 200_000;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    description: String,
    provider_id: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    capabilities: String,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    environment_description: String,
    #[serde(default)]
    task_timeout_seconds: Option<u64>,
    #[serde(default)]
    idle_timeout_seconds: Option<u64>,
    #[serde(default)]
    thinking_effort: Option<String>,
    #[serde(default)]
    max_continuations: Option<u32>,
    #[serde(default)]
    max_context_tokens: Option<u64>,
    #[serde(default)]
    pool_policy: String,
    #[serde(default)]
    pool_size: u32,
    #[serde(default)]
    pool_max_size: u32,
    #[serde(default)]
    pack_ids: Vec<String>,
    #[serde(default)]
    resources: Resources,
    #[serde(default)]
    extra_ports: Vec<u16>,
    #[serde(default)]
    image: String,
}

#[derive(Serialize, JsonSchema)]
pub struct RoleList {
    pub agent_roles: Vec<AgentRole>,
}

pub const ENVIRONMENTS: &[&str] = &["development", "staging", "production"];
pub const THINKING_EFFORTS: &[&str] = &["high", "medium", "low", "off"];

pub async fn create(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateRole>,
) -> ApiResult<Created<AgentRole>> {
    let mut fields = Fields::default();
    fields.slug("name", &body.name);
    fields.caps(&body.capabilities);
    let environment = body
        .environment
        .unwrap_or_else(|| "development".to_string());
    fields.one_of("environment", &environment, ENVIRONMENTS);
    let thinking_effort = body.thinking_effort.unwrap_or_else(|| "off".to_string());
    fields.one_of("thinking_effort", &thinking_effort, THINKING_EFFORTS);
    fields.one_of("pool_policy", &body.pool_policy, &["", "static", "dynamic"]);
    if !body.pool_policy.is_empty() {
        fields.add(
            "pool_policy",
            "warm pools are not available in this version; use \"\"",
        );
    }
    if body.resources != Resources::default() {
        fields.add(
            "resources",
            "per-role sandbox limits are not available in this version",
        );
    }
    if !body.image.is_empty() {
        fields.add(
            "image",
            "images apply to the Kubernetes runtime, which this version does not have",
        );
    }
    if body.pool_size != 0 || body.pool_max_size != 0 {
        fields.add("pool_size", "warm pools are not available in this version");
    }
    if !body.pack_ids.is_empty() {
        fields.add(
            "pack_ids",
            "content packs are not available in this version",
        );
    }
    if body.max_continuations == Some(0) {
        fields.add("max_continuations", "must be at least 1");
    }
    for (i, port) in body.extra_ports.iter().enumerate() {
        if matches!(port, 0 | 53 | 80 | 443) {
            fields.add(
                format!("extra_ports[{i}]"),
                "must be a port other than 0, 53, 80 and 443",
            );
        }
    }
    let provider: Option<Provider> = ctx
        .store
        .get_doc(DocTable::Providers, &caller.org_id, &body.provider_id)
        .await?;
    let provider = match provider {
        Some(p) if p.archived_at.is_none() => Some(p),
        Some(_) => {
            fields.add("provider_id", "provider is archived");
            None
        }
        None => {
            fields.add("provider_id", "no provider with this id or name");
            None
        }
    };
    let model = body
        .model
        .or_else(|| provider.as_ref().map(|p| p.default_model.clone()));
    if model.as_deref().is_none_or(str::is_empty) {
        fields.add("model", "required when the provider has no default_model");
    }
    fields.into_result()?;
    let provider = provider.expect("validated above");

    let now = Utc::now();
    let role = AgentRole {
        id: new_id(Kind::Role),
        org_id: caller.org_id.clone(),
        display_name: body.display_name.unwrap_or_else(|| body.name.clone()),
        name: body.name,
        description: body.description,
        provider_id: provider.id,
        model: model.expect("validated above"),
        capabilities: body.capabilities,
        environment,
        environment_description: body.environment_description,
        task_timeout_seconds: body
            .task_timeout_seconds
            .unwrap_or(crate::DEFAULT_TASK_TIMEOUT_SECONDS),
        idle_timeout_seconds: body
            .idle_timeout_seconds
            .unwrap_or(crate::DEFAULT_IDLE_TIMEOUT_SECONDS),
        thinking_effort,
        max_continuations: body.max_continuations.unwrap_or(DEFAULT_MAX_CONTINUATIONS),
        max_context_tokens: body
            .max_context_tokens
            .unwrap_or(DEFAULT_MAX_CONTEXT_TOKENS),
        pool_policy: body.pool_policy,
        pool_size: body.pool_size,
        pool_max_size: body.pool_max_size,
        pack_ids: body.pack_ids,
        resources: body.resources,
        extra_ports: body.extra_ports,
        image: body.image,
        created_at: now,
        updated_at: now,
        archived_at: None,
    };
    let summary = format!("created agent role {}", role.name);
    let row = ctx.config_row(
        &caller,
        EventType::AgentRoleCreated,
        "agent_role",
        &role.id,
        summary,
    );
    let stored = ctx
        .store
        .insert_doc(
            DocTable::AgentRoles,
            &role.id,
            &role.org_id,
            &role.name,
            &role,
            std::slice::from_ref(&row),
        )
        .await;
    if let Err(e) = stored {
        if e.is_unique_violation() {
            return Err(ApiError::field(
                "name",
                "an agent role with this name exists",
            ));
        }
        return Err(e.into());
    }
    ctx.audit.publish(&[row]);
    Ok(Created(role))
}

pub async fn list(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<RoleList>> {
    let agent_roles: Vec<AgentRole> = ctx
        .store
        .list_docs(DocTable::AgentRoles, &caller.org_id, query.include_archived)
        .await?;
    Ok(Json(RoleList { agent_roles }))
}

pub async fn get_one(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<AgentRole>> {
    ctx.store
        .get_doc(DocTable::AgentRoles, &caller.org_id, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(ErrorCode::RoleNotFound, "agent role"))
}
