//! The sandbox's root filesystem: a tmpfs holding the host's `/usr`
//! (read-only) and its `/bin`-style links, a generated `/etc`, the
//! workspace's own directories, the evershell binary, a minimal `/dev` and
//! a fresh `/proc`. The process pivots into it and detaches the host root,
//! so nothing else of the host stays reachable.

use std::fs::{self, File};
use std::os::unix::fs::symlink;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::unistd::{chdir, pivot_root};

use super::{devfs, etc, step, SetupError};
use crate::plan::InitPlan;

/// Top-level host names that merged-/usr systems make links into `/usr`.
const USR_LINKS: [&str; 6] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Where the evershell binary appears inside.
const TOOL_PATH: &str = ".evershell/bin/evershell";

/// Mount-point permissions of a bind: read-only or writable; both are
/// `nosuid` and `nodev`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadOnly,
    Writable,
}

/// Builds the new root and pivots into it. On return `/` is the new root,
/// read-only, and the host root is detached.
pub(super) fn build(plan: &InitPlan) -> Result<(), SetupError> {
    // Nothing mounted from here on may propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(step("make mounts private"))?;

    let root = plan.paths.rootfs();
    mount_fs(
        "tmpfs",
        &root,
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        "mode=0755,size=16m",
    )?;
    system_dirs(&root)?;
    etc::write(&root.join("etc"), plan)?;
    workspace_dirs(&root, plan)?;
    tool(&root, &plan.exe)?;
    devfs::populate(&root.join("dev"))?;
    let proc_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_fs("proc", &mkdir(&root, "proc")?, proc_flags, "")?;

    pivot_into(&root)?;
    remount("/", Access::ReadOnly).map_err(step("make / read-only"))
}

/// Host `/usr` read-only, and the top-level links (or, on systems without
/// merged /usr, directories) that point into it.
fn system_dirs(root: &Path) -> Result<(), SetupError> {
    bind(Path::new("/usr"), &mkdir(root, "usr")?, Access::ReadOnly)?;
    for name in USR_LINKS {
        let host = Path::new("/").join(name);
        let Ok(meta) = fs::symlink_metadata(&host) else {
            continue;
        };
        if meta.is_symlink() {
            let target = fs::read_link(&host).map_err(step(format!("read link {name}")))?;
            symlink(target, root.join(name)).map_err(step(format!("link /{name}")))?;
        } else if meta.is_dir() {
            bind(&host, &mkdir(root, name)?, Access::ReadOnly)?;
        }
    }
    Ok(())
}

/// The agent's writable directories, and the run-time directories above
/// them.
fn workspace_dirs(root: &Path, plan: &InitPlan) -> Result<(), SetupError> {
    for (host, inside) in plan.paths.owned_dirs() {
        bind(host, &mkdir(root, inside)?, Access::Writable)?;
    }
    Ok(())
}

fn tool(root: &Path, exe: &Path) -> Result<(), SetupError> {
    let target = root.join(TOOL_PATH);
    let dir = target.parent().expect("the tool path has a directory");
    fs::create_dir_all(dir).map_err(step("create /.evershell/bin"))?;
    File::create(&target).map_err(step("create tool mount point"))?;
    bind(exe, &target, Access::ReadOnly)
}

fn pivot_into(root: &Path) -> Result<(), SetupError> {
    chdir(root).map_err(step("enter new root"))?;
    // With both arguments ".", the old root ends up stacked on the new one
    // and a lazy unmount of "." detaches it, without a directory for it.
    pivot_root(".", ".").map_err(step("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(step("detach host root"))?;
    chdir("/").map_err(step("enter /"))?;
    Ok(())
}

/// Creates `root/rel` (and parents) and returns its path.
pub(super) fn mkdir(root: &Path, rel: &str) -> Result<std::path::PathBuf, SetupError> {
    let dir = root.join(rel);
    fs::create_dir_all(&dir).map_err(step(format!("create /{rel}")))?;
    Ok(dir)
}

/// Mounts a fresh filesystem of `fstype` at `target`.
pub(super) fn mount_fs(
    fstype: &str,
    target: &Path,
    flags: MsFlags,
    data: &str,
) -> Result<(), SetupError> {
    let data = (!data.is_empty()).then_some(data);
    mount(Some(fstype), target, Some(fstype), flags, data)
        .map_err(step(format!("mount {fstype} on {}", target.display())))
}

/// Binds `src` (with its submounts) on `target`, then sets the bind's own
/// flags: the first mount call ignores them.
fn bind(src: &Path, target: &Path, access: Access) -> Result<(), SetupError> {
    let what = || format!("bind {} on {}", src.display(), target.display());
    mount(
        Some(src),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(step(what()))?;
    remount(target, access).map_err(step(what()))
}

fn remount(target: impl AsRef<Path>, access: Access) -> nix::Result<()> {
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID;
    flags |= MsFlags::MS_NODEV;
    if access == Access::ReadOnly {
        flags |= MsFlags::MS_RDONLY;
    }
    mount(
        None::<&str>,
        target.as_ref(),
        None::<&str>,
        flags,
        None::<&str>,
    )
}
