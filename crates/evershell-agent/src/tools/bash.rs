//! The `bash` tool: one command run by `bash -c` in the working directory, in
//! its own process group so that a timeout or a cancellation reaches every
//! process it started: SIGTERM to the group, then SIGKILL after
//! [`KILL_GRACE`]. Stdout and stderr share one pipe, so the model reads them
//! interleaved as a terminal would show them.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::output::BoundedOutput;

/// How long a terminated process group has between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// How long output is still collected after `bash` exited, from background
/// processes that keep the pipe open; they are not waited for.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(250);

/// How one run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Exited,
    TimedOut,
    Cancelled,
}

/// The result of one command.
#[derive(Debug)]
pub struct BashRun {
    /// The exit status, or 128 + the signal number when a signal ended it
    /// (the shell's convention).
    pub exit_code: i32,
    pub ending: Ending,
    pub output: BoundedOutput,
}

/// The running command's process group. Dropping it while armed (the task was
/// aborted mid-command) kills the group, so no tool process outlives its task
/// unnoticed.
struct Group {
    pgid: Pid,
    armed: bool,
}

/// Runs `command` until it exits, `timeout` passes, or `cancel` fires.
pub async fn run(
    command: &str,
    workdir: &Path,
    timeout: Duration,
    limit: usize,
    cancel: &CancellationToken,
) -> io::Result<BashRun> {
    let (reader, writer) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(command)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer.try_clone()?))
        .stderr(Stdio::from(writer))
        .process_group(0)
        .spawn()?;
    // `spawn` consumed the command; the parent holds no write end any more,
    // so the pipe reaches end-of-file once every child has closed it.
    let pid = child.id().expect("a just-spawned child has a pid");
    let mut group = Group {
        pgid: Pid::from_raw(i32::try_from(pid).expect("pids fit in i32")),
        armed: true,
    };
    let mut reader = pipe::Receiver::from_owned_fd(reader)?;
    let mut output = BoundedOutput::new(limit);

    let (status, ending) = supervise(
        &mut child,
        &mut reader,
        &mut output,
        &group,
        timeout,
        cancel,
    )
    .await?;
    drain(&mut reader, &mut output).await;
    if ending != Ending::Exited {
        group.sigkill_later();
    }
    group.armed = false;

    Ok(BashRun {
        exit_code: exit_code(status),
        ending,
        output,
    })
}

/// Reads output while waiting for `bash` to exit, terminating the group on
/// timeout or cancellation.
async fn supervise(
    child: &mut Child,
    reader: &mut pipe::Receiver,
    output: &mut BoundedOutput,
    group: &Group,
    timeout: Duration,
    cancel: &CancellationToken,
) -> io::Result<(ExitStatus, Ending)> {
    let deadline = Instant::now() + timeout;
    let mut ending = Ending::Exited;
    let mut kill_at: Option<Instant> = None;
    let mut buf = vec![0u8; 16 * 1024];
    let mut open = true;
    loop {
        tokio::select! {
            read = reader.read(&mut buf), if open => match read {
                Ok(0) | Err(_) => open = false,
                Ok(n) => output.push(&buf[..n]),
            },
            status = child.wait() => return Ok((status?, ending)),
            () = sleep_until(deadline), if kill_at.is_none() => {
                ending = Ending::TimedOut;
                kill_at = Some(group.terminate());
            }
            () = cancel.cancelled(), if kill_at.is_none() => {
                ending = Ending::Cancelled;
                kill_at = Some(group.terminate());
            }
            () = sleep_until(kill_at.unwrap_or(deadline)), if kill_at.is_some() => {
                group.signal(Signal::SIGKILL);
                kill_at = Some(Instant::now() + KILL_GRACE);
            }
        }
    }
}

/// Collects what is left in the pipe, for at most [`DRAIN_AFTER_EXIT`].
async fn drain(reader: &mut pipe::Receiver, output: &mut BoundedOutput) {
    let deadline = Instant::now() + DRAIN_AFTER_EXIT;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            read = reader.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => output.push(&buf[..n]),
            },
            () = sleep_until(deadline) => return,
        }
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

impl Group {
    /// Sends SIGTERM and returns when SIGKILL is due.
    fn terminate(&self) -> Instant {
        tracing::debug!(pgid = self.pgid.as_raw(), "terminating tool process group");
        self.signal(Signal::SIGTERM);
        Instant::now() + KILL_GRACE
    }

    fn signal(&self, signal: Signal) {
        // ESRCH means the group is already gone, which is what we want.
        if let Err(error) = killpg(self.pgid, signal) {
            tracing::trace!(pgid = self.pgid.as_raw(), %error, "signal not delivered");
        }
    }

    /// `bash` is gone, but a process it started may ignore SIGTERM: it gets
    /// SIGKILL when the grace period ends, without holding up the task.
    fn sigkill_later(&self) {
        let pgid = self.pgid;
        tokio::spawn(async move {
            tokio::time::sleep(KILL_GRACE).await;
            let _ = killpg(pgid, Signal::SIGKILL);
        });
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if self.armed {
            self.signal(Signal::SIGKILL);
        }
    }
}
