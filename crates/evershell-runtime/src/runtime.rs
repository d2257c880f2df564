//! The runtime: prepares a workspace's host directories and launches its
//! sandbox on a keeper thread.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{chown, DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread;

use tokio::sync::watch;
use tracing::instrument;

use crate::config::{Limits, LocalRuntimeConfig, SandboxSpec, WorkspacePaths};
use crate::error::RuntimeError;
use crate::keeper::{self, Launch, ReapState};
use crate::plan::InitPlan;
use crate::sandbox::Sandbox;

/// Starts sandboxes of workspaces on this host. Callers run at most one
/// sandbox per workspace at a time.
#[derive(Debug, Clone)]
pub struct LocalRuntime {
    cfg: LocalRuntimeConfig,
    limits: Limits,
}

impl LocalRuntime {
    /// A runtime with the default [`Limits`].
    pub fn new(cfg: LocalRuntimeConfig) -> Self {
        LocalRuntime {
            cfg,
            limits: Limits::default(),
        }
    }

    /// Replaces the limits applied to sandboxes started from now on.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The host directories of a workspace (created by the first start).
    pub fn paths(&self, workspace_id: &str) -> WorkspacePaths {
        WorkspacePaths::under(&self.cfg.root, workspace_id)
    }

    /// Starts a sandbox and returns once its command is about to run.
    /// Blocking (tens of milliseconds): call it from `spawn_blocking`.
    ///
    /// Creates the workspace's directories if needed and gives them to
    /// `spec.uid`; their contents persist across starts. On error nothing
    /// of this start keeps running.
    #[instrument(skip_all, fields(workspace = %spec.workspace_id))]
    pub fn start(&self, spec: &SandboxSpec) -> Result<Sandbox, RuntimeError> {
        spec.validate()?;
        let paths = self.paths(&spec.workspace_id);
        prepare_dirs(&paths, spec.uid).map_err(|(path, source)| RuntimeError::Prepare {
            workspace: spec.workspace_id.clone(),
            path,
            source,
        })?;
        let console =
            open_console(&paths.console_log()).map_err(|source| RuntimeError::Prepare {
                workspace: spec.workspace_id.clone(),
                path: paths.console_log(),
                source,
            })?;

        let agent_socket = paths.run.join("agent.sock");
        let launch = Launch {
            exe: self.cfg.exe.clone(),
            plan: self.plan(spec, paths),
            extra_tcp_ports: spec.extra_tcp_ports.clone(),
            console,
        };
        self.launch(spec.workspace_id.clone(), launch, agent_socket)
    }

    fn plan(&self, spec: &SandboxSpec, paths: WorkspacePaths) -> InitPlan {
        InitPlan {
            workspace_id: spec.workspace_id.clone(),
            uid: spec.uid,
            hostname: spec.hostname.clone(),
            env: spec.env.clone(),
            command: spec.command.clone(),
            paths,
            exe: self.cfg.exe.clone(),
            ca_pem: self.cfg.ca_pem.clone(),
            limits: self.limits,
        }
    }

    fn launch(
        &self,
        workspace: String,
        launch: Launch,
        agent_socket: std::path::PathBuf,
    ) -> Result<Sandbox, RuntimeError> {
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let (exit_tx, exit_rx) = watch::channel(None);
        let reaped = Arc::new(ReapState::default());

        let thread_reaped = reaped.clone();
        let keeper = thread::Builder::new()
            .name(format!("sandbox-{workspace}"))
            .spawn(move || keeper::run(launch, ready_tx, thread_reaped, exit_tx))
            .map_err(|source| RuntimeError::Launch {
                workspace: workspace.clone(),
                source,
            })?;

        match ready_rx.recv() {
            Ok(Ok(started)) => Ok(Sandbox::new(
                workspace,
                started.pid,
                started.listeners,
                agent_socket,
                exit_rx,
                reaped,
                keeper,
            )),
            Ok(Err(e)) => {
                let _ = keeper.join();
                Err(e)
            }
            Err(_) => {
                let _ = keeper.join();
                let source = io::Error::other("sandbox thread ended without a result");
                Err(RuntimeError::Launch { workspace, source })
            }
        }
    }
}

/// Creates the workspace root (root-owned, 0700), the empty mount point of
/// the new root filesystem, and the agent-owned directories.
fn prepare_dirs(paths: &WorkspacePaths, uid: u32) -> Result<(), (std::path::PathBuf, io::Error)> {
    let at = |path: &Path| {
        let path = path.to_path_buf();
        move |e| (path, e)
    };
    fs::create_dir_all(&paths.root).map_err(at(&paths.root))?;
    fs::set_permissions(&paths.root, fs::Permissions::from_mode(0o700)).map_err(at(&paths.root))?;
    ensure_dir(&paths.rootfs(), 0o700).map_err(at(&paths.rootfs()))?;
    for (dir, _) in paths.owned_dirs() {
        ensure_dir(dir, 0o755).map_err(at(dir))?;
        chown(dir, Some(uid), Some(uid)).map_err(at(dir))?;
    }
    Ok(())
}

/// Creates `dir` if missing; refuses anything there that is not a
/// directory (a symlink would redirect the chown and the bind mount).
fn ensure_dir(dir: &Path, mode: u32) -> io::Result<()> {
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    if fs::symlink_metadata(dir)?.is_dir() {
        Ok(())
    } else {
        Err(io::Error::other("exists and is not a directory"))
    }
}

fn open_console(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
}
