//! PID 1's last job: start the command, reap every orphan that the
//! namespace hands to it, and exit with the command's status. When PID 1
//! exits the kernel kills whatever is left in the namespace.

use std::io;

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{chdir, execve, setsid, ForkResult, Pid};

use super::command::Prepared;
use crate::sys;

/// Forks the command and reaps until it exits. Returns the process exit
/// code: the command's, 128 + signal if a signal ended it, 127 if it could
/// not be executed, 1 if it could not be started at all.
pub(super) fn run(command: Prepared) -> i32 {
    match sys::fork_single_threaded() {
        Ok(ForkResult::Child) => exec(&command),
        Ok(ForkResult::Parent { child }) => reap_until(child),
        Err(e) => {
            eprintln!("sandbox-init: cannot start command: {e}");
            1
        }
    }
}

/// In the forked child: a new session, default signal state, cwd
/// `/workspace`, then `execve`. Never returns.
fn exec(command: &Prepared) -> ! {
    let result = prepare_child().and_then(|()| {
        execve(&command.program, &command.argv, &command.envp)?;
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("sandbox-init: exec {:?}: {e}", command.program);
    }
    std::process::exit(127)
}

fn prepare_child() -> io::Result<()> {
    setsid()?;
    sys::restore_default_sigpipe()?;
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    chdir("/workspace")?;
    Ok(())
}

fn reap_until(main: Pid) -> i32 {
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == main => return code,
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == main => return 128 + signal as i32,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => {
                eprintln!("sandbox-init: wait: {e}");
                return 1;
            }
        }
    }
}
