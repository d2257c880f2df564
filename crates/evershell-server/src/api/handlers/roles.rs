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

/// `PATCH /v1/agent-roles/{id}`: absent fields stay as they are;
/// `pack_ids` replaces the whole list. The result is validated as a new
/// role would be. Live workspaces keep the policy they were provisioned
/// with; the change reaches a workspace when its sandbox next starts.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchRole {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    provider_id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    capabilities: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    environment_description: Option<String>,
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
    pool_policy: Option<String>,
    #[serde(default)]
    pool_size: Option<u32>,
    #[serde(default)]
    pool_max_size: Option<u32>,
    #[serde(default)]
    pack_ids: Option<Vec<String>>,
    #[serde(default)]
    resources: Option<Resources>,
    #[serde(default)]
    extra_ports: Option<Vec<u16>>,
    #[serde(default)]
    image: Option<String>,
}

pub async fn create(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateRole>,
) -> ApiResult<Created<AgentRole>> {
    let provider = check(&ctx, &caller, &body).await?;
    let role = build(
        body,
        provider,
        new_id(Kind::Role),
        &caller.org_id,
        Utc::now(),
        None,
    );
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

pub async fn update(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<PatchRole>,
) -> ApiResult<Json<AgentRole>> {
    let current: AgentRole = ctx
        .store
        .get_doc(DocTable::AgentRoles, &caller.org_id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::RoleNotFound, "agent role"))?;
    let body = CreateRole {
        name: patch.name.unwrap_or(current.name),
        display_name: Some(patch.display_name.unwrap_or(current.display_name)),
        description: patch.description.unwrap_or(current.description),
        provider_id: patch.provider_id.unwrap_or(current.provider_id),
        model: Some(patch.model.unwrap_or(current.model)),
        capabilities: patch.capabilities.unwrap_or(current.capabilities),
        environment: Some(patch.environment.unwrap_or(current.environment)),
        environment_description: patch
            .environment_description
            .unwrap_or(current.environment_description),
        task_timeout_seconds: Some(
            patch
                .task_timeout_seconds
                .unwrap_or(current.task_timeout_seconds),
        ),
        idle_timeout_seconds: Some(
            patch
                .idle_timeout_seconds
                .unwrap_or(current.idle_timeout_seconds),
        ),
        thinking_effort: Some(patch.thinking_effort.unwrap_or(current.thinking_effort)),
        max_continuations: Some(patch.max_continuations.unwrap_or(current.max_continuations)),
        max_context_tokens: Some(
            patch
                .max_context_tokens
                .unwrap_or(current.max_context_tokens),
        ),
        pool_policy: patch.pool_policy.unwrap_or(current.pool_policy),
        pool_size: patch.pool_size.unwrap_or(current.pool_size),
        pool_max_size: patch.pool_max_size.unwrap_or(current.pool_max_size),
        pack_ids: patch.pack_ids.unwrap_or(current.pack_ids),
        resources: patch.resources.unwrap_or(current.resources),
        extra_ports: patch.extra_ports.unwrap_or(current.extra_ports),
        image: patch.image.unwrap_or(current.image),
    };
    let provider = check(&ctx, &caller, &body).await?;
    let mut role = build(
        body,
        provider,
        current.id,
        &caller.org_id,
        current.created_at,
        current.archived_at,
    );
    role.updated_at = Utc::now();
    let summary = format!("updated agent role {}", role.name);
    let row = ctx.config_row(
        &caller,
        EventType::AgentRoleUpdated,
        "agent_role",
        &role.id,
        summary,
    );
    let stored = ctx
        .store
        .replace_doc(
            DocTable::AgentRoles,
            &caller.org_id,
            &role.id,
            &role.name,
            &role,
            std::slice::from_ref(&row),
        )
        .await;
    match stored {
        Ok(true) => {}
        Ok(false) => return Err(ApiError::not_found(ErrorCode::RoleNotFound, "agent role")),
        Err(e) if e.is_unique_violation() => {
            return Err(ApiError::field(
                "name",
                "an agent role with this name exists",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    ctx.audit.publish(&[row]);
    Ok(Json(role))
}

/// Every rule a role document must satisfy, reported all at once; returns
/// the (active) provider the role names.
async fn check(ctx: &Ctx, caller: &Caller, body: &CreateRole) -> ApiResult<Provider> {
    let mut fields = Fields::default();
    fields.slug("name", &body.name);
    fields.caps(&body.capabilities);
    let environment = body.environment.as_deref().unwrap_or("development");
    fields.one_of("environment", environment, ENVIRONMENTS);
    let thinking_effort = body.thinking_effort.as_deref().unwrap_or("off");
    fields.one_of("thinking_effort", thinking_effort, THINKING_EFFORTS);
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
        .clone()
        .filter(|m| !m.is_empty())
        .or_else(|| provider.as_ref().map(|p| p.default_model.clone()));
    if model.as_deref().is_none_or(str::is_empty) {
        fields.add("model", "required when the provider has no default_model");
    }
    fields.into_result()?;
    Ok(provider.expect("validated above"))
}

fn build(
    body: CreateRole,
    provider: Provider,
    id: String,
    org_id: &str,
    created_at: chrono::DateTime<Utc>,
    archived_at: Option<chrono::DateTime<Utc>>,
) -> AgentRole {
    AgentRole {
        id,
        org_id: org_id.to_string(),
        display_name: body.display_name.unwrap_or_else(|| body.name.clone()),
        name: body.name,
        description: body.description,
        provider_id: provider.id,
        model: body
            .model
            .filter(|m| !m.is_empty())
            .unwrap_or(provider.default_model),
        capabilities: body.capabilities,
        environment: body
            .environment
            .unwrap_or_else(|| "development".to_string()),
        environment_description: body.environment_description,
        task_timeout_seconds: body
            .task_timeout_seconds
            .unwrap_or(crate::DEFAULT_TASK_TIMEOUT_SECONDS),
        idle_timeout_seconds: body
            .idle_timeout_seconds
            .unwrap_or(crate::DEFAULT_IDLE_TIMEOUT_SECONDS),
        thinking_effort: body.thinking_effort.unwrap_or_else(|| "off".to_string()),
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
        created_at,
        updated_at: created_at,
        archived_at,
    }
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
