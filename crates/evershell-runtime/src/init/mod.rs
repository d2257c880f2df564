//! sandbox-init: PID 1 of a sandbox. Spawned by the keeper thread as root,
//! already inside the workspace's network and PID namespaces, it reads its
//! plan from stdin, builds the sandbox (mount, UTS, IPC and cgroup
//! namespaces, a new root filesystem, limits), becomes the agent user in a
//! user namespace of its own, reports `ready` on stdout, then runs the
//! command and reaps orphans until the command exits.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;

use nix::sched::CloneFlags;
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{dup2, getpid, sethostname};

use crate::plan::{InitPlan, Status};

mod command;
mod devfs;
mod etc;
mod identity;
mod rootfs;
mod supervise;

/// Largest plan accepted on stdin.
const MAX_PLAN_BYTES: u64 = 16 << 20;

/// A setup step that failed, and why. Reported to the server as one line.
#[derive(Debug, thiserror::Error)]
#[error("{step}")]
pub(crate) struct SetupError {
    step: String,
    #[source]
    source: io::Error,
}

/// Entry of the hidden `evershell sandbox-init --workspace <id>` subcommand.
///
/// `args` may start with the program name and `sandbox-init`; the rest must
/// be `--workspace <id>`, matching the plan. Must be called before the
/// process starts any thread or async runtime. Runs the sandbox and returns
/// the exit code for the process: the command's own, or 1 when setup fails
/// (after reporting the reason on stdout).
pub fn sandbox_init_main(args: Vec<String>) -> i32 {
    // Die with the keeper thread that spawned us, from the first moment.
    if prctl::set_pdeathsig(Signal::SIGKILL).is_err() {
        return 1;
    }
    match setup(&args) {
        Ok(command) => supervise::run(command),
        Err(e) => {
            let reason = format!("{e}: {}", e.source);
            // If the server is gone there is nobody left to tell.
            let _ = report(&Status::Failed(reason));
            1
        }
    }
}

/// Every step before the command starts, in order. Returns the prepared
/// command once `ready` has been reported.
fn setup(args: &[String]) -> Result<command::Prepared, SetupError> {
    umask(Mode::from_bits_truncate(0o022));
    close_inherited_fds();
    let plan = read_plan()?;
    check_invocation(args, &plan)?;
    if getpid().as_raw() != 1 {
        return Err(step("sandbox-init must be PID 1")(io::Error::other(
            "wrong pid namespace",
        )));
    }

    let namespaces = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP;
    nix::sched::unshare(namespaces).map_err(step("unshare namespaces"))?;
    sethostname(&plan.hostname).map_err(step("sethostname"))?;
    rootfs::build(&plan)?;

    identity::apply_limits(&plan.limits)?;
    identity::become_agent(plan.uid)?;
    let command = command::prepare(&plan)?;

    report(&Status::Ready).map_err(step("report ready"))?;
    // From now on stdout is the console, like stderr.
    dup2(2, 1).map_err(step("redirect stdout"))?;
    Ok(command)
}

/// Maps an error into a [`SetupError`] for `step`.
pub(crate) fn step<E: Into<io::Error>>(step: impl Into<String>) -> impl FnOnce(E) -> SetupError {
    let step = step.into();
    move |e| SetupError {
        step,
        source: e.into(),
    }
}

fn read_plan() -> Result<InitPlan, SetupError> {
    let mut raw = Vec::new();
    io::stdin()
        .lock()
        .take(MAX_PLAN_BYTES)
        .read_to_end(&mut raw)
        .map_err(step("read plan"))?;
    let plan = serde_json::from_slice(&raw).map_err(step("parse plan"))?;

    // The command must not read what is left of the server's pipe.
    let null = File::open("/dev/null").map_err(step("open /dev/null"))?;
    dup2(null.as_raw_fd(), 0).map_err(step("redirect stdin"))?;
    Ok(plan)
}

/// `--workspace` names the sandbox in host process listings; it must agree
/// with the plan so that listing never lies.
fn check_invocation(args: &[String], plan: &InitPlan) -> Result<(), SetupError> {
    let start = args
        .iter()
        .position(|a| a == "sandbox-init")
        .map_or(0, |i| i + 1);
    match &args[start..] {
        [flag, id] if flag == "--workspace" && *id == plan.workspace_id => Ok(()),
        _ => Err(step("check arguments")(io::Error::other(
            "expected `sandbox-init --workspace <id of the plan>`",
        ))),
    }
}

/// Closes every descriptor but stdin, stdout and stderr, whatever the
/// spawner leaked: nothing of the server may reach the sandbox.
fn close_inherited_fds() {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // Nothing owns these yet (the directory's own descriptor is already
        // closed and fails with EBADF, which is fine).
        let _ = nix::unistd::close(fd);
    }
}

fn report(status: &Status) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(status.encode().as_bytes())?;
    out.flush()
}
