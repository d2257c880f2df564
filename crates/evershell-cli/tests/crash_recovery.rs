//! Killing the server with SIGKILL in the middle of a task loses no audit
//! row it had acknowledged, and the restarted server leaves the workspace
//! consistent: the interrupted task is `failed` with a reason, the sandbox
//! is back, and new work runs.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use evershell_cli::client::{Client, Profile};
use evershell_cli::demo::{DEMO_API_KEY, DEMO_CAPS, GIT_HOST, MODEL_HOST};
use evershell_proxy::ca::CertificateAuthority;
use evershell_testkit::model::{ModelServerConfig, ScriptStep};
use serde_json::{json, Value};

struct Paths {
    home: PathBuf,
    data: PathBuf,
    config: PathBuf,
    logs: PathBuf,
}

/// An `evershell up` child process, SIGKILLed and reaped when dropped, so a
/// failing assertion never leaves a server running.
struct ServerProcess(Child);

impl ServerProcess {
    fn kill(&mut self) {
        self.0.kill().expect("SIGKILL the server");
        self.0.wait().expect("reaped");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn up(paths: &Paths, listen: SocketAddr, run: u32) -> ServerProcess {
    let log = std::fs::File::create(paths.logs.join(format!("up-{run}.log"))).expect("log file");
    ServerProcess(
        Command::new(common::exe())
            .args(["up", "--listen", &listen.to_string(), "--data-dir"])
            .arg(&paths.data)
            .arg("--config")
            .arg(&paths.config)
            .env("HOME", &paths.home)
            .env("EVERSHELL_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("evershell up starts"),
    )
}

async fn wait_healthy(listen: SocketAddr) {
    let url = format!("http://{listen}/healthz");
    for _ in 0..200 {
        if reqwest::get(&url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server on {listen} did not become healthy");
}

/// The profile `up` wrote on first start (written just after it starts
/// serving, so it is waited for).
async fn read_profile(home: &Path) -> Profile {
    let path = home.join(".config/evershell/credentials");
    for _ in 0..200 {
        if path.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let text = std::fs::read_to_string(path).expect("credentials file");
    let table: toml::Table = text.parse().expect("toml");
    table["default"].clone().try_into().expect("profile")
}

async fn ids(client: &Client, ws: &str) -> Vec<String> {
    common::audit_rows(client, ws)
        .await
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_task_loses_no_acknowledged_row_and_recovers_the_workspace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = Paths {
        home: dir.path().join("home"),
        data: dir.path().join("data"),
        config: dir.path().join("evershell.toml"),
        logs: dir.path().to_path_buf(),
    };
    std::fs::create_dir_all(&paths.home).expect("home");

    // Upstreams: the model's first step sleeps long enough to be killed;
    // when run again (after the restart) it returns at once.
    let ca = CertificateAuthority::generate("crash test CA").expect("ca");
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let script = vec![
        common::bash("if [ -f /workspace/.second ]; then echo again; else touch /workspace/.second; echo started; sleep 60; fi"),
        ScriptStep::Text("done".into()),
    ];
    let model = evershell_testkit::model::start(ModelServerConfig {
        addr: loopback,
        tls: Some(evershell_testkit::tls::server_config(&ca, &[MODEL_HOST]).unwrap()),
        expected_api_key: Some(DEMO_API_KEY.to_string()),
        script,
    })
    .await
    .expect("model server");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let config = format!(
        "[proxy]\nextra_roots = [{ca:?}]\n[proxy.resolve]\n\"{MODEL_HOST}:443\" = \"{}\"\n\"{GIT_HOST}:443\" = \"127.0.0.1:9\"\n",
        model.addr(),
        ca = ca_file.display().to_string()
    );
    std::fs::write(&paths.config, config).unwrap();

    let listen: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut server = up(&paths, listen, 1);
    wait_healthy(listen).await;
    let client = Client::new(read_profile(&paths.home).await);

    let mut admin = Command::new(common::exe())
        .args([
            "admin",
            "create-credential",
            "--name",
            "demo-anthropic",
            "--provider",
            "anthropic",
            "--data-dir",
        ])
        .arg(&paths.data)
        .env("HOME", &paths.home)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("admin runs");
    admin
        .stdin
        .take()
        .unwrap()
        .write_all(DEMO_API_KEY.as_bytes())
        .unwrap();
    assert!(
        admin.wait().unwrap().success(),
        "admin create-credential failed"
    );
    let _: Value = client
        .post(
            "/v1/providers",
            &json!({"name": "demo-anthropic", "kind": "anthropic", "domain": MODEL_HOST,
            "credential_name": "demo-anthropic", "default_model": "m"}),
        )
        .await
        .expect("provider");
    let _: Value = client
        .post(
            "/v1/agent-roles",
            &json!({"name": "sleeper", "provider_id": "demo-anthropic", "capabilities": DEMO_CAPS}),
        )
        .await
        .expect("role");
    let accepted: Value = client
        .post(
            "/v1/tasks",
            &json!({"role_name": "sleeper", "description": "sleep"}),
        )
        .await
        .unwrap();
    let ws = accepted["workspace_id"].as_str().unwrap().to_string();
    let task = accepted["task_id"].as_str().unwrap().to_string();

    // Wait until the agent is inside its tool call: the model was called
    // (a policy decision is committed) and the task runs.
    let mut acknowledged = Vec::new();
    for _ in 0..200 {
        let rows = common::audit_rows(&client, &ws).await;
        let t: Value = client
            .get(&format!("/v1/workspaces/{ws}/tasks/{task}"))
            .await
            .unwrap();
        if t["status"] == "running" && rows.iter().any(|r| r["event_type"] == "policy_decision") {
            tokio::time::sleep(Duration::from_millis(300)).await;
            acknowledged = ids(&client, &ws).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!acknowledged.is_empty(), "the task never started");

    server.kill();
    let mut server = up(&paths, listen, 2);
    wait_healthy(listen).await;

    let after = ids(&client, &ws).await;
    for id in &acknowledged {
        assert!(after.contains(id), "acknowledged row {id} was lost");
    }
    let t: Value = client
        .get(&format!("/v1/workspaces/{ws}/tasks/{task}"))
        .await
        .unwrap();
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["reason"], "server_restarted", "{t}");

    // The workspace comes back and takes new work.
    let mut status = Value::Null;
    for _ in 0..200 {
        let w: Value = client.get(&format!("/v1/workspaces/{ws}")).await.unwrap();
        status = w["status"].clone();
        if status == "idle" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "idle");
    let follow: Value = client
        .post(
            &format!("/v1/workspaces/{ws}/tasks"),
            &json!({"description": "again"}),
        )
        .await
        .unwrap();
    let next = follow["task_id"].as_str().unwrap();
    let done = common::wait_task(&client, &ws, next, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "completed", "{done}");

    server.kill();
}
