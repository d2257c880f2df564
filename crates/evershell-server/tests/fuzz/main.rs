//! Robustness of every JSON-body route: random bodies (garbage bytes,
//! truncated and malformed JSON, values of the wrong type, valid-shaped
//! bodies with mutated, unknown or missing fields, huge strings, deep
//! nesting, bad names, bodies over the limit) never get a `5xx` or a
//! panic; every refusal is the error envelope with the request id, every
//! `validation_error` names its fields, and the server answers normally
//! afterwards.
//!
//! The routes are the operations of the OpenAPI document with a JSON
//! request body, so a new route is covered as soon as it is in the table.
//! The bodies come from a seeded generator: the seed is printed, and
//! `EVERSHELL_FUZZ_SEED` (and `EVERSHELL_FUZZ_BODIES`, per route) replay
//! or widen a run.
//!
//! No body can start a sandbox: routes under `/v1/tasks` and
//! `/v1/workspaces` are called as the owner of a second org that has no
//! agent role (so a new task is `404 role_not_found`) and whose only
//! workspace has `failed` (so a follow-up is `409 invalid_state` once its
//! body is validated). The test checks at the end that no other workspace
//! exists.
//!
//! Sign-in is the one public JSON route; a sign-in body that deserializes
//! costs an argon2id verification (about two seconds in a debug build), so
//! only [`SIGN_INS_VERIFIED`] such bodies are sent; every other body
//! generated for it is sent as for any route.

#[path = "../common/mod.rs"]
mod common;

mod bodies;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Method, Request};
use bodies::Bodies;
use chrono::Utc;
use common::{Reply, TestServer};
use evershell_core::model::{Task, Workspace};
use evershell_server::api::handlers::sign_in::SignIn;
use futures_util::FutureExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const DEFAULT_SEED: u64 = 0x0e7e_5e11_f022;
/// Bodies per route in a default run. Each request costs 1 to 4 ms in a
/// debug build (the session's membership is read on every request), so
/// this takes a few minutes; `EVERSHELL_FUZZ_BODIES=2000` is a quick run.
const BODIES_PER_ROUTE: usize = 10_000;
const SIGN_INS_VERIFIED: usize = 3;
/// A small body limit keeps over-limit bodies cheap to send.
const LIMIT: usize = 256 * 1024;

/// A JSON-body operation of the document.
struct Route {
    method: Method,
    path: String,
    schema: Value,
}

/// Who calls, and the fixtures the bodies refer to.
struct World {
    server: TestServer,
    /// Owner of the second org, which has no role and one failed workspace.
    tasks_token: String,
    failed_ws: String,
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| {
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => v.parse().ok(),
            }
        })
        .unwrap_or(default)
}

fn json_routes(document: &Value) -> Vec<Route> {
    let mut routes = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            if schema.is_null() {
                continue;
            }
            routes.push(Route {
                method: method.to_ascii_uppercase().parse().expect("methods parse"),
                path: path.clone(),
                schema: schema.clone(),
            });
        }
    }
    routes
}

async fn setup() -> World {
    let server = TestServer::start_with(|config| {
        config.set_body_limit(LIMIT).expect("a valid limit");
    })
    .await;
    for (name, provider) in [("fuzz-cred", "anthropic"), ("fuzz-cred-openai", "openai")] {
        let body = json!({ "name": name, "provider": provider, "kind": "api_key", "api_key": "k" });
        let reply = server
            .call(server.json(Method::POST, "/v1/credentials", body.to_string()))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let provider = json!({
        "name": "fuzz-provider", "kind": "anthropic", "domain": "api.example.test",
        "credential_name": "fuzz-cred", "default_model": "model-1",
    });
    let reply = server
        .call(server.json(Method::POST, "/v1/providers", provider.to_string()))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);

    let ctx = server.server.ctx.clone();
    let org = ctx
        .store
        .ensure_org("fuzz-tasks", "Fuzz tasks")
        .await
        .expect("org");
    let owner = ctx
        .store
        .ensure_member(&org, "tasks@example.test", "owner")
        .await
        .expect("member");
    let (tasks_token, _) = ctx
        .sessions
        .sign(&ctx.store, &owner, &org, Utc::now().timestamp())
        .await
        .expect("session");
    let failed_ws = failed_workspace(&server, &org, &owner).await;
    World {
        server,
        tasks_token,
        failed_ws,
    }
}

/// A workspace of `org` that has failed, with one finished task.
async fn failed_workspace(server: &TestServer, org: &str, owner: &str) -> String {
    let now = Utc::now();
    let ws = Workspace {
        id: "ws_fuzz".to_string(),
        org_id: org.to_string(),
        role_id: "role_gone".to_string(),
        environment: "development".to_string(),
        status: "failed".to_string(),
        created_by_user_id: owner.to_string(),
        snapshot_ref: None,
        last_snapshot_error: None,
        parent_workspace_id: None,
        fork_source_snapshot_ref: None,
        fork_point_task_count: None,
        pack_status: "unknown".to_string(),
        policy_version: None,
        task_count: 1,
        last_activity_at: None,
        reason: Some("sandbox_start_failed: fuzz fixture".to_string()),
        created_at: now,
        updated_at: now,
        archived_at: None,
    };
    let task = Task {
        id: "task_fuzz".to_string(),
        org_id: org.to_string(),
        workspace_id: ws.id.clone(),
        description: "fixture".to_string(),
        status: "failed".to_string(),
        created_at: now,
        completed_at: Some(now),
        duration_seconds: Some(0.0),
        reason: Some("fixture".to_string()),
        result: None,
        iterations: 0,
        input_tokens: 0,
        output_tokens: 0,
        metadata: Default::default(),
        created_by_user_id: owner.to_string(),
        reset_session: false,
        thinking_effort: None,
        max_continuations: None,
        max_context_tokens: None,
        uploads: Vec::new(),
    };
    server
        .server
        .ctx
        .store
        .create_workspace_with_task(&ws, &task, &[])
        .await
        .expect("fixture workspace stored");
    ws.id
}

/// Percent-encodes every byte but unreserved ones.
fn encode_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The route's path with its parameters filled: the fixture workspace
/// under `/v1/workspaces`, otherwise a name, sometimes a bad one.
fn fill(path: &str, world: &World, rng: &mut StdRng) -> String {
    path.split('/')
        .map(|segment| {
            if !segment.starts_with('{') {
                return segment.to_string();
            }
            if path.starts_with("/v1/workspaces/") && segment == "{id}" {
                return world.failed_ws.clone();
            }
            match rng.gen_range(0..10) {
                0 => "%FF%FE".to_string(),
                1 => encode_segment(
                    ["UPPER", "a b", "../x", "é", "x'--", "", "\u{0}"]
                        .choose(rng)
                        .expect("non-empty"),
                ),
                _ => format!("fuzz-{}", rng.gen_range(0..50)),
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Checks one answer; the message says what was sent.
fn check(reply: &Reply, sent: impl Fn() -> String) {
    if let Some(why) = problem(reply) {
        panic!("{why}\n{}\nanswer: {} {}", sent(), reply.status, reply.body);
    }
}

/// What is wrong with an answer, if anything.
fn problem(reply: &Reply) -> Option<String> {
    if reply.status >= 500 {
        return Some("server error".into());
    }
    if reply.status < 400 {
        return None;
    }
    let error = &reply.body["error"];
    let Some(code) = error["code"].as_str() else {
        let text = String::from_utf8_lossy(&reply.bytes);
        return Some(format!("not the error envelope: {text:?}"));
    };
    if error["message"].as_str().is_none_or(str::is_empty) {
        return Some("error without a message".into());
    }
    let id = error["request_id"].as_str();
    if id.is_none_or(|id| !id.starts_with("req_")) || id != reply.request_id.as_deref() {
        return Some("error without the request id of its x-request-id header".into());
    }
    let fields = error["details"]["fields"].as_object();
    if code == "validation_error" && (reply.status != 400 || fields.is_none_or(|f| f.is_empty())) {
        return Some("validation_error without details.fields".into());
    }
    if code == "payload_too_large" && error["details"]["limit_bytes"] != LIMIT {
        return Some("payload_too_large without the limit".into());
    }
    None
}

fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
    format!("{text:?} ({} bytes)", bytes.len())
}

async fn fuzz_route(
    world: &World,
    route: &Route,
    components: &Value,
    seed: u64,
    count: usize,
) -> BTreeMap<u16, usize> {
    let sandbox_free =
        route.path.starts_with("/v1/tasks") || route.path.starts_with("/v1/workspaces");
    let token = if sandbox_free {
        &world.tasks_token
    } else {
        &world.server.token
    };
    let mut rng = StdRng::seed_from_u64(seed ^ fxhash(&format!("{} {}", route.method, route.path)));
    let bodies = Bodies {
        schema: &route.schema,
        components,
        limit: LIMIT,
    };
    let verifies_password = route.path == "/auth/sign-in";
    let mut verified = 0;
    let mut statuses = BTreeMap::new();
    for i in 0..count {
        let body = loop {
            let body = bodies.next(&mut rng);
            if !verifies_password || !signs_in(&body.bytes) {
                break body;
            }
            if verified < SIGN_INS_VERIFIED {
                verified += 1;
                break body;
            }
        };
        let uri = fill(&route.path, world, &mut rng);
        let request = Request::builder()
            .method(route.method.clone())
            .uri(&uri)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", body.content_type)
            .body(Body::from(body.bytes.clone()))
            .expect("request builds");
        let sent = || {
            format!(
                "seed {seed:#x}, body {i} ({:?}) to {} {uri}: {}",
                body.kind,
                route.method,
                preview(&body.bytes)
            )
        };
        let reply = match AssertUnwindSafe(world.server.call(request))
            .catch_unwind()
            .await
        {
            Ok(reply) => reply,
            Err(_) => panic!("the server panicked on {}", sent()),
        };
        check(&reply, sent);
        *statuses.entry(reply.status).or_insert(0) += 1;
    }
    statuses
}

/// Whether a sign-in body deserializes, so that the handler verifies its
/// password.
fn signs_in(bytes: &[u8]) -> bool {
    serde_json::from_slice::<SignIn>(bytes).is_ok()
}

/// A stable 64-bit hash of a route, so each route has its own stream.
fn fxhash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Every parameterless `GET` answers without a server error, for both
/// callers, and no workspace other than the fixture exists.
async fn still_serving(world: &World) {
    let document = evershell_server::api::openapi::document();
    for (path, item) in document["paths"].as_object().expect("paths") {
        if path.contains('{') || item.get("get").is_none() || path.ends_with("/stream") {
            continue;
        }
        for token in [&world.server.token, &world.tasks_token] {
            let request = Request::get(path.as_str())
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .expect("request builds");
            let reply = world.server.call(request).await;
            assert_eq!(
                reply.status, 200,
                "GET {path} after the fuzz: {}",
                reply.body
            );
        }
    }
    let request = Request::get("/v1/workspaces")
        .header("authorization", format!("Bearer {}", world.tasks_token))
        .body(Body::empty())
        .expect("request builds");
    let workspaces = world.server.call(request).await.body;
    let ids: Vec<&str> = workspaces
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|ws| ws["id"].as_str())
        .collect();
    assert_eq!(
        ids,
        [world.failed_ws.as_str()],
        "the fuzz started a workspace"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_route_survives_random_bodies() {
    let seed = env_number("EVERSHELL_FUZZ_SEED", DEFAULT_SEED);
    let count = env_number("EVERSHELL_FUZZ_BODIES", BODIES_PER_ROUTE as u64) as usize;
    println!("fuzz seed {seed:#x} ({count} bodies per route; EVERSHELL_FUZZ_SEED replays)");
    let world = setup().await;
    let document = evershell_server::api::openapi::document();
    let components = &document["components"]["schemas"];
    let routes = json_routes(&document);
    assert!(routes.len() >= 8, "the JSON routes were not found");

    // Routes run side by side, each with its own random stream and its
    // bodies in order; their bodies touch different resources.
    let started = Instant::now();
    let shared = &world;
    let runs = routes.iter().map(|route| async move {
        let at = Instant::now();
        let statuses = fuzz_route(shared, route, components, seed, count).await;
        (route, at.elapsed(), statuses)
    });
    for (route, took, statuses) in futures_util::future::join_all(runs).await {
        println!(
            "{} {}: {:.1} s, statuses {statuses:?}",
            route.method,
            route.path,
            took.as_secs_f64()
        );
    }
    println!(
        "{} routes in {:.1} s",
        routes.len(),
        started.elapsed().as_secs_f64()
    );
    still_serving(&world).await;
    world.server.shutdown().await;
}
