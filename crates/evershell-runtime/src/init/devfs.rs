//! The sandbox's `/dev`: the harmless character devices, a private
//! pseudo-terminal instance, and a size-capped `/dev/shm`.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use nix::mount::MsFlags;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use super::rootfs::{mkdir, mount_fs};
use super::{step, SetupError};

/// Name, major and minor of each device node (Linux `devices.txt`).
const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Conventional links, all resolved through the sandbox's own `/proc`.
const LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Mounts a tmpfs on `dev` and fills it. Device nodes are created rather
/// than bound, so only the listed devices exist.
pub(super) fn populate(dev: &Path) -> Result<(), SetupError> {
    fs::create_dir_all(dev).map_err(step("create /dev"))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    mount_fs("tmpfs", dev, flags, "mode=0755,size=64k")?;

    for (name, major, minor) in DEVICES {
        let node = dev.join(name);
        let mode = Mode::from_bits_truncate(0o666);
        mknod(&node, SFlag::S_IFCHR, mode, makedev(major, minor))
            .map_err(step(format!("mknod /dev/{name}")))?;
        // mknod applies the umask; these nodes are for everyone.
        fs::set_permissions(&node, fs::Permissions::from_mode(0o666))
            .map_err(step(format!("chmod /dev/{name}")))?;
    }
    for (name, target) in LINKS {
        symlink(target, dev.join(name)).map_err(step(format!("link /dev/{name}")))?;
    }

    // A private devpts instance: the agent sees only its own terminals.
    mount_fs(
        "devpts",
        &mkdir(dev, "pts")?,
        flags,
        "newinstance,ptmxmode=0666,mode=0620",
    )?;
    let shm_flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount_fs(
        "tmpfs",
        &mkdir(dev, "shm")?,
        shm_flags,
        "mode=1777,size=64m",
    )
}
