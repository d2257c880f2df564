//! The route table: every `/v1` route with the scopes it accepts. The router
//! is built from this table, and one middleware enforces it, so a handler
//! cannot exist without an access rule and no handler checks scopes itself
//! (handlers only apply `:own` narrowing through [`Caller::narrowing`]).

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use axum::Router;
use evershell_core::{ErrorCode, Scope};

use super::auth::Caller;
use super::error::ApiError;
use super::handlers::{
    api_keys, audit, config, credentials, lifecycle, members, providers, roles, secrets, stream,
    tasks, workspaces,
};
use crate::Ctx;

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Any authenticated caller of the org.
    SignedIn,
    /// Any one of the scopes.
    AnyOf(&'static [Scope]),
    /// One scope of each group.
    AllOf(&'static [&'static [Scope]]),
}

/// One row of the route table.
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    /// SSE routes also accept `?api_key=`.
    pub sse: bool,
}

impl RouteSpec {
    /// Whether the route creates or amends something (every POST, PUT and
    /// PATCH except the wind-down actions: archive, stop, cancel). Those
    /// are refused with `423 billing_inactive` while the org is not
    /// active; reads, deletes and wind-down actions always work.
    pub fn creates(&self) -> bool {
        const WIND_DOWN: &[&str] = &[
            "/archive",
            "/cancel",
            "/stop",
            "/stop-all",
            "/stop-workspaces",
        ];
        matches!(self.method, Method::POST | Method::PUT | Method::PATCH)
            && !WIND_DOWN.iter().any(|end| self.path.ends_with(end))
    }
}

/// Marker set on requests to SSE routes, read by the [`Caller`] extractor.
#[derive(Debug, Clone, Copy)]
pub struct AllowsQueryKey;

use Scope::*;

const WS_READ: Access = Access::AnyOf(&[WorkspaceRead, WorkspaceReadOwn]);
const WS_WRITE: Access = Access::AnyOf(&[WorkspaceWrite, WorkspaceWriteOwn]);
const TASKS_WRITE: Access = Access::AnyOf(&[TasksWrite, TasksWriteOwn]);
const AUDIT_WS: Access = Access::AllOf(&[
    &[WorkspaceRead, WorkspaceReadOwn],
    &[AuditRead, AuditReadOwn],
]);
const SUBMIT: Access = Access::AllOf(&[
    &[WorkspaceWrite, WorkspaceWriteOwn],
    &[TasksWrite, TasksWriteOwn],
]);
const CAPS_WRITE: Access = Access::AnyOf(&[CapsWrite]);
const SECRETS_WRITE: Access = Access::AnyOf(&[SecretsWrite]);
const APIKEYS_WRITE: Access = Access::AnyOf(&[ApikeysWrite]);
const AUTH_WRITE: Access = Access::AnyOf(&[AuthWrite, AuthWriteOwn]);
const MEMBERS_READ: Access = Access::AnyOf(&[MembersRead, MembersReadOwn]);
const MEMBERS_WRITE: Access = Access::AnyOf(&[MembersWrite]);

macro_rules! table {
    ($($method:ident $path:literal => $access:expr $(, $sse:ident)?;)+) => {
        vec![$(RouteSpec {
            method: Method::$method,
            path: $path,
            access: $access,
            sse: false $(|| stringify!($sse) == "sse")?,
        }),+]
    };
}

/// The access table of every `/v1` route served today.
pub fn table() -> Vec<RouteSpec> {
    table! {
        GET "/v1/me/session" => Access::SignedIn;
        GET "/v1/config" => Access::SignedIn;
        GET "/v1/api-keys" => APIKEYS_WRITE;
        POST "/v1/api-keys" => APIKEYS_WRITE;
        DELETE "/v1/api-keys/{id}" => APIKEYS_WRITE;
        GET "/v1/orgs/{id}/memberships" => MEMBERS_READ;
        POST "/v1/orgs/{id}/memberships" => MEMBERS_WRITE;
        PATCH "/v1/orgs/{id}/memberships/{user_id}" => MEMBERS_WRITE;
        DELETE "/v1/orgs/{id}/memberships/{user_id}" => MEMBERS_WRITE;
        GET "/v1/providers" => Access::SignedIn;
        POST "/v1/providers" => CAPS_WRITE;
        GET "/v1/providers/{id}" => Access::SignedIn;
        PATCH "/v1/providers/{id}" => CAPS_WRITE;
        DELETE "/v1/providers/{id}" => CAPS_WRITE;
        POST "/v1/providers/{id}/archive" => CAPS_WRITE;
        POST "/v1/providers/{id}/unarchive" => CAPS_WRITE;
        GET "/v1/agent-roles" => Access::SignedIn;
        POST "/v1/agent-roles" => CAPS_WRITE;
        GET "/v1/agent-roles/{id}" => Access::SignedIn;
        PATCH "/v1/agent-roles/{id}" => CAPS_WRITE;
        DELETE "/v1/agent-roles/{id}" => CAPS_WRITE;
        POST "/v1/agent-roles/{id}/archive" => CAPS_WRITE;
        POST "/v1/agent-roles/{id}/unarchive" => CAPS_WRITE;
        GET "/v1/credentials" => Access::SignedIn;
        POST "/v1/credentials" => AUTH_WRITE;
        GET "/v1/credentials/{id}" => Access::SignedIn;
        DELETE "/v1/credentials/{id}" => AUTH_WRITE;
        GET "/v1/secrets" => Access::SignedIn;
        POST "/v1/secrets" => SECRETS_WRITE;
        PUT "/v1/secrets/{name}" => SECRETS_WRITE;
        DELETE "/v1/secrets/{name}" => SECRETS_WRITE;
        POST "/v1/tasks" => SUBMIT;
        GET "/v1/workspaces" => WS_READ;
        GET "/v1/workspaces/{id}" => WS_READ;
        GET "/v1/workspaces/{id}/tasks" => WS_READ;
        POST "/v1/workspaces/{id}/tasks" => TASKS_WRITE;
        GET "/v1/workspaces/{id}/tasks/{task_id}" => WS_READ;
        POST "/v1/workspaces/{id}/task/cancel" => WS_WRITE;
        GET "/v1/workspaces/{id}/audit" => AUDIT_WS;
        GET "/v1/workspaces/{id}/budget" => WS_READ;
        GET "/v1/audit" => Access::AnyOf(&[AuditRead, AuditReadOwn]);
        GET "/v1/workspaces/{id}/activity/stream" => WS_READ, sse;
    }
}

fn handler(method: &Method, path: &str) -> MethodRouter<Arc<Ctx>> {
    match (method.as_str(), path) {
        ("GET", "/v1/me/session") => get(config::me_session),
        ("GET", "/v1/config") => get(config::get_config),
        ("GET", "/v1/api-keys") => get(api_keys::list),
        ("POST", "/v1/api-keys") => post(api_keys::create),
        ("DELETE", "/v1/api-keys/{id}") => delete(api_keys::delete_one),
        ("GET", "/v1/orgs/{id}/memberships") => get(members::list),
        ("POST", "/v1/orgs/{id}/memberships") => post(members::invite),
        ("PATCH", "/v1/orgs/{id}/memberships/{user_id}") => patch(members::change_role),
        ("DELETE", "/v1/orgs/{id}/memberships/{user_id}") => delete(members::remove),
        ("GET", "/v1/providers") => get(providers::list),
        ("POST", "/v1/providers") => post(providers::create),
        ("GET", "/v1/providers/{id}") => get(providers::get_one),
        ("PATCH", "/v1/providers/{id}") => patch(providers::update),
        ("DELETE", "/v1/providers/{id}") => delete(lifecycle::delete_provider),
        ("POST", "/v1/providers/{id}/archive") => post(lifecycle::archive_provider),
        ("POST", "/v1/providers/{id}/unarchive") => post(lifecycle::unarchive_provider),
        ("GET", "/v1/agent-roles") => get(roles::list),
        ("POST", "/v1/agent-roles") => post(roles::create),
        ("GET", "/v1/agent-roles/{id}") => get(roles::get_one),
        ("PATCH", "/v1/agent-roles/{id}") => patch(roles::update),
        ("DELETE", "/v1/agent-roles/{id}") => delete(lifecycle::delete_role),
        ("POST", "/v1/agent-roles/{id}/archive") => post(lifecycle::archive_role),
        ("POST", "/v1/agent-roles/{id}/unarchive") => post(lifecycle::unarchive_role),
        ("GET", "/v1/credentials") => get(credentials::list),
        ("POST", "/v1/credentials") => post(credentials::create),
        ("GET", "/v1/credentials/{id}") => get(credentials::get_one),
        ("DELETE", "/v1/credentials/{id}") => delete(credentials::delete_one),
        ("GET", "/v1/secrets") => get(secrets::list),
        ("POST", "/v1/secrets") => post(secrets::create),
        ("PUT", "/v1/secrets/{name}") => put(secrets::replace),
        ("DELETE", "/v1/secrets/{name}") => delete(secrets::delete_one),
        ("POST", "/v1/tasks") => post(tasks::submit_new),
        ("GET", "/v1/workspaces") => get(workspaces::list),
        ("GET", "/v1/workspaces/{id}") => get(workspaces::get_one),
        ("GET", "/v1/workspaces/{id}/tasks") => get(tasks::list),
        ("POST", "/v1/workspaces/{id}/tasks") => post(tasks::submit_follow_up),
        ("GET", "/v1/workspaces/{id}/tasks/{task_id}") => get(tasks::get_one),
        ("POST", "/v1/workspaces/{id}/task/cancel") => post(tasks::cancel),
        ("GET", "/v1/workspaces/{id}/audit") => get(audit::workspace_audit),
        ("GET", "/v1/workspaces/{id}/budget") => get(workspaces::budget),
        ("GET", "/v1/audit") => get(audit::org_audit),
        ("GET", "/v1/workspaces/{id}/activity/stream") => get(stream::workspace_activity),
        _ => panic!("route {method} {path} is in the table but has no handler"),
    }
}

/// The `/v1` router: every table row, behind the access check.
pub fn router(ctx: Arc<Ctx>) -> Router<Arc<Ctx>> {
    let mut router = Router::new();
    let mut by_path: std::collections::BTreeMap<&str, MethodRouter<Arc<Ctx>>> = Default::default();
    for spec in table() {
        let route = handler(&spec.method, spec.path);
        let merged = match by_path.remove(spec.path) {
            Some(existing) => existing.merge(route),
            None => route,
        };
        by_path.insert(spec.path, merged);
    }
    for (path, route) in by_path {
        router = router.route(path, route);
    }
    router.route_layer(axum::middleware::from_fn_with_state(ctx, enforce))
}

/// Authenticates the caller and checks the route's access rule before the
/// handler runs. A route missing from the table is refused.
async fn enforce(State(ctx): State<Arc<Ctx>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let path = parts
        .extensions
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let spec = path.as_deref().and_then(|path| {
        table()
            .into_iter()
            .find(|spec| spec.path == path && spec.method == parts.method)
    });
    let Some(spec) = spec else {
        // The path matched but not with this method (every route of the
        // router comes from the table).
        return ApiError::new(
            ErrorCode::MethodNotAllowed,
            "method not allowed on this route",
        )
        .into_response();
    };
    if spec.sse {
        parts.extensions.insert(AllowsQueryKey);
    }
    let caller = match <Caller as axum::extract::FromRequestParts<Arc<Ctx>>>::from_request_parts(
        &mut parts, &ctx,
    )
    .await
    {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    let allowed = match spec.access {
        Access::SignedIn => true,
        Access::AnyOf(scopes) => scopes.iter().any(|&s| caller.holds(s)),
        Access::AllOf(groups) => groups
            .iter()
            .all(|group| group.iter().any(|&s| caller.holds(s))),
    };
    if !allowed {
        return ApiError::new(
            ErrorCode::PermissionDenied,
            "the caller lacks a scope this route requires",
        )
        .into_response();
    }
    if spec.creates() && caller.posture != "active" {
        return ApiError::new(
            ErrorCode::BillingInactive,
            format!(
                "the org is {}: reads and wind-down actions still work",
                caller.posture
            ),
        )
        .into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_route_has_exactly_one_entry_and_a_handler() {
        let routes = table();
        for (i, a) in routes.iter().enumerate() {
            let _ = handler(&a.method, a.path);
            for b in &routes[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "duplicate {} {}",
                    a.method,
                    a.path
                );
            }
        }
    }
}
