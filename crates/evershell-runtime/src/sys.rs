//! The crate's only `unsafe` code: the two libc calls whose soundness
//! depends on process state that the type system cannot see. Everything
//! else (namespaces, mounts, credentials) goes through nix's safe wrappers.

use std::fs;
use std::io;

use nix::sys::signal::{self, SigHandler, Signal};
use nix::unistd::ForkResult;

/// Forks the calling process, refusing unless it has exactly one thread.
///
/// Only sandbox-init forks, and it is documented to run before the CLI
/// creates any thread; the check turns a violation of that contract into an
/// error instead of a child that inherits another thread's held locks.
pub(crate) fn fork_single_threaded() -> io::Result<ForkResult> {
    let threads = fs::read_dir("/proc/self/task")?.count();
    if threads != 1 {
        return Err(io::Error::other(format!(
            "refusing to fork with {threads} threads"
        )));
    }
    // SAFETY: the process has a single thread (checked just above, and no
    // code of this process starts threads concurrently), so the child
    // starts with every lock and allocator state consistent and may run
    // arbitrary code before `execve`.
    Ok(unsafe { nix::unistd::fork() }?)
}

/// Restores the default action of `SIGPIPE`, which the Rust runtime sets to
/// ignore and which `execve` would otherwise pass on to the agent's command
/// (breaking pipelines such as `yes | head`).
pub(crate) fn restore_default_sigpipe() -> io::Result<()> {
    // SAFETY: installing `SIG_DFL` registers no handler code, so there is no
    // handler whose async-signal-safety could be violated, and the previous
    // disposition (`SIG_IGN`) is not a handler we need back.
    unsafe { signal::signal(Signal::SIGPIPE, SigHandler::SigDfl) }?;
    Ok(())
}
