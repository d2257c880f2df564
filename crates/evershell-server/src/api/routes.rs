//! The route table: every route the server answers, with the scopes it
//! accepts and its handler. The router is built from this table, one
//! middleware enforces it, and the OpenAPI document describes it, so a
//! handler cannot exist without an access rule or a description, and no
//! handler checks scopes itself (handlers only apply `:own` narrowing
//! through [`Caller::narrowing`]).

use std::sync::{Arc, LazyLock};

use axum::extract::{MatchedPath, Request, State};
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use evershell_core::{ErrorCode, Scope};

use super::auth::Caller;
use super::error::ApiError;
use super::handlers::{
    api_keys, audit, config, credentials, lifecycle, members, providers, roles, secrets, sign_in,
    stream, tasks, workspaces,
};
use super::openapi::describe::{Described, Operation, Schemas};
use super::{healthz, openapi};
use crate::Ctx;

/// Who may call a route.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Anyone, without credentials.
    Public,
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
    pub endpoint: Endpoint,
}

/// A row's handler: it serves the route, and its argument and answer types
/// describe the route in the OpenAPI document.
pub struct Endpoint {
    serve: Box<dyn Fn(MethodFilter) -> MethodRouter<Arc<Ctx>> + Send + Sync>,
    describe: fn(&mut Schemas) -> Operation,
    /// The handler function's path (`…::handlers::providers::create`).
    pub name: &'static str,
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
const AUDIT_READ: Access = Access::AnyOf(&[AuditRead, AuditReadOwn]);
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
    ($($method:ident $path:literal => $access:expr, $handler:path $(, $sse:ident)?;)+) => {
        vec![$(RouteSpec {
            method: Method::$method,
            path: $path,
            access: $access,
            sse: false $(|| stringify!($sse) == "sse")?,
            endpoint: Endpoint::of($handler),
        }),+]
    };
}

/// Every route served: method, path, access rule and handler.
pub fn table() -> &'static [RouteSpec] {
    static TABLE: LazyLock<Vec<RouteSpec>> = LazyLock::new(|| {
        table! {
            GET "/healthz" => Access::Public, healthz;
            POST "/auth/sign-in" => Access::Public, sign_in::sign_in;
            GET "/v1/openapi.json" => Access::Public, openapi::serve;
            GET "/v1/me/session" => Access::SignedIn, config::me_session;
            GET "/v1/config" => Access::SignedIn, config::get_config;
            GET "/v1/api-keys" => APIKEYS_WRITE, api_keys::list;
            POST "/v1/api-keys" => APIKEYS_WRITE, api_keys::create;
            DELETE "/v1/api-keys/{id}" => APIKEYS_WRITE, api_keys::delete_one;
            GET "/v1/orgs/{id}/memberships" => MEMBERS_READ, members::list;
            POST "/v1/orgs/{id}/memberships" => MEMBERS_WRITE, members::invite;
            PATCH "/v1/orgs/{id}/memberships/{user_id}" => MEMBERS_WRITE, members::change_role;
            DELETE "/v1/orgs/{id}/memberships/{user_id}" => MEMBERS_WRITE, members::remove;
            GET "/v1/providers" => Access::SignedIn, providers::list;
            POST "/v1/providers" => CAPS_WRITE, providers::create;
            GET "/v1/providers/{id}" => Access::SignedIn, providers::get_one;
            PATCH "/v1/providers/{id}" => CAPS_WRITE, providers::update;
            DELETE "/v1/providers/{id}" => CAPS_WRITE, lifecycle::delete_provider;
            POST "/v1/providers/{id}/archive" => CAPS_WRITE, lifecycle::archive_provider;
            POST "/v1/providers/{id}/unarchive" => CAPS_WRITE, lifecycle::unarchive_provider;
            GET "/v1/agent-roles" => Access::SignedIn, roles::list;
            POST "/v1/agent-roles" => CAPS_WRITE, roles::create;
            GET "/v1/agent-roles/{id}" => Access::SignedIn, roles::get_one;
            PATCH "/v1/agent-roles/{id}" => CAPS_WRITE, roles::update;
            DELETE "/v1/agent-roles/{id}" => CAPS_WRITE, lifecycle::delete_role;
            POST "/v1/agent-roles/{id}/archive" => CAPS_WRITE, lifecycle::archive_role;
            POST "/v1/agent-roles/{id}/unarchive" => CAPS_WRITE, lifecycle::unarchive_role;
            GET "/v1/credentials" => Access::SignedIn, credentials::list;
            POST "/v1/credentials" => AUTH_WRITE, credentials::create;
            GET "/v1/credentials/{id}" => Access::SignedIn, credentials::get_one;
            DELETE "/v1/credentials/{id}" => AUTH_WRITE, credentials::delete_one;
            GET "/v1/secrets" => Access::SignedIn, secrets::list;
            POST "/v1/secrets" => SECRETS_WRITE, secrets::create;
            PUT "/v1/secrets/{name}" => SECRETS_WRITE, secrets::replace;
            DELETE "/v1/secrets/{name}" => SECRETS_WRITE, secrets::delete_one;
            POST "/v1/tasks" => SUBMIT, tasks::submit_new;
            GET "/v1/workspaces" => WS_READ, workspaces::list;
            GET "/v1/workspaces/{id}" => WS_READ, workspaces::get_one;
            GET "/v1/workspaces/{id}/tasks" => WS_READ, tasks::list;
            POST "/v1/workspaces/{id}/tasks" => TASKS_WRITE, tasks::submit_follow_up;
            GET "/v1/workspaces/{id}/tasks/{task_id}" => WS_READ, tasks::get_one;
            POST "/v1/workspaces/{id}/task/cancel" => WS_WRITE, tasks::cancel;
            GET "/v1/workspaces/{id}/audit" => AUDIT_WS, audit::workspace_audit;
            GET "/v1/workspaces/{id}/budget" => WS_READ, workspaces::budget;
            GET "/v1/audit" => AUDIT_READ, audit::org_audit;
            GET "/v1/workspaces/{id}/activity/stream" => WS_READ, stream::workspace_activity, sse;
        }
    });
    &TABLE
}

impl Endpoint {
    /// The endpoint of `handler`.
    pub fn of<H, T, A>(handler: H) -> Endpoint
    where
        H: Handler<T, Arc<Ctx>> + Described<A> + Sync,
        T: 'static,
    {
        Endpoint {
            serve: Box::new(move |filter| on(filter, handler.clone())),
            describe: <H as Described<A>>::describe,
            name: std::any::type_name::<H>(),
        }
    }

    /// What the handler reads and answers.
    pub fn describe(&self, schemas: &mut Schemas) -> Operation {
        (self.describe)(schemas)
    }
}

/// The router of every table row, behind the access check.
pub fn router(ctx: Arc<Ctx>) -> Router<Arc<Ctx>> {
    let mut router = Router::new();
    let mut by_path: std::collections::BTreeMap<&str, MethodRouter<Arc<Ctx>>> = Default::default();
    for spec in table() {
        let filter = MethodFilter::try_from(spec.method.clone())
            .expect("table methods are standard methods");
        let route = (spec.endpoint.serve)(filter);
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
            .iter()
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
    if let Access::Public = spec.access {
        return next.run(Request::from_parts(parts, body)).await;
    }
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
        Access::Public | Access::SignedIn => true,
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
    fn every_table_route_has_exactly_one_entry() {
        let routes = table();
        for (i, a) in routes.iter().enumerate() {
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

    #[test]
    fn only_health_sign_in_and_the_openapi_document_are_public() {
        let public: Vec<String> = table()
            .iter()
            .filter(|spec| matches!(spec.access, Access::Public))
            .map(|spec| format!("{} {}", spec.method, spec.path))
            .collect();
        assert_eq!(
            public,
            ["GET /healthz", "POST /auth/sign-in", "GET /v1/openapi.json"]
        );
    }
}
