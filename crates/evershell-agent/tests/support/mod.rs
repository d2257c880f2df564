//! The harness of the agent's end-to-end tests: a scripted model server on
//! loopback behind TLS issued by a test CA, and an agent service on a Unix
//! socket in a temporary directory, driven over HTTP like the control plane
//! drives it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use evershell_agent::{AgentConfig, AgentError};
use evershell_core::agent::AgentEvent;
use evershell_proxy::ca::CertificateAuthority;
use evershell_testkit::model::{ModelServerConfig, ScriptStep, ScriptedModelServer};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for an agent to reach a state before failing.
const PATIENCE: Duration = Duration::from_secs(30);

/// A scripted model reachable at `base_url` over TLS.
pub struct Model {
    pub server: ScriptedModelServer,
    pub ca_file: PathBuf,
    /// `https://localhost:<port>`.
    pub origin: String,
}

/// A running agent service.
pub struct Agent {
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub workdir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    served: JoinHandle<Result<(), AgentError>>,
}

/// Starts a scripted model with a certificate for `localhost`, writing the CA
/// to `dir/ca.pem`.
pub async fn model(dir: &Path, script: Vec<ScriptStep>, expected_api_key: Option<&str>) -> Model {
    let ca = CertificateAuthority::generate("Evershell Agent Test CA").expect("generate a CA");
    let tls = evershell_testkit::tls::server_config(&ca, &["localhost"]).expect("issue a cert");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).expect("write the CA");
    let cfg = ModelServerConfig {
        addr: "127.0.0.1:0".parse().expect("a literal address"),
        tls: Some(tls),
        expected_api_key: expected_api_key.map(str::to_owned),
        script,
    };
    let server = evershell_testkit::model::start(cfg)
        .await
        .expect("bind loopback");
    let origin = format!("https://localhost:{}", server.addr().port());
    Model {
        server,
        ca_file,
        origin,
    }
}

/// A `POST /tasks` body for `provider` (`anthropic` or `openai`).
pub fn delivery(task_id: &str, model: &Model, provider: &str) -> Value {
    let base_url = match provider {
        "openai" => format!("{}/v1", model.origin),
        _ => model.origin.clone(),
    };
    json!({
        "task_id": task_id,
        "description": "Write the notes file.",
        "model": {"provider_kind": provider, "base_url": base_url, "model": "scripted-1"},
        "environment_description": "A test workspace.",
        "max_continuations": 10,
        "max_context_tokens": 100000,
    })
}

impl Agent {
    /// Starts an agent with its socket, state and working directory under
    /// `root` (kept across restarts), trusting `ca_file`.
    pub async fn start(root: &Path, ca_file: &Path) -> Agent {
        let mut config = AgentConfig::new(root.join("agent.sock"));
        config.state_dir = root.join("state");
        config.workdir = root.join("workspace");
        config.ca_file = Some(ca_file.to_path_buf());
        std::fs::create_dir_all(&config.workdir).expect("create the workdir");
        let (stop, stopped) = oneshot::channel::<()>();
        let agent = Agent {
            socket: config.socket.clone(),
            state_dir: config.state_dir.clone(),
            workdir: config.workdir.clone(),
            stop: Some(stop),
            served: tokio::spawn(evershell_agent::run_until(config, async {
                let _ = stopped.await;
            })),
        };
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while agent.try_request("GET", "/healthz", None).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the agent never became healthy"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        agent
    }

    /// Stops the service and waits until it has.
    pub async fn stop(mut self) {
        let _ = self.stop.take().expect("stopped once").send(());
        let served = (&mut self.served)
            .await
            .expect("the agent task did not panic");
        served.expect("the agent stopped cleanly");
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.request("GET", path, None).await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub async fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        self.request("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, body) = self.request("POST", path, Some(body)).await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Events after `after` up to the first `task_completed`, long-polling.
    pub async fn until_task_completed(&self, after: u64) -> Vec<AgentEvent> {
        self.until(after, "task_completed").await
    }

    /// Events after `after` up to the first of `event_type`, long-polling.
    pub async fn until(&self, after: u64, event_type: &str) -> Vec<AgentEvent> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut events: Vec<AgentEvent> = Vec::new();
        loop {
            let last = events.last().map_or(after, |e| e.seq);
            let (status, page) = self.get(&format!("/events?after={last}&wait=5")).await;
            assert_eq!(status, 200, "{page}");
            let page: Vec<AgentEvent> =
                serde_json::from_value(page["events"].clone()).expect("events");
            events.extend(page);
            if let Some(end) = events.iter().position(|e| e.event_type == event_type) {
                events.truncate(end + 1);
                return events;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {event_type} in {events:?}"
            );
        }
    }

    async fn request(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Vec<u8>) {
        self.try_request(method, path, body)
            .await
            .expect("the agent answers")
    }

    async fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Vec<u8>), Box<dyn std::error::Error + Send + Sync>> {
        let stream = UnixStream::connect(&self.socket).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "agent")
            .header("content-type", "application/json")
            .body(Full::new(bytes))?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes().to_vec();
        Ok((status, body))
    }
}

/// The `event_type`s of `events`, in order.
pub fn types(events: &[AgentEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event_type.as_str()).collect()
}

/// A `bash` tool call step.
pub fn bash(command: &str) -> ScriptStep {
    ScriptStep::ToolCalls(vec![("bash".into(), json!({"command": command}))])
}
