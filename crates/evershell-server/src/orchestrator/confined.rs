//! File access inside a workspace's directories from the host side. The
//! agent owns everything below a workspace's `data` directory and may plant
//! symbolic links there, so the control plane (running as root) never
//! follows one: every path component is opened relative to its parent with
//! `O_NOFOLLOW`, starting from the directory the runtime created.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{fchown, mkdirat, openat, Gid, Mode, OFlags, Uid};
use rustix::io::Errno;

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// Opens the directory `name` inside `parent`, creating it (owned by `uid`)
/// when missing. A symbolic link or non-directory there is an error.
fn subdir(parent: &OwnedFd, name: &str, uid: u32) -> std::io::Result<OwnedFd> {
    match mkdirat(parent, name, Mode::from_raw_mode(0o755)) {
        Ok(()) => {
            let dir = openat(parent, name, dir_flags(), Mode::empty())?;
            fchown(&dir, Some(Uid::from_raw(uid)), Some(Gid::from_raw(uid)))?;
            Ok(dir)
        }
        Err(Errno::EXIST) => Ok(openat(parent, name, dir_flags(), Mode::empty())?),
        Err(e) => Err(e.into()),
    }
}

/// Writes `files` to `data/uploads/<task_id>/<name>`, owned by `uid`,
/// without following any link the agent placed. Names are already plain
/// file names; an existing file of the same name is an error.
pub fn store_uploads(
    data: &Path,
    uid: u32,
    task_id: &str,
    files: &[(String, bytes::Bytes)],
) -> std::io::Result<()> {
    // Before the first sandbox starts, the data directory does not exist
    // yet; its parents belong to the runtime, never to the agent.
    if !data.exists() {
        std::fs::create_dir_all(data)?;
        std::os::unix::fs::chown(data, Some(uid), Some(uid))?;
    }
    let root = openat(rustix::fs::CWD, data, dir_flags(), Mode::empty())?;
    let uploads = subdir(&root, "uploads", uid)?;
    let task = subdir(&uploads, task_id, uid)?;
    for (name, content) in files {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = openat(&task, name.as_str(), flags, Mode::from_raw_mode(0o644))?;
        fchown(&fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(uid)))?;
        File::from(fd).write_all(content)?;
    }
    Ok(())
}

/// Reads at most `limit` bytes of the regular file `data/<relative>`
/// without following any link and without blocking on a FIFO or device
/// the agent may have put there; `Ok(None)` when the file does not exist.
pub fn read_file(data: &Path, relative: &[&str], limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut dir = openat(rustix::fs::CWD, data, dir_flags(), Mode::empty())?;
    let Some((file, parents)) = relative.split_last() else {
        return Ok(None);
    };
    for name in parents {
        dir = match openat(&dir, *name, dir_flags(), Mode::empty()) {
            Ok(next) => next,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = match openat(&dir, *file, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let kind = rustix::fs::FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode);
    if kind != rustix::fs::FileType::RegularFile {
        return Err(std::io::Error::other(format!(
            "not a regular file ({kind:?})"
        )));
    }
    let mut out = Vec::new();
    File::from(fd).take(limit).read_to_end(&mut out)?;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_refuse_a_planted_symlink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, data.join("uploads")).unwrap();
        let files = vec![("x.txt".to_string(), bytes::Bytes::from_static(b"hi"))];
        let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(dir.path()).unwrap());
        assert!(store_uploads(&data, uid, "task_1", &files).is_err());
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "nothing written through the link"
        );
    }

    #[test]
    fn uploads_land_in_a_task_directory_and_reads_do_not_follow_links() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("ws_1/data");
        let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(dir.path()).unwrap());
        let files = vec![("x.txt".to_string(), bytes::Bytes::from_static(b"hi"))];
        store_uploads(&data, uid, "task_1", &files).unwrap();
        assert_eq!(
            std::fs::read(data.join("uploads/task_1/x.txt")).unwrap(),
            b"hi"
        );
        assert_eq!(
            read_file(&data, &["uploads", "task_1", "x.txt"], 1)
                .unwrap()
                .unwrap(),
            b"h"
        );
        std::os::unix::fs::symlink("/etc/hostname", data.join("leak")).unwrap();
        assert!(read_file(&data, &["leak"], 100).is_err());
        assert!(read_file(&data, &["missing", "file"], 100)
            .unwrap()
            .is_none());
        let fifo = data.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert!(
            read_file(&data, &["fifo"], 100).is_err(),
            "a FIFO is refused, not waited on"
        );
    }
}
