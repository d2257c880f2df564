//! Workspaces: reading them. Lifecycle verbs (stop, resume, fork, …) come
//! with snapshots.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use evershell_core::model::{AgentRole, Workspace};
use evershell_core::{ErrorCode, Scope};
use evershell_store::DocTable;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::api::auth::Caller;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{ApiPath, ApiQuery};
use crate::Ctx;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Lists archived workspaces too.
    #[serde(default)]
    include_archived: bool,
    /// Only workspaces of this role (`404 role_not_found` if none has the name).
    role_name: Option<String>,
    /// Only workspaces in this status.
    status: Option<String>,
}

/// The budget counters of a running workspace.
#[derive(Serialize, JsonSchema)]
pub struct BudgetView {
    pub counters: Vec<BudgetCounterView>,
}

/// One counter as the proxy holds it now.
#[derive(Serialize, JsonSchema)]
pub struct BudgetCounterView {
    pub capability: String,
    /// `requests`, `input_tokens`, `output_tokens`, ….
    pub counter: &'static str,
    /// `task` or `workspace`.
    pub per: &'static str,
    pub limit: u64,
    /// Measured usage, in the current task for `per: task`.
    pub used: u64,
    /// Held by requests in flight.
    pub reserved: u64,
    /// `limit - used - reserved`, never below 0.
    pub remaining: u64,
}

/// The workspace `id` of the caller's org, if the caller may see it for
/// `scope` (`:own` callers see only workspaces they created). Anything
/// else is `404`, never revealing that it exists.
pub async fn load(ctx: &Ctx, caller: &Caller, id: &str, scope: Scope) -> ApiResult<Workspace> {
    let ws = ctx.store.workspace(&caller.org_id, id).await?;
    let visible = ws.filter(|ws| {
        caller
            .narrowing(scope)
            .is_none_or(|user| ws.created_by_user_id == user)
    });
    visible.ok_or_else(|| ApiError::not_found(ErrorCode::WorkspaceNotFound, "workspace"))
}

pub async fn list(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<Workspace>>> {
    let role_id = match &query.role_name {
        Some(name) => {
            let role: Option<AgentRole> = ctx
                .store
                .get_doc(DocTable::AgentRoles, &caller.org_id, name)
                .await?;
            Some(
                role.ok_or_else(|| ApiError::not_found(ErrorCode::RoleNotFound, "agent role"))?
                    .id,
            )
        }
        None => None,
    };
    let mut all = ctx
        .store
        .list_workspaces(&caller.org_id, caller.narrowing(Scope::WorkspaceRead))
        .await?;
    all.retain(|ws| {
        (query.include_archived || ws.archived_at.is_none())
            && role_id.as_ref().is_none_or(|id| &ws.role_id == id)
            && query.status.as_ref().is_none_or(|s| &ws.status == s)
    });
    Ok(Json(all))
}

pub async fn get_one(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Workspace>> {
    load(&ctx, &caller, &id, Scope::WorkspaceRead)
        .await
        .map(Json)
}

/// `GET /v1/workspaces/{id}/budget`: `{counters: [{capability, counter,
/// per, limit, used, reserved, remaining}]}`. A workspace whose policy has
/// no budgets, or that is not running, has no counters.
pub async fn budget(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<BudgetView>> {
    let ws = load(&ctx, &caller, &id, Scope::WorkspaceRead).await?;
    let counters = ctx
        .orchestrator
        .budget(&ws.id)
        .into_iter()
        .map(|c| BudgetCounterView {
            capability: c.capability,
            counter: c.counter.as_str(),
            per: c.per.as_str(),
            limit: c.limit,
            used: c.used,
            reserved: c.reserved,
            remaining: c.remaining,
        })
        .collect();
    Ok(Json(BudgetView { counters }))
}
