//! Who the sandbox runs as: resource limits set while still root, then the
//! host uid, then a user namespace that maps that uid to the agent's 1000.
//! That namespace owns none of the sandbox's other namespaces, so inside
//! it the agent cannot mount, change routes or bind privileged ports.

use std::fs;

use nix::sched::CloneFlags;
use nix::sys::prctl;
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::Signal;
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};

use super::{step, SetupError};
use crate::config::{Limits, AGENT_ID};

/// Sets hard and soft limits; inherited by every process of the sandbox.
/// Core dumps are disabled: they would land in the agent's directories.
pub(super) fn apply_limits(limits: &Limits) -> Result<(), SetupError> {
    let all = [
        (Resource::RLIMIT_NPROC, limits.max_processes, "RLIMIT_NPROC"),
        (
            Resource::RLIMIT_NOFILE,
            limits.max_open_files,
            "RLIMIT_NOFILE",
        ),
        (
            Resource::RLIMIT_AS,
            limits.max_address_space_bytes,
            "RLIMIT_AS",
        ),
        (Resource::RLIMIT_CORE, 0, "RLIMIT_CORE"),
    ];
    for (resource, value, name) in all {
        setrlimit(resource, value, value).map_err(step(format!("set {name}")))?;
    }
    Ok(())
}

/// Drops root for `host_uid` (and the same gid, no supplementary groups),
/// then enters a new user namespace where that id is 1000. Also sets
/// no-new-privileges and re-arms the parent-death signal, which the kernel
/// clears on every credential change.
pub(super) fn become_agent(host_uid: u32) -> Result<(), SetupError> {
    let uid = Uid::from_raw(host_uid);
    let gid = Gid::from_raw(host_uid);
    setgroups(&[]).map_err(step("setgroups"))?;
    setresgid(gid, gid, gid).map_err(step("setresgid"))?;
    setresuid(uid, uid, uid).map_err(step("setresuid"))?;
    // Changing uid made the process non-dumpable, which leaves its
    // /proc/self files owned by root and the id maps unwritable.
    prctl::set_dumpable(true).map_err(step("set dumpable"))?;

    nix::sched::unshare(CloneFlags::CLONE_NEWUSER).map_err(step("unshare user namespace"))?;
    // An unprivileged writer must deny setgroups before writing gid_map
    // (user_namespaces(7)).
    fs::write("/proc/self/setgroups", "deny").map_err(step("deny setgroups"))?;
    fs::write("/proc/self/uid_map", format!("{AGENT_ID} {host_uid} 1\n"))
        .map_err(step("write uid_map"))?;
    fs::write("/proc/self/gid_map", format!("{AGENT_ID} {host_uid} 1\n"))
        .map_err(step("write gid_map"))?;

    prctl::set_no_new_privs().map_err(step("set no_new_privs"))?;
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(step("set parent death signal"))
}
