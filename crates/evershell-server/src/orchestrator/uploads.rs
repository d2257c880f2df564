//! Files uploaded with a task land in the workspace at
//! `/data/uploads/<task_id>/<filename>`, owned by the sandbox user.

use std::os::unix::fs::chown;
use std::path::Path;

use bytes::Bytes;

/// Writes `files` (already sanitised names) below `data/uploads/<task_id>`.
pub fn store(
    data: &Path,
    uid: u32,
    task_id: &str,
    files: &[(String, Bytes)],
) -> std::io::Result<()> {
    let uploads = data.join("uploads");
    let dir = uploads.join(task_id);
    std::fs::create_dir_all(&dir)?;
    for path in [data, uploads.as_path(), dir.as_path()] {
        chown(path, Some(uid), Some(uid))?;
    }
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::write(&path, content)?;
        chown(&path, Some(uid), Some(uid))?;
    }
    Ok(())
}
