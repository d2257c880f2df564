//! Tenancy: two orgs, each with owners, an operator, a member and API keys
//! of every template; every `/v1` route of the route table is called by
//! every kind of caller, on its own org's resources and on the other org's.
//! Each call must get exactly the status the scope table and the `:own`
//! rules give, another org's resource is a `404` (`403` for the routes that
//! name an org), and no answer ever carries the other org's data.
//!
//! The whole suite runs on SQLite and on PostgreSQL.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::time::Duration;

use evershell_cli::demo::{DemoWorld, DEMO_CAPS};
use evershell_core::scope::{member_role_scopes, permission_set, Scope};
use evershell_server::api::routes::{table, Access, RouteSpec};
use reqwest::Method;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";
const ROLE: &str = "known";

use common::Engine;

/// One kind of caller: a person's session or an API key.
#[derive(Clone)]
struct Caller {
    name: &'static str,
    bearer: Option<String>,
    scopes: Vec<Scope>,
    /// The person's member role (sessions only).
    role: Option<&'static str>,
    user_id: String,
}

/// Where the resources of one org are.
struct Org {
    slug: String,
    id: String,
    /// An owner's session, used to make fresh resources for each call.
    admin: String,
    ws_member: String,
    task_member: String,
    ws_other: String,
    task_other: String,
    provider: String,
    role: String,
    credential: String,
    secret: String,
    key_id: String,
}

struct Suite {
    world: DemoWorld,
    http: reqwest::Client,
    a: Org,
    b: Org,
    callers: Vec<Caller>,
    /// Strings that identify org B's data; none may appear in an answer
    /// to an org A caller.
    b_markers: Vec<String>,
    counter: std::sync::atomic::AtomicUsize,
}

fn holds(scopes: &[Scope], scope: Scope) -> bool {
    scopes.iter().any(|&held| {
        held == scope
            || (scope.is_own() && held == scope.unscoped())
            || (scope == Scope::TasksWriteOwn && held == Scope::WorkspaceWrite)
    })
}

fn allowed(access: &Access, scopes: &[Scope]) -> bool {
    match access {
        Access::Public | Access::SignedIn => true,
        Access::AnyOf(any) => any.iter().any(|&s| holds(scopes, s)),
        Access::AllOf(groups) => groups
            .iter()
            .all(|group| group.iter().any(|&s| holds(scopes, s))),
    }
}

impl Suite {
    fn fresh(&self, prefix: &str) -> String {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{prefix}-{n}")
    }

    async fn call(
        &self,
        bearer: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, String) {
        let mut req = self.http.request(method, self.world.client.url(path));
        if let Some(bearer) = bearer {
            req = req.bearer_auth(bearer);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let response = req.send().await.expect("api reachable");
        let status = response.status().as_u16();
        let sse = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream"));
        // An event stream never ends: read what is there within a moment.
        let text = if sse {
            let mut response = response;
            let mut text = String::new();
            while let Ok(Ok(Some(chunk))) =
                tokio::time::timeout(Duration::from_millis(300), response.chunk()).await
            {
                text.push_str(&String::from_utf8_lossy(&chunk));
            }
            text
        } else {
            response.text().await.unwrap_or_default()
        };
        (status, text)
    }

    /// A call that must succeed (fixtures).
    async fn ok(&self, bearer: &str, method: Method, path: &str, body: Option<&Value>) -> Value {
        let (status, text) = self.call(Some(bearer), method.clone(), path, body).await;
        assert!(
            (200..300).contains(&status),
            "fixture {method} {path}: {status} {text}"
        );
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn fresh_provider(&self, org: &Org) -> String {
        let name = self.fresh("prov");
        let body = json!({
            "name": name, "kind": "anthropic", "domain": "api.anthropic.com",
            "credential_name": org.credential, "default_model": "m",
        });
        self.ok(&org.admin, Method::POST, "/v1/providers", Some(&body))
            .await["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    async fn fresh_role(&self, org: &Org) -> String {
        let body = json!({
            "name": self.fresh("role"), "provider_id": org.provider, "capabilities": DEMO_CAPS,
        });
        self.ok(&org.admin, Method::POST, "/v1/agent-roles", Some(&body))
            .await["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    async fn fresh_member(&self, org: &Org) -> String {
        let email = format!("{}@{}.test", self.fresh("person"), org.slug);
        // No password: these people only exist to be changed or removed.
        self.world
            .server
            .ctx
            .store
            .ensure_member(&org.id, &email, "member")
            .await
            .expect("user created")
    }

    /// The provider or role (`collection`) a delete, archive or unarchive
    /// probe acts on: on the caller's own org a fresh one (archived first
    /// for an unarchive), so every call finds the same state; on the other
    /// org its standing one.
    async fn lifecycle_target(&self, org: &Org, own: bool, collection: &str, path: &str) -> String {
        let providers = collection == "/v1/providers";
        if !own {
            return if providers {
                org.provider.clone()
            } else {
                org.role.clone()
            };
        }
        let id = if providers {
            self.fresh_provider(org).await
        } else {
            self.fresh_role(org).await
        };
        if path.ends_with("/unarchive") {
            let archive = format!("{collection}/{id}/archive");
            self.ok(&org.admin, Method::POST, &archive, None).await;
        }
        id
    }

    /// Waits until workspace `ws` has no task running or queued.
    async fn idle(&self, org: &Org, ws: &str) {
        for _ in 0..300 {
            // Idle, with every queued task ended (a workspace is briefly
            // idle between two queued tasks).
            let w = self
                .ok(
                    &org.admin,
                    Method::GET,
                    &format!("/v1/workspaces/{ws}"),
                    None,
                )
                .await;
            let tasks = self
                .ok(
                    &org.admin,
                    Method::GET,
                    &format!("/v1/workspaces/{ws}/tasks"),
                    None,
                )
                .await;
            let open = tasks.as_array().expect("tasks").iter().any(|t| {
                !matches!(
                    t["status"].as_str(),
                    Some("completed" | "failed" | "cancelled" | "delivery_failed")
                )
            });
            if w["status"] == "idle" && !open {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("workspace {ws} did not become idle");
    }

    /// The request for `route` against `org`'s resources, made fresh where
    /// the call changes or removes them, and the status an allowed caller
    /// gets on its own org. `None` when the route names no resource (no
    /// foreign variant).
    async fn probe(
        &self,
        route: &RouteSpec,
        org: &Org,
        caller: &Caller,
        own: bool,
    ) -> Option<(String, Option<Value>, u16)> {
        let ws = if caller.role == Some("member") || !own {
            &org.ws_member
        } else {
            &org.ws_other
        };
        let task = if ws == &org.ws_member {
            &org.task_member
        } else {
            &org.task_other
        };
        let p = route.path;
        let m = route.method.as_str();
        let has_id = p.contains('{');
        let names_a_resource = has_id || (m == "POST" && p == "/v1/tasks");
        if !own && !names_a_resource {
            return None;
        }
        let probe = match (m, p) {
            ("GET", "/v1/me/session" | "/v1/config" | "/v1/api-keys") => (p.into(), None, 200),
            ("POST", "/v1/api-keys") => (
                p.into(),
                Some(json!({ "label": self.fresh("key"), "permission_set": "read_only" })),
                201,
            ),
            ("DELETE", "/v1/api-keys/{id}") => {
                let id = if own {
                    let key = json!({ "label": self.fresh("key"), "permission_set": "read_only" });
                    self.ok(&org.admin, Method::POST, "/v1/api-keys", Some(&key))
                        .await["id"]
                        .as_str()
                        .unwrap()
                        .to_string()
                } else {
                    org.key_id.clone()
                };
                (format!("/v1/api-keys/{id}"), None, 200)
            }
            ("GET", "/v1/orgs/{id}/memberships") => {
                (format!("/v1/orgs/{}/memberships", org.id), None, 200)
            }
            ("POST", "/v1/orgs/{id}/memberships") => {
                let email = format!("{}@invited.test", self.fresh("invitee"));
                (
                    format!("/v1/orgs/{}/memberships", org.id),
                    Some(json!({ "email": email, "role": "member" })),
                    201,
                )
            }
            ("PATCH" | "DELETE", "/v1/orgs/{id}/memberships/{user_id}") => {
                let user = self.fresh_member(org).await;
                let body = (m == "PATCH").then(|| json!({ "role": "operator" }));
                (format!("/v1/orgs/{}/memberships/{user}", org.id), body, 200)
            }
            ("GET", "/v1/providers" | "/v1/agent-roles" | "/v1/credentials" | "/v1/secrets") => {
                (format!("{p}?include_archived=true"), None, 200)
            }
            ("GET", "/v1/workspaces" | "/v1/audit") => (p.into(), None, 200),
            ("POST", "/v1/providers") => {
                let body = json!({
                    "name": self.fresh("prov"), "kind": "anthropic", "domain": "api.anthropic.com",
                    "credential_name": org.credential,
                });
                (p.into(), Some(body), 201)
            }
            ("GET", "/v1/providers/{id}") => (format!("/v1/providers/{}", org.provider), None, 200),
            ("PATCH", "/v1/providers/{id}") => (
                format!("/v1/providers/{}", org.provider),
                Some(json!({ "display_name": self.fresh("Display") })),
                200,
            ),
            ("DELETE", "/v1/providers/{id}")
            | ("POST", "/v1/providers/{id}/archive" | "/v1/providers/{id}/unarchive") => {
                let id = self.lifecycle_target(org, own, "/v1/providers", p).await;
                (p.replace("{id}", &id), None, 200)
            }
            ("POST", "/v1/agent-roles") => {
                let body = json!({
                    "name": self.fresh("role"), "provider_id": org.provider, "capabilities": DEMO_CAPS,
                });
                (p.into(), Some(body), 201)
            }
            ("GET", "/v1/agent-roles/{id}") => (format!("/v1/agent-roles/{}", org.role), None, 200),
            ("PATCH", "/v1/agent-roles/{id}") => (
                format!("/v1/agent-roles/{}", org.role),
                Some(json!({ "description": self.fresh("described") })),
                200,
            ),
            ("DELETE", "/v1/agent-roles/{id}")
            | ("POST", "/v1/agent-roles/{id}/archive" | "/v1/agent-roles/{id}/unarchive") => {
                let id = self.lifecycle_target(org, own, "/v1/agent-roles", p).await;
                (p.replace("{id}", &id), None, 200)
            }
            ("POST", "/v1/credentials") => {
                let body = json!({
                    "name": self.fresh("cred"), "provider": "anthropic", "kind": "api_key",
                    "api_key": "sk-ant-fixture",
                });
                (p.into(), Some(body), 201)
            }
            ("GET", "/v1/credentials/{id}") => {
                (format!("/v1/credentials/{}", org.credential), None, 200)
            }
            ("DELETE", "/v1/credentials/{id}") => {
                let name = if own {
                    let body = json!({
                        "name": self.fresh("cred"), "provider": "anthropic", "kind": "api_key",
                        "api_key": "sk-ant-fixture",
                    });
                    self.ok(&org.admin, Method::POST, "/v1/credentials", Some(&body))
                        .await["name"]
                        .as_str()
                        .unwrap()
                        .to_string()
                } else {
                    org.credential.clone()
                };
                (format!("/v1/credentials/{name}"), None, 200)
            }
            ("POST", "/v1/secrets") => (
                p.into(),
                Some(json!({ "name": self.fresh("secret"), "value": "v" })),
                201,
            ),
            ("PUT", "/v1/secrets/{name}") => {
                // PUT stores the value whether or not the name exists, and
                // names are per org: the other org's name would simply be
                // the caller's own new secret, so there is no foreign probe.
                if !own {
                    return None;
                }
                (
                    format!("/v1/secrets/{}", org.secret),
                    Some(json!({ "value": "v2" })),
                    200,
                )
            }
            ("DELETE", "/v1/secrets/{name}") => {
                let name = if own {
                    let name = self.fresh("secret");
                    let body = json!({ "name": name, "value": "v" });
                    self.ok(&org.admin, Method::POST, "/v1/secrets", Some(&body))
                        .await;
                    name
                } else {
                    org.secret.clone()
                };
                (format!("/v1/secrets/{name}"), None, 200)
            }
            ("POST", "/v1/tasks") => {
                // The other org's role name is unknown here; so is a missing
                // one (no sandbox is started for these probes).
                let body = if own {
                    json!({ "role_name": "no-such-role", "description": "probe" })
                } else {
                    json!({ "role_id": org.role, "description": "probe" })
                };
                (p.into(), Some(body), 404)
            }
            ("GET", "/v1/workspaces/{id}")
            | ("GET", "/v1/workspaces/{id}/tasks")
            | ("GET", "/v1/workspaces/{id}/audit")
            | ("GET", "/v1/workspaces/{id}/budget")
            | ("GET", "/v1/workspaces/{id}/activity/stream") => (p.replace("{id}", ws), None, 200),
            ("POST", "/v1/workspaces/{id}/tasks") => (
                p.replace("{id}", ws),
                Some(json!({ "description": "follow-up probe" })),
                202,
            ),
            ("GET", "/v1/workspaces/{id}/tasks/{task_id}") => {
                (p.replace("{id}", ws).replace("{task_id}", task), None, 200)
            }
            ("POST", "/v1/workspaces/{id}/task/cancel") => {
                if own {
                    self.idle(org, ws).await;
                }
                // Nothing runs: 409.
                (p.replace("{id}", ws), None, 409)
            }
            ("GET", "/v1/openapi.json" | "/healthz") => (p.into(), None, 200),
            // Answers the same to everyone: the credentials in the body
            // decide, and these are wrong.
            ("POST", "/auth/sign-in") => (
                p.into(),
                Some(json!({ "email": "nobody@nowhere.test", "password": "wrong password" })),
                401,
            ),
            _ => panic!("the tenancy suite has no probe for {m} {p}: add one"),
        };
        Some(probe)
    }

    /// The status `caller` must get on `route` with the probe's target.
    fn expected(&self, route: &RouteSpec, caller: &Caller, own: bool, ok: u16) -> u16 {
        if matches!(route.access, Access::Public) {
            return ok;
        }
        let Some(_) = caller.bearer else { return 401 };
        if !allowed(&route.access, &caller.scopes) {
            return 403;
        }
        let (m, p) = (route.method.as_str(), route.path);
        // Org credentials need unscoped auth:write (the `:own` form only
        // covers personal credentials).
        if matches!(
            (m, p),
            ("POST", "/v1/credentials") | ("DELETE", "/v1/credentials/{id}")
        ) && !caller.scopes.contains(&Scope::AuthWrite)
        {
            return 403;
        }
        if p.starts_with("/v1/orgs/{id}") {
            // Another org named in the path is a 403 before anything else.
            if !own {
                return 403;
            }
            // Only an owner changes roles.
            if m == "PATCH" && caller.role != Some("owner") {
                return 403;
            }
        }
        if !own {
            return 404;
        }
        ok
    }
}

async fn sign_in(world: &DemoWorld, email: &str, password: &str, org: &str) -> String {
    let body = json!({ "email": email, "password": password, "org": org });
    let response = world
        .client
        .http()
        .post(world.client.url("/auth/sign-in"))
        .json(&body)
        .send()
        .await
        .expect("sign-in reachable");
    assert_eq!(response.status().as_u16(), 200, "sign-in of {email}");
    let body: Value = response.json().await.expect("json");
    body["token"].as_str().expect("token").to_string()
}

/// Makes org `slug` (A is the world's bootstrap org) with its people, keys,
/// provider, role, secret and two workspaces: one a member made, one an
/// owner made.
async fn make_org(world: &DemoWorld, slug: &str) -> (Org, Vec<Caller>) {
    let ctx = &world.server.ctx;
    let store = &ctx.store;
    if slug != world.server.bootstrap.org_slug {
        evershell_server::admin::create_org(store, slug, &format!("founder@{slug}.test"))
            .await
            .expect("org created");
    }
    let org_id = store.org_id_by_slug(slug).await.unwrap().expect("org");
    let mut people = HashMap::new();
    for (who, role) in [
        ("owner", "owner"),
        ("operator", "operator"),
        ("member", "member"),
    ] {
        let email = format!("{who}@{slug}.test");
        let user_id = evershell_server::admin::create_user(store, slug, &email, role, PASSWORD)
            .await
            .expect("user created");
        let token = sign_in(world, &email, PASSWORD, slug).await;
        people.insert(who, (user_id, token, role));
    }
    let admin = people["owner"].1.clone();
    let credential = format!("cred-{slug}");
    let body = serde_json::from_value(json!({
        "name": credential, "provider": "anthropic", "kind": "api_key",
        "api_key": evershell_cli::demo::DEMO_API_KEY,
    }))
    .unwrap();
    evershell_server::admin::create_credential(store, &ctx.master, slug, body)
        .await
        .expect("credential");
    let http = world.client.http().clone();
    let post = |path: &'static str, token: String, body: Value| {
        let http = http.clone();
        let url = world.client.url(path);
        async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("reachable");
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert!((200..300).contains(&status), "{path}: {status} {body}");
            body
        }
    };
    let provider = post(
        "/v1/providers",
        admin.clone(),
        json!({
            "name": format!("prov-{slug}"), "kind": "anthropic",
            "domain": evershell_cli::demo::MODEL_HOST, "credential_name": credential,
            "default_model": "claude-demo",
        }),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let role = post(
        "/v1/agent-roles",
        admin.clone(),
        json!({ "name": ROLE, "provider_id": provider, "capabilities": DEMO_CAPS }),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    post(
        "/v1/secrets",
        admin.clone(),
        json!({ "name": format!("secret-{slug}"), "value": "s" }),
    )
    .await;
    let mut keys = HashMap::new();
    for set in ["full_access", "submit_observe", "read_only"] {
        let key = post(
            "/v1/api-keys",
            admin.clone(),
            json!({ "label": format!("{set}-{slug}"), "permission_set": set }),
        )
        .await;
        keys.insert(set, key);
    }
    let submit = |token: String| {
        post(
            "/v1/tasks",
            token,
            json!({ "role_name": ROLE, "description": "say hello" }),
        )
    };
    let by_member = submit(people["member"].1.clone()).await;
    let by_owner = submit(admin.clone()).await;
    let field = |v: &Value, k: &str| v[k].as_str().unwrap().to_string();
    let org = Org {
        slug: slug.to_string(),
        id: org_id,
        admin,
        ws_member: field(&by_member, "workspace_id"),
        task_member: field(&by_member, "task_id"),
        ws_other: field(&by_owner, "workspace_id"),
        task_other: field(&by_owner, "task_id"),
        provider,
        role,
        credential,
        secret: format!("secret-{slug}"),
        key_id: field(&keys["read_only"], "id"),
    };
    let mut callers = Vec::new();
    for who in ["owner", "operator", "member"] {
        let (user_id, token, role) = people[who].clone();
        callers.push(Caller {
            name: who,
            bearer: Some(token),
            scopes: member_role_scopes(role).unwrap().to_vec(),
            role: Some(role),
            user_id,
        });
    }
    for set in ["full_access", "submit_observe", "read_only"] {
        callers.push(Caller {
            name: set,
            bearer: Some(field(&keys[set], "value")),
            scopes: permission_set(set).unwrap().to_vec(),
            role: None,
            user_id: "system".to_string(),
        });
    }
    callers.push(Caller {
        name: "anonymous",
        bearer: None,
        scopes: Vec::new(),
        role: None,
        user_id: String::new(),
    });
    (org, callers)
}

async fn suite(engine: Engine) {
    let world = match engine {
        Engine::Sqlite => DemoWorld::start(Vec::new(), common::exe()).await,
        Engine::Postgres => DemoWorld::start_on_temp_postgres(Vec::new(), common::exe()).await,
    }
    .expect("world starts");
    let slug_a = world.server.bootstrap.org_slug.clone();
    let (a, callers) = make_org(&world, &slug_a).await;
    let (b, _) = make_org(&world, "beta").await;
    // Every workspace's first task ends before the probes start.
    for (org, ws, task) in [
        (&a, &a.ws_member, &a.task_member),
        (&a, &a.ws_other, &a.task_other),
        (&b, &b.ws_member, &b.task_member),
        (&b, &b.ws_other, &b.task_other),
    ] {
        let path = format!("/v1/workspaces/{ws}/tasks/{task}");
        for _ in 0..600 {
            let response = world
                .client
                .http()
                .get(world.client.url(&path))
                .bearer_auth(&org.admin)
                .send()
                .await
                .unwrap();
            let t: Value = response.json().await.unwrap();
            if t["status"] == "completed" {
                break;
            }
            assert!(
                !matches!(t["status"].as_str(), Some("failed" | "cancelled")),
                "{t}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let b_markers = vec![
        b.id.clone(),
        b.ws_member.clone(),
        b.ws_other.clone(),
        b.task_member.clone(),
        b.task_other.clone(),
        b.provider.clone(),
        b.role.clone(),
        b.key_id.clone(),
        "prov-beta".to_string(),
        "cred-beta".to_string(),
        "secret-beta".to_string(),
        "@beta.test".to_string(),
    ];
    let suite = Suite {
        http: world.client.http().clone(),
        world,
        a,
        b,
        callers,
        b_markers,
        counter: Default::default(),
    };

    let mut failures = Vec::new();
    let mut calls = 0;
    for route in table() {
        for caller in &suite.callers {
            for own in [true, false] {
                let target = if own { &suite.a } else { &suite.b };
                let Some((path, body, ok)) = suite.probe(route, target, caller, own).await else {
                    continue;
                };
                let want = suite.expected(route, caller, own, ok);
                let (status, text) = suite
                    .call(
                        caller.bearer.as_deref(),
                        route.method.clone(),
                        &path,
                        body.as_ref(),
                    )
                    .await;
                calls += 1;
                let label = format!(
                    "{} {} as {} on {} org",
                    route.method,
                    path,
                    caller.name,
                    if own { "its own" } else { "the other" }
                );
                if status != want {
                    failures.push(format!("{label}: want {want}, got {status}: {text}"));
                }
                if let Some(marker) = suite.b_markers.iter().find(|m| text.contains(m.as_str())) {
                    failures.push(format!("{label}: the answer leaks {marker:?}: {text}"));
                }
                if status >= 400 {
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if v["error"]["code"].as_str().is_none()
                        || v["error"]["request_id"].as_str().is_none()
                    {
                        failures.push(format!("{label}: no error envelope: {text}"));
                    }
                }
            }
        }
    }
    assert!(calls > 400, "only {calls} calls made");
    assert!(
        failures.is_empty(),
        "{} of {calls} calls went wrong on {engine:?}:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // `:own` narrowing of lists: a member sees only what they made.
    let member = suite.callers.iter().find(|c| c.name == "member").unwrap();
    let bearer = member.bearer.as_deref();
    let (_, text) = suite
        .call(bearer, Method::GET, "/v1/workspaces", None)
        .await;
    let list: Value = serde_json::from_str(&text).unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .expect("workspaces")
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![suite.a.ws_member.as_str()], "{text}");
    let (_, text) = suite
        .call(bearer, Method::GET, "/v1/audit?limit=1000", None)
        .await;
    let page: Value = serde_json::from_str(&text).unwrap();
    let rows = page["events"].as_array().expect("events");
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r["user_id"] == member.user_id.as_str()),
        "a member reads only rows they caused: {text}"
    );
    // …and another person's workspace does not exist for them.
    let other = &suite.a.ws_other;
    for (method, path, body) in [
        (Method::GET, format!("/v1/workspaces/{other}"), None),
        (Method::GET, format!("/v1/workspaces/{other}/tasks"), None),
        (Method::GET, format!("/v1/workspaces/{other}/audit"), None),
        (
            Method::POST,
            format!("/v1/workspaces/{other}/tasks"),
            Some(json!({ "description": "not yours" })),
        ),
        (
            Method::POST,
            format!("/v1/workspaces/{other}/task/cancel"),
            None,
        ),
    ] {
        let (status, text) = suite
            .call(bearer, method.clone(), &path, body.as_ref())
            .await;
        assert_eq!(status, 404, "{method} {path} as a member: {text}");
    }
    let path = format!("/v1/orgs/{}/memberships", suite.a.id);
    let (status, text) = suite.call(bearer, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{text}");
    let members: Value = serde_json::from_str(&text).unwrap();
    assert!(members["memberships"].as_array().unwrap().len() > 3);

    suite.world.shutdown().await;
}

/// Revoking a key, removing a member, the last-owner guard, owner-only
/// promotion, invitations and the billing posture.
async fn access_changes(engine: Engine) {
    let world = match engine {
        Engine::Sqlite => DemoWorld::start(Vec::new(), common::exe()).await,
        Engine::Postgres => DemoWorld::start_on_temp_postgres(Vec::new(), common::exe()).await,
    }
    .expect("world starts");
    let store = world.server.ctx.store.clone();
    let store = &store;
    let org = evershell_server::admin::create_org(store, "gamma", "first@gamma.test")
        .await
        .expect("org");
    let password = org
        .owner_password
        .clone()
        .expect("a new owner gets a password");
    let owner = sign_in(&world, "first@gamma.test", &password, "gamma").await;
    let suite = Suite {
        http: world.client.http().clone(),
        world,
        a: empty_org(),
        b: empty_org(),
        callers: Vec::new(),
        b_markers: Vec::new(),
        counter: Default::default(),
    };
    let call = |bearer: &str, method: Method, path: String, body: Option<Value>| {
        let bearer = bearer.to_string();
        let suite = &suite;
        async move {
            let (status, text) = suite
                .call(Some(&bearer), method, &path, body.as_ref())
                .await;
            (
                status,
                serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
            )
        }
    };
    let members = format!("/v1/orgs/{}/memberships", org.org_id);

    // The only owner can be neither demoted nor removed.
    let me = format!("{members}/{}", org.owner_user_id);
    let (status, body) = call(
        &owner,
        Method::PATCH,
        me.clone(),
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("last_owner")),
        "{body}"
    );
    let (status, body) = call(&owner, Method::DELETE, me.clone(), None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("last_owner")),
        "{body}"
    );

    // An invitation: single use, pending until accepted, then a member.
    let invite = json!({ "email": "Newcomer@Gamma.test", "role": "operator" });
    let (status, body) = call(&owner, Method::POST, members.clone(), Some(invite)).await;
    assert_eq!(status, 201, "{body}");
    let token = body["invitation"]["token"].as_str().unwrap().to_string();
    let pending = body["membership"]["id"].as_str().unwrap().to_string();
    let (status, body) = call(
        &owner,
        Method::PATCH,
        format!("{members}/{pending}"),
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("pending_invitation"))
    );
    let (_, list) = call(&owner, Method::GET, members.clone(), None).await;
    let row = list["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == pending.as_str())
        .expect("pending invitation listed")
        .clone();
    assert_eq!(
        (row["user_id"].as_str(), &row["accepted_at"]),
        (Some(""), &Value::Null)
    );
    let accept = format!("/invitations/{token}");
    let (status, _) = suite
        .call(None, Method::POST, &accept, Some(&json!({})))
        .await;
    assert_eq!(status, 400, "a new account needs a password");
    let body = json!({ "password": PASSWORD });
    let (status, text) = suite.call(None, Method::POST, &accept, Some(&body)).await;
    assert_eq!(status, 200, "{text}");
    let (status, _) = suite.call(None, Method::POST, &accept, Some(&body)).await;
    assert_eq!(status, 404, "an invitation is single-use");
    let operator = sign_in(&suite.world, "newcomer@gamma.test", PASSWORD, "gamma").await;
    let (status, session) = call(&operator, Method::GET, "/v1/me/session".into(), None).await;
    assert_eq!((status, session["role"].as_str()), (200, Some("operator")));
    let operator_id = session["user_id"].as_str().unwrap().to_string();

    // An invitation for an existing account needs that account's proof.
    let default_slug = suite.world.server.bootstrap.org_slug.clone();
    evershell_server::admin::create_user(
        store,
        &default_slug,
        "elsewhere@x.test",
        "member",
        PASSWORD,
    )
    .await
    .expect("user");
    let invite = json!({ "email": "elsewhere@x.test", "role": "member" });
    let (status, body) = call(&owner, Method::POST, members.clone(), Some(invite)).await;
    assert_eq!(status, 201, "{body}");
    let accept = format!(
        "/invitations/{}",
        body["invitation"]["token"].as_str().unwrap()
    );
    let (_, shown) = suite.call(None, Method::GET, &accept, None).await;
    assert!(shown.contains("\"account_exists\":true"), "{shown}");
    for body in [json!({}), json!({ "password": "not the password at all" })] {
        let (status, text) = suite.call(None, Method::POST, &accept, Some(&body)).await;
        assert_eq!(status, 401, "{text}");
    }
    let elsewhere = sign_in(&suite.world, "elsewhere@x.test", PASSWORD, &default_slug).await;
    let (status, text) = suite
        .call(Some(&elsewhere), Method::POST, &accept, Some(&json!({})))
        .await;
    assert_eq!(
        status, 200,
        "the invited person, signed in, accepts: {text}"
    );

    // Only an owner changes roles or invites owners.
    let (status, _) = call(
        &operator,
        Method::POST,
        members.clone(),
        Some(json!({"email": "x@gamma.test", "role": "owner"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = call(
        &owner,
        Method::PATCH,
        format!("{members}/{operator_id}"),
        Some(json!({"role": "owner"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Two owners: now the first may step down.
    let (status, body) = call(
        &owner,
        Method::PATCH,
        me.clone(),
        Some(json!({"role": "operator"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Removing a member: their very next request fails.
    let first = owner;
    let (status, _) = call(&operator, Method::DELETE, me.clone(), None).await;
    assert_eq!(status, 200);
    let (status, _) = call(&first, Method::GET, "/v1/me/session".into(), None).await;
    assert_eq!(status, 401, "a removed member's session stops working");

    // Revoking a key: its next request is 401.
    let (status, key) = call(
        &operator,
        Method::POST,
        "/v1/api-keys".into(),
        Some(json!({"label": "ci", "permission_set": "full_access"})),
    )
    .await;
    assert_eq!(status, 201);
    let value = key["value"].as_str().unwrap().to_string();
    let (status, _) = call(&value, Method::GET, "/v1/workspaces".into(), None).await;
    assert_eq!(status, 200);
    let (status, body) = call(&value, Method::GET, "/v1/api-keys".into(), None).await;
    assert_eq!(status, 403, "keys never manage keys: {body}");
    let (_, keys) = call(&operator, Method::GET, "/v1/api-keys".into(), None).await;
    assert!(keys["api_keys"][0]["last_used_at"].is_string(), "{keys}");
    let id = key["id"].as_str().unwrap();
    let (status, _) = call(
        &operator,
        Method::DELETE,
        format!("/v1/api-keys/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(&value, Method::GET, "/v1/workspaces".into(), None).await;
    assert_eq!(status, 401, "a revoked key is refused at once");

    // Bodies are JSON objects: an array would fill fields by position.
    let (status, body) = call(
        &operator,
        Method::PATCH,
        format!("{members}/{operator_id}"),
        Some(json!(["member"])),
    )
    .await;
    assert_eq!(
        (status, body["error"]["details"]["fields"]["body"].as_str()),
        (400, Some("must be a JSON object")),
        "{body}"
    );

    // A credential a provider uses cannot be deleted from under it.
    let credential =
        json!({"name": "in-use", "provider": "anthropic", "kind": "api_key", "api_key": "k"});
    let (status, _) = call(
        &operator,
        Method::POST,
        "/v1/credentials".into(),
        Some(credential),
    )
    .await;
    assert_eq!(status, 201);
    let provider = json!({"name": "uses-it", "kind": "anthropic", "domain": "api.anthropic.com", "credential_name": "in-use"});
    let (status, _) = call(
        &operator,
        Method::POST,
        "/v1/providers".into(),
        Some(provider),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = call(
        &operator,
        Method::DELETE,
        "/v1/credentials/in-use".into(),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("credential_in_use")),
        "{body}"
    );

    // Invitations a removed member sent die with their membership.
    let (status, body) = call(
        &operator,
        Method::POST,
        members.clone(),
        Some(json!({"email": "helper@gamma.test", "role": "member"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let helper_token = body["invitation"]["token"].as_str().unwrap().to_string();
    evershell_server::admin::create_user(store, "gamma", "deputy@gamma.test", "owner", PASSWORD)
        .await
        .expect("user");
    let deputy = sign_in(&suite.world, "deputy@gamma.test", PASSWORD, "gamma").await;
    let (status, body) = call(
        &deputy,
        Method::POST,
        members.clone(),
        Some(json!({"email": "late@gamma.test", "role": "owner"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let late = format!(
        "/invitations/{}",
        body["invitation"]["token"].as_str().unwrap()
    );
    let (_, session) = call(&deputy, Method::GET, "/v1/me/session".into(), None).await;
    let deputy_id = session["user_id"].as_str().unwrap();
    let (status, _) = call(
        &operator,
        Method::DELETE,
        format!("{members}/{deputy_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = suite
        .call(
            None,
            Method::POST,
            &late,
            Some(&json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, 404, "the removed owner's invitation is revoked");

    // A suspended org reads and winds down, but creates nothing.
    evershell_server::admin::set_posture(store, "gamma", "suspended")
        .await
        .expect("posture set");
    let accept = format!("/invitations/{helper_token}");
    let (status, text) = suite
        .call(
            None,
            Method::POST,
            &accept,
            Some(&json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(status, 423, "a suspended org takes no new members: {text}");
    let (status, body) = call(
        &operator,
        Method::POST,
        "/v1/secrets".into(),
        Some(json!({"name": "s", "value": "v"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (423, Some("billing_inactive")),
        "{body}"
    );
    let (status, _) = call(
        &operator,
        Method::POST,
        "/v1/api-keys".into(),
        Some(json!({"label": "x", "permission_set": "read_only"})),
    )
    .await;
    assert_eq!(status, 423);
    let (status, _) = call(&operator, Method::GET, "/v1/secrets".into(), None).await;
    assert_eq!(status, 200);
    let (status, _) = call(&operator, Method::DELETE, "/v1/secrets/none".into(), None).await;
    assert_eq!(status, 404, "wind-down routes are not refused");
    evershell_server::admin::set_posture(store, "gamma", "active")
        .await
        .expect("posture set");
    let (status, _) = call(
        &operator,
        Method::POST,
        "/v1/secrets".into(),
        Some(json!({"name": "s", "value": "v"})),
    )
    .await;
    assert_eq!(status, 201);

    // Every change above left its audit row, attributed to its author.
    let (_, page) = call(&operator, Method::GET, "/v1/audit?limit=1000".into(), None).await;
    let types: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    for wanted in [
        "member_invited",
        "member_joined",
        "member_role_changed",
        "member_removed",
        "api_key_created",
        "api_key_revoked",
        "secret_created",
    ] {
        assert!(types.contains(&wanted), "{wanted} missing from {types:?}");
    }

    suite.world.shutdown().await;
}

fn empty_org() -> Org {
    Org {
        slug: String::new(),
        id: String::new(),
        admin: String::new(),
        ws_member: String::new(),
        task_member: String::new(),
        ws_other: String::new(),
        task_other: String::new(),
        provider: String::new(),
        role: String::new(),
        credential: String::new(),
        secret: String::new(),
        key_id: String::new(),
    }
}

on_both_engines!(access_changes, suite);

/// Two replicas on one PostgreSQL database: a key revoked through one is
/// refused by the other on its very next request, and a member removed
/// through one loses their session on the other. Nothing about keys or
/// memberships is cached, so "at once" here is the commit of the change.
#[tokio::test(flavor = "multi_thread")]
async fn revocation_reaches_every_replica_at_once() {
    let world = DemoWorld::start_on_temp_postgres(Vec::new(), common::exe())
        .await
        .expect("world starts");
    let url = world.database.as_ref().expect("database").url().to_string();
    let mut config = evershell_server::ServerConfig::new(
        world.dir.path().join("data"),
        "127.0.0.1:0".parse().unwrap(),
        common::exe(),
    );
    config.database_url = Some(url);
    let replica = evershell_server::start(config)
        .await
        .expect("second replica starts");
    let http = world.client.http().clone();
    let on = |addr: std::net::SocketAddr, path: &str| format!("http://{addr}{path}");
    let first = world.server.addr;
    let second = replica.addr;

    let slug = world.server.bootstrap.org_slug.clone();
    let store = &world.server.ctx.store;
    evershell_server::admin::create_user(store, &slug, "boss@a.test", "owner", PASSWORD)
        .await
        .unwrap();
    evershell_server::admin::create_user(store, &slug, "temp@a.test", "member", PASSWORD)
        .await
        .unwrap();
    let boss = sign_in(&world, "boss@a.test", PASSWORD, &slug).await;
    let temp = sign_in(&world, "temp@a.test", PASSWORD, &slug).await;

    let status = |response: reqwest::Response| response.status().as_u16();
    let key: Value = http
        .post(on(first, "/v1/api-keys"))
        .bearer_auth(&boss)
        .json(&json!({"label": "fleet", "permission_set": "read_only"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let value = key["value"].as_str().unwrap();
    for addr in [first, second] {
        let r = http
            .get(on(addr, "/v1/workspaces"))
            .bearer_auth(value)
            .send()
            .await
            .unwrap();
        assert_eq!(status(r), 200);
        let r = http
            .get(on(addr, "/v1/me/session"))
            .bearer_auth(&temp)
            .send()
            .await
            .unwrap();
        assert_eq!(status(r), 200, "a session token works on every replica");
    }

    let id = key["id"].as_str().unwrap();
    let r = http
        .delete(on(first, &format!("/v1/api-keys/{id}")))
        .bearer_auth(&boss)
        .send()
        .await
        .unwrap();
    assert_eq!(status(r), 200);
    let r = http
        .get(on(second, "/v1/workspaces"))
        .bearer_auth(value)
        .send()
        .await
        .unwrap();
    assert_eq!(status(r), 401, "the other replica refuses the revoked key");

    let session: Value = http
        .get(on(first, "/v1/me/session"))
        .bearer_auth(&temp)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org = session["org_id"].as_str().unwrap();
    let user = session["user_id"].as_str().unwrap();
    let r = http
        .delete(on(first, &format!("/v1/orgs/{org}/memberships/{user}")))
        .bearer_auth(&boss)
        .send()
        .await
        .unwrap();
    assert_eq!(status(r), 200);
    let r = http
        .get(on(second, "/v1/me/session"))
        .bearer_auth(&temp)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status(r),
        401,
        "the other replica refuses the removed member"
    );

    replica.shutdown().await;
    world.shutdown().await;
}
