//! The handle of a running sandbox.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use evershell_core::net::EgressListeners;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::sync::watch;
use tracing::debug;

use crate::keeper::ReapState;

/// A running sandbox. Dropping the handle kills the sandbox.
#[derive(Debug)]
pub struct Sandbox {
    workspace_id: String,
    pid: u32,
    listeners: Option<EgressListeners>,
    agent_socket: PathBuf,
    exit: watch::Receiver<Option<i32>>,
    reaped: Arc<ReapState>,
    keeper: Option<JoinHandle<()>>,
}

impl Sandbox {
    pub(crate) fn new(
        workspace_id: String,
        pid: u32,
        listeners: EgressListeners,
        agent_socket: PathBuf,
        exit: watch::Receiver<Option<i32>>,
        reaped: Arc<ReapState>,
        keeper: JoinHandle<()>,
    ) -> Self {
        Sandbox {
            workspace_id,
            pid,
            listeners: Some(listeners),
            agent_socket,
            exit,
            reaped,
            keeper: Some(keeper),
        }
    }

    /// The egress listeners, bound inside the sandbox's network namespace
    /// on `0.0.0.0` and `[::]`: 443 in `https`, 80 and the extra ports in
    /// `http`, 53 in `dns_udp`/`dns_tcp`. They are non-blocking and
    /// close-on-exec. The first call takes them; later calls return an
    /// empty set. Connections queue in their backlog until accepted.
    pub fn take_listeners(&mut self) -> EgressListeners {
        self.listeners.take().unwrap_or_default()
    }

    /// Host path of the agent's Unix socket (`/run/evershell/agent.sock`
    /// inside). The agent controls that directory and could put a symlink
    /// there: check the connected peer's uid (`SO_PEERCRED`) against the
    /// spec's uid before trusting the other end.
    pub fn agent_socket(&self) -> PathBuf {
        self.agent_socket.clone()
    }

    /// Host pid of the sandbox's init (PID 1 inside).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Kills every process of the sandbox with `SIGKILL` and returns once
    /// they are all gone and the init is reaped. Idempotent.
    pub fn kill(&mut self) {
        {
            let reaped = self.reaped.lock();
            if !*reaped {
                let pid = Pid::from_raw(i32::try_from(self.pid).expect("pids fit in pid_t"));
                // Killing PID 1 of the namespace makes the kernel kill all
                // the others before the init can be reaped.
                let _ = kill(pid, Signal::SIGKILL);
                debug!(workspace = %self.workspace_id, pid = self.pid, "sandbox killed");
            }
        }
        if let Some(keeper) = self.keeper.take() {
            // The keeper returns right after reaping; it never panics.
            let _ = keeper.join();
        }
    }

    /// Becomes `Some(code)` when the sandbox init exits: the command's exit
    /// code, or 128 + signal number (137 after [`Sandbox::kill`]).
    pub fn exit_watch(&self) -> watch::Receiver<Option<i32>> {
        self.exit.clone()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.kill();
    }
}
