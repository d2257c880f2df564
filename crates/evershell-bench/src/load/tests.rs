//! The load generator against a small local server: it counts what the
//! server answered as the target expects, counts everything else as errors
//! with a sample, sends the key, and never repeats a role name.

use std::collections::HashSet;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use super::*;

const KEY: &str = "Bearer sk_test";

/// Short phases: the test checks counting, not speed.
const PHASES: Phases = Phases {
    concurrency: 4,
    warmup: Duration::from_millis(50),
    measure: Duration::from_millis(250),
};

/// Serves `/ok` (200), `/teapot` (418 with a body) and `/roles`, which
/// answers 201 for a new name with the key, 401 without the key and 409 for
/// a name it has seen.
async fn serve() -> SocketAddr {
    let names: Arc<Mutex<HashSet<String>>> = Arc::default();
    let app = Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/teapot",
            get(|| async { (StatusCode::IM_A_TEAPOT, "short and stout") }),
        )
        .route("/roles", post(create_role))
        .with_state(names);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn create_role(
    State(names): State<Arc<Mutex<HashSet<String>>>>,
    headers: HeaderMap,
    Json(role): Json<Value>,
) -> StatusCode {
    if headers.get(AUTHORIZATION).map(|v| v.as_bytes()) != Some(KEY.as_bytes()) {
        return StatusCode::UNAUTHORIZED;
    }
    let name = role["name"].as_str().unwrap_or_default().to_string();
    let fresh = names.lock().expect("not poisoned").insert(name);
    if fresh {
        StatusCode::CREATED
    } else {
        StatusCode::CONFLICT
    }
}

fn target(addr: SocketAddr, method: Method, path: &str, expect: StatusCode) -> Target {
    Target {
        addr,
        method,
        path: path.to_string(),
        authorization: None,
        body: RequestBody::Empty,
        expect,
    }
}

fn new_role(addr: SocketAddr) -> Target {
    Target {
        authorization: Some(HeaderValue::from_static(KEY)),
        body: RequestBody::NewRole {
            prefix: "bench-".to_string(),
            provider_id: "p".to_string(),
            capabilities: String::new(),
            next: AtomicU64::new(0),
        },
        ..target(addr, Method::POST, "/roles", StatusCode::CREATED)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_expected_answers_as_requests_without_errors() {
    let addr = serve().await;
    let ok = Arc::new(target(addr, Method::GET, "/ok", StatusCode::OK));
    let outcome = run(ok, PHASES, &Handle::current()).await.expect("run");
    assert!(!outcome.latencies.is_empty());
    assert_eq!(outcome.error_count(), 0, "{:?}", outcome.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_unexpected_statuses_as_errors_with_a_sample() {
    let addr = serve().await;
    let teapot = Arc::new(target(addr, Method::GET, "/teapot", StatusCode::OK));
    let outcome = run(teapot, PHASES, &Handle::current()).await.expect("run");
    assert!(!outcome.latencies.is_empty());
    assert_eq!(outcome.error_count(), outcome.latencies.len() as u64);
    let tally = &outcome.errors["status 418"];
    assert_eq!(tally.sample, "short and stout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_roles_with_the_key_and_unique_names() {
    let addr = serve().await;
    let outcome = run(Arc::new(new_role(addr)), PHASES, &Handle::current())
        .await
        .expect("run");
    assert!(!outcome.latencies.is_empty());
    assert_eq!(outcome.error_count(), 0, "{:?}", outcome.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_a_refused_connection_as_a_transport_error() {
    // A port that was bound and released: nothing listens there.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener.local_addr().expect("bound")
    };
    let nobody = Arc::new(target(addr, Method::GET, "/ok", StatusCode::OK));
    let outcome = run(nobody, PHASES, &Handle::current()).await.expect("run");
    assert!(outcome.error_count() > 0);
    assert_eq!(outcome.error_count(), outcome.latencies.len() as u64);
    assert!(
        outcome.errors.contains_key("transport"),
        "{:?}",
        outcome.errors
    );
}
