//! The keeper: one dedicated thread per sandbox. It enters a fresh network
//! namespace, binds the egress listeners, enters a fresh PID namespace (for
//! its children only) and spawns sandbox-init, which therefore becomes PID 1
//! of the sandbox. It then waits for that process for as long as it lives.
//!
//! The thread must outlive the sandbox: sandbox-init asks for `SIGKILL` when
//! its parent *thread* exits, which is also what tears the sandbox down
//! when the server dies.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use evershell_core::net::EgressListeners;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::CloneFlags;
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::error::RuntimeError;
use crate::netns;
use crate::plan::{InitPlan, Status};

/// How long sandbox-init may take to build the sandbox.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Longest status line accepted from sandbox-init.
const MAX_STATUS_LINE: usize = 4096;

/// Everything the keeper thread needs to launch one sandbox.
pub(crate) struct Launch {
    pub exe: PathBuf,
    pub plan: InitPlan,
    pub extra_tcp_ports: Vec<u16>,
    /// Receives the init's stderr, then the command's stdout and stderr.
    pub console: File,
}

/// What the keeper hands back once the sandbox reported ready.
pub(crate) struct Started {
    pub pid: u32,
    pub listeners: EgressListeners,
}

/// Whether the keeper has reaped sandbox-init. Signals are sent under this
/// lock, so a pid is never signalled after it could have been reused.
#[derive(Debug, Default)]
pub(crate) struct ReapState(Mutex<bool>);

/// The keeper thread's body: launch, report through `ready`, then wait for
/// sandbox-init and publish its exit code on `exit`.
pub(crate) fn run(
    launch: Launch,
    ready: SyncSender<Result<Started, RuntimeError>>,
    reaped: Arc<ReapState>,
    exit: watch::Sender<Option<i32>>,
) {
    let workspace = launch.plan.workspace_id.clone();
    let (mut child, listeners) = match launch_sandbox(launch) {
        Ok(launched) => launched,
        Err(e) => {
            // The caller is blocked on this channel; it cannot be gone.
            let _ = ready.send(Err(e));
            return;
        }
    };

    let pid = child.id();
    info!(workspace = %workspace, pid, "sandbox started");
    if ready.send(Ok(Started { pid, listeners })).is_err() {
        warn!(workspace = %workspace, pid, "sandbox caller vanished, killing sandbox");
        let _ = child.kill();
    }

    let code = supervise(&mut child, &reaped);
    info!(workspace = %workspace, pid, code, "sandbox exited");
    exit.send_replace(Some(code));
}

impl ReapState {
    /// Locks the state, tolerating a poisoned lock (a bool cannot be torn).
    pub(crate) fn lock(&self) -> MutexGuard<'_, bool> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn launch_sandbox(launch: Launch) -> Result<(Child, EgressListeners), RuntimeError> {
    let workspace = launch.plan.workspace_id.clone();
    let net = |step| {
        let workspace = workspace.clone();
        move |source| RuntimeError::Network {
            workspace,
            step,
            source,
        }
    };

    netns::enter_new().map_err(net("unshare"))?;
    netns::route_everything_locally().map_err(net("loopback routes"))?;
    let listeners = netns::bind_listeners(&launch.extra_tcp_ports).map_err(net("bind"))?;
    debug!(workspace = %workspace, "network namespace ready");

    // From here on, this thread's next child is PID 1 of a new namespace;
    // no other process may be spawned from this thread.
    nix::sched::unshare(CloneFlags::CLONE_NEWPID).map_err(|e| RuntimeError::Launch {
        workspace: workspace.clone(),
        source: e.into(),
    })?;
    let mut child = spawn_init(&launch)?;

    match await_ready(&mut child, &launch.plan) {
        Ok(()) => Ok((child, listeners)),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

fn spawn_init(launch: &Launch) -> Result<Child, RuntimeError> {
    let workspace = &launch.plan.workspace_id;
    let launch_err = |source| RuntimeError::Launch {
        workspace: workspace.clone(),
        source,
    };
    let stderr = launch.console.try_clone().map_err(launch_err)?;
    Command::new(&launch.exe)
        .args(["sandbox-init", "--workspace", workspace])
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(launch_err)
}

/// Sends the plan and waits for the status line.
fn await_ready(child: &mut Child, plan: &InitPlan) -> Result<(), RuntimeError> {
    let workspace = plan.workspace_id.clone();
    let deadline = Instant::now() + START_TIMEOUT;

    let mut stdin = child
        .stdin
        .take()
        .expect("sandbox-init is spawned with a piped stdin");
    let plan_json = serde_json::to_vec(plan).expect("the init plan always serialises");
    // A write error means the init died early; its status says why.
    let delivered = stdin.write_all(&plan_json);
    drop(stdin);

    let mut stdout = child
        .stdout
        .take()
        .expect("sandbox-init is spawned with a piped stdout");
    let line = match read_status_line(&mut stdout, deadline) {
        Ok(line) => line,
        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
            return Err(RuntimeError::StartTimeout { workspace });
        }
        Err(e) => {
            return Err(RuntimeError::Launch {
                workspace,
                source: e,
            })
        }
    };

    match line.as_deref().and_then(Status::decode) {
        Some(Status::Ready) => Ok(()),
        Some(Status::Failed(reason)) => Err(RuntimeError::Init { workspace, reason }),
        None => {
            let reason = match (delivered, child.wait()) {
                (Err(e), _) => format!("init exited before reading its plan ({e})"),
                (Ok(()), Ok(status)) => format!("init exited ({status}) without a status"),
                (Ok(()), Err(e)) => format!("init vanished without a status ({e})"),
            };
            Err(RuntimeError::Init { workspace, reason })
        }
    }
}

/// Reads up to the first newline; `None` on end of file before one.
fn read_status_line(stdout: &mut ChildStdout, deadline: Instant) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => return Err(io::ErrorKind::TimedOut.into()),
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }

        let n = stdout.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        line.extend_from_slice(&chunk[..n]);
        if let Some(end) = line.iter().position(|&b| b == b'\n') {
            line.truncate(end);
            return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
        }
        if line.len() > MAX_STATUS_LINE {
            return Err(io::Error::other("status line too long"));
        }
    }
}

/// Waits for sandbox-init to exit, then reaps it under the reap lock.
/// Returns its exit code, or 128 + the signal that killed it.
fn supervise(child: &mut Child, reaped: &ReapState) -> i32 {
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pids fit in pid_t"));
    // WNOWAIT leaves the zombie in place so that `kill` never signals a
    // reused pid: the reap below happens under the lock `kill` takes.
    let exited = || waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT);
    while let Err(Errno::EINTR) = exited() {}

    let mut is_reaped = reaped.lock();
    let status = child.wait();
    *is_reaped = true;
    match status {
        Ok(status) => exit_code(status),
        Err(e) => {
            warn!(pid = pid.as_raw(), error = %e, "cannot reap sandbox init");
            -1
        }
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}
