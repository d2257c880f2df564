//! Shared fixture: a runtime rooted in a temporary directory, and helpers
//! to run a shell script in a sandbox and collect its exit code and output.

use std::fs;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use evershell_runtime::{LocalRuntime, LocalRuntimeConfig, Sandbox, SandboxSpec};
use tempfile::TempDir;

/// Stand-in for the platform CA; the runtime does not parse it.
pub const PLATFORM_CA: &str =
    "-----BEGIN CERTIFICATE-----\nRVZFUlNIRUxMIFRFU1QgQ0E=\n-----END CERTIFICATE-----\n";

/// The sandbox binary built from this crate.
pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_evershell-sandbox"))
}

pub struct Fixture {
    pub dir: TempDir,
    pub runtime: LocalRuntime,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("create temp dir");
        let cfg = LocalRuntimeConfig {
            root: dir.path().join("workspaces"),
            exe: exe(),
            ca_pem: PLATFORM_CA.to_owned(),
        };
        Fixture {
            runtime: LocalRuntime::new(cfg),
            dir,
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("workspaces")
    }

    pub fn start(&self, spec: &SandboxSpec) -> Sandbox {
        self.runtime.start(spec).expect("sandbox starts")
    }

    /// Runs `script` with `/bin/sh -c` to completion; returns the exit code
    /// and everything it printed.
    pub fn run(&self, workspace: &str, uid: u32, script: &str) -> (i32, String) {
        let mut sandbox = self.start(&spec(workspace, uid, script));
        let code = wait_exit(&sandbox, Duration::from_secs(10));
        sandbox.kill();
        let log = self.runtime.paths(workspace).console_log();
        (code, fs::read_to_string(log).expect("read console log"))
    }
}

pub fn spec(workspace: &str, uid: u32, script: &str) -> SandboxSpec {
    SandboxSpec {
        workspace_id: workspace.to_owned(),
        uid,
        hostname: "sandbox-test".to_owned(),
        extra_tcp_ports: vec![8080],
        env: vec![("EVERSHELL_TEST".to_owned(), "1".to_owned())],
        command: vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()],
    }
}

/// Waits for the sandbox's exit code; panics after `limit`.
pub fn wait_exit(sandbox: &Sandbox, limit: Duration) -> i32 {
    let exit = sandbox.exit_watch();
    let deadline = Instant::now() + limit;
    loop {
        if let Some(code) = *exit.borrow() {
            return code;
        }
        assert!(
            Instant::now() < deadline,
            "sandbox did not exit in {limit:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `cond` holds; panics after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}
