//! A control plane started in-process on a temporary data directory, called
//! through its router without a socket (or over loopback when a test needs
//! the wire), with the bootstrap owner's session token.

#![allow(dead_code)]

use axum::body::Body;
use axum::http::{Method, Request};
use axum::Router;
use evershell_server::{RunningServer, ServerConfig};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub struct TestServer {
    pub server: RunningServer,
    pub app: Router,
    /// A session token of the org's owner, who holds every scope a route
    /// asks for.
    pub token: String,
    pub org_id: String,
    pub owner_id: String,
    _dir: tempfile::TempDir,
}

/// A response, its body parsed as JSON when it is JSON.
pub struct Reply {
    pub status: u16,
    pub request_id: Option<String>,
    pub body: Value,
    pub bytes: Vec<u8>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// Starts a server whose configuration `configure` adjusts.
    pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let listen = "127.0.0.1:0".parse().expect("literal address");
        // No test starts a sandbox: the binary mounted into them is absent.
        let exe = dir.path().join("no-such-evershell");
        let mut config = ServerConfig::new(dir.path().join("data"), listen, exe);
        configure(&mut config);
        let server = evershell_server::start(config)
            .await
            .expect("server starts");
        let ctx = server.ctx.clone();
        let org_id = ctx
            .store
            .org_id_by_slug("default")
            .await
            .expect("store readable")
            .expect("bootstrap creates org default");
        let owner_id = ctx
            .store
            .ensure_member(&org_id, "owner@localhost", "owner")
            .await
            .expect("owner exists");
        let now = chrono::Utc::now().timestamp();
        let (token, _) = ctx
            .sessions
            .sign(&ctx.store, &owner_id, &org_id, now)
            .await
            .expect("session signs");
        TestServer {
            app: evershell_server::app(ctx),
            server,
            token,
            org_id,
            owner_id,
            _dir: dir,
        }
    }

    /// A request carrying the owner's session.
    pub fn request(&self, method: Method, path: &str) -> axum::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.token))
    }

    /// `body` as JSON, with the owner's session.
    pub fn json(&self, method: Method, path: &str, body: impl Into<Body>) -> Request<Body> {
        self.request(method, path)
            .header("content-type", "application/json")
            .body(body.into())
            .expect("request builds")
    }

    /// Serves one request in-process.
    pub async fn call(&self, request: Request<Body>) -> Reply {
        let response = self
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status().as_u16();
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("bodies of in-process answers are complete")
            .to_bytes()
            .to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            request_id,
            body,
            bytes,
        }
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

impl Reply {
    /// Asserts the answer is the error envelope with `status` and `code`,
    /// carrying the response's request id.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        let error = &self.body["error"];
        assert_eq!(error["code"], code, "{}", self.body);
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.body
        );
        assert_eq!(
            error["request_id"].as_str(),
            self.request_id.as_deref(),
            "{}",
            self.body
        );
    }
}
