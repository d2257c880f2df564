//! Archiving, unarchiving and deleting providers and agent roles. Archive
//! is a flag (`archived_at`): archived resources stay readable (lists show
//! them with `include_archived=true`) but cannot start new work. A provider
//! archive cascades to its roles; unarchiving a provider leaves its roles
//! archived (each role is unarchived on its own, once its provider is
//! active). Nothing that live workspaces run on can be archived or deleted.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use evershell_core::model::{AgentRole, Provider};
use evershell_core::{AuditEvent, ErrorCode, EventType};
use evershell_store::{DocTable, DocUpdate};
use schemars::JsonSchema;
use serde::Serialize;

use crate::api::auth::Caller;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::ApiPath;
use crate::api::respond::ResourceStatus;
use crate::Ctx;

/// A provider or role's status after archiving or unarchiving it:
/// `archived` or `active`.
#[derive(Serialize, JsonSchema)]
pub struct LifecycleStatus {
    pub status: &'static str,
}

/// `{"status": "archived", "cascaded_roles": n}`: a provider archive, with
/// the number of active roles archived with it.
#[derive(Serialize, JsonSchema)]
pub struct ProviderArchived {
    pub status: &'static str,
    pub cascaded_roles: usize,
}

async fn provider(ctx: &Ctx, caller: &Caller, id: &str) -> ApiResult<Provider> {
    ctx.store
        .get_doc(DocTable::Providers, &caller.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::ProviderNotFound, "provider"))
}

async fn role(ctx: &Ctx, caller: &Caller, id: &str) -> ApiResult<AgentRole> {
    ctx.store
        .get_doc(DocTable::AgentRoles, &caller.org_id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(ErrorCode::RoleNotFound, "agent role"))
}

async fn roles_of(ctx: &Ctx, caller: &Caller, provider_id: &str) -> ApiResult<Vec<AgentRole>> {
    let all: Vec<AgentRole> = ctx
        .store
        .list_docs(DocTable::AgentRoles, &caller.org_id, true)
        .await?;
    Ok(all
        .into_iter()
        .filter(|r| r.provider_id == provider_id)
        .collect())
}

/// `409 workspaces_active` when a live workspace runs one of `role_ids`.
async fn refuse_if_live(ctx: &Ctx, caller: &Caller, role_ids: &[String]) -> ApiResult<()> {
    let live = ctx
        .store
        .live_workspaces_of_roles(&caller.org_id, role_ids)
        .await?;
    if live > 0 {
        let message = format!("{live} live workspace(s) run on it; stop them first");
        return Err(ApiError::conflict("workspaces_active", message));
    }
    Ok(())
}

/// The rewrite of one document; its `archived_at` column is the document's
/// own `archived_at`, so the two never disagree.
fn update(
    table: DocTable,
    id: &str,
    doc: &impl serde::Serialize,
    archived_at: Option<DateTime<Utc>>,
) -> ApiResult<DocUpdate> {
    Ok(DocUpdate {
        table,
        id: id.to_string(),
        doc: serde_json::to_value(doc).map_err(ApiError::internal)?,
        archived_at: archived_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true)),
    })
}

/// Commits `updates` with their audit `rows` in one transaction, then
/// publishes the rows.
async fn commit(
    ctx: &Ctx,
    caller: &Caller,
    updates: &[DocUpdate],
    rows: &[AuditEvent],
) -> ApiResult<()> {
    ctx.store.update_docs(&caller.org_id, updates, rows).await?;
    ctx.audit.publish(rows);
    Ok(())
}

pub async fn archive_provider(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ProviderArchived>> {
    let mut provider = provider(&ctx, &caller, &id).await?;
    let roles = roles_of(&ctx, &caller, &provider.id).await?;
    let role_ids: Vec<String> = roles.iter().map(|r| r.id.clone()).collect();
    refuse_if_live(&ctx, &caller, &role_ids).await?;

    let now = Utc::now();
    let mut updates = Vec::new();
    let mut rows = Vec::new();
    for mut role in roles.into_iter().filter(|r| r.archived_at.is_none()) {
        role.archived_at = Some(now);
        role.updated_at = now;
        updates.push(update(
            DocTable::AgentRoles,
            &role.id,
            &role,
            role.archived_at,
        )?);
        let summary = format!("archived agent role {} with its provider", role.name);
        rows.push(ctx.config_row(
            &caller,
            EventType::AgentRoleArchived,
            "agent_role",
            &role.id,
            summary,
        ));
    }
    let cascaded = updates.len();
    if provider.archived_at.is_none() {
        provider.archived_at = Some(now);
        provider.updated_at = now;
    }
    updates.push(update(
        DocTable::Providers,
        &provider.id,
        &provider,
        provider.archived_at,
    )?);
    let summary = format!("archived provider {} ({cascaded} roles)", provider.name);
    rows.push(ctx.config_row(
        &caller,
        EventType::ProviderArchived,
        "provider",
        &provider.id,
        summary,
    ));
    commit(&ctx, &caller, &updates, &rows).await?;
    Ok(Json(ProviderArchived {
        status: "archived",
        cascaded_roles: cascaded,
    }))
}

pub async fn unarchive_provider(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<LifecycleStatus>> {
    let mut provider = provider(&ctx, &caller, &id).await?;
    if provider.archived_at.is_none() {
        return Err(ApiError::conflict(
            "not_archived",
            "provider is not archived",
        ));
    }
    provider.archived_at = None;
    provider.updated_at = Utc::now();
    let updates = [update(
        DocTable::Providers,
        &provider.id,
        &provider,
        provider.archived_at,
    )?];
    let summary = format!(
        "unarchived provider {} (its roles stay archived)",
        provider.name
    );
    let rows = [ctx.config_row(
        &caller,
        EventType::ProviderUnarchived,
        "provider",
        &provider.id,
        summary,
    )];
    commit(&ctx, &caller, &updates, &rows).await?;
    Ok(Json(LifecycleStatus { status: "active" }))
}

pub async fn delete_provider(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ResourceStatus>> {
    let provider = provider(&ctx, &caller, &id).await?;
    let roles = roles_of(&ctx, &caller, &provider.id).await?;
    if !roles.is_empty() {
        let message = format!(
            "{} role(s) reference this provider, archived ones included",
            roles.len()
        );
        return Err(ApiError::conflict("provider_in_use", message));
    }
    let summary = format!("deleted provider {}", provider.name);
    let rows = [ctx.config_row(
        &caller,
        EventType::ProviderDeleted,
        "provider",
        &provider.id,
        summary,
    )];
    ctx.store
        .delete_doc(DocTable::Providers, &caller.org_id, &provider.id, &rows)
        .await?;
    ctx.audit.publish(&rows);
    Ok(Json(ResourceStatus {
        id: provider.id,
        status: "deleted",
    }))
}

pub async fn archive_role(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<LifecycleStatus>> {
    let mut role = role(&ctx, &caller, &id).await?;
    refuse_if_live(&ctx, &caller, std::slice::from_ref(&role.id)).await?;
    if role.archived_at.is_none() {
        role.archived_at = Some(Utc::now());
        role.updated_at = Utc::now();
    }
    let updates = [update(
        DocTable::AgentRoles,
        &role.id,
        &role,
        role.archived_at,
    )?];
    let summary = format!("archived agent role {}", role.name);
    let rows = [ctx.config_row(
        &caller,
        EventType::AgentRoleArchived,
        "agent_role",
        &role.id,
        summary,
    )];
    commit(&ctx, &caller, &updates, &rows).await?;
    Ok(Json(LifecycleStatus { status: "archived" }))
}

pub async fn unarchive_role(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<LifecycleStatus>> {
    let mut role = role(&ctx, &caller, &id).await?;
    if role.archived_at.is_none() {
        return Err(ApiError::conflict(
            "not_archived",
            "agent role is not archived",
        ));
    }
    let provider = provider(&ctx, &caller, &role.provider_id).await?;
    if provider.archived_at.is_some() {
        return Err(ApiError::conflict(
            "provider_archived",
            "the role's provider is archived; unarchive it first",
        ));
    }
    role.archived_at = None;
    role.updated_at = Utc::now();
    let updates = [update(
        DocTable::AgentRoles,
        &role.id,
        &role,
        role.archived_at,
    )?];
    let summary = format!("unarchived agent role {}", role.name);
    let rows = [ctx.config_row(
        &caller,
        EventType::AgentRoleUnarchived,
        "agent_role",
        &role.id,
        summary,
    )];
    commit(&ctx, &caller, &updates, &rows).await?;
    Ok(Json(LifecycleStatus { status: "active" }))
}

pub async fn delete_role(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ResourceStatus>> {
    let role = role(&ctx, &caller, &id).await?;
    refuse_if_live(&ctx, &caller, std::slice::from_ref(&role.id)).await?;
    let summary = format!("deleted agent role {}", role.name);
    let rows = [ctx.config_row(
        &caller,
        EventType::AgentRoleDeleted,
        "agent_role",
        &role.id,
        summary,
    )];
    ctx.store
        .delete_doc(DocTable::AgentRoles, &caller.org_id, &role.id, &rows)
        .await?;
    ctx.audit.publish(&rows);
    Ok(Json(ResourceStatus {
        id: role.id,
        status: "deleted",
    }))
}
