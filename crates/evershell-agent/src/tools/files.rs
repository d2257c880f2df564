//! The file tools: `read_file`, `write_file`, `edit_file`, `list_files`. Paths
//! are taken as given (relative ones from the working directory): the sandbox
//! is the boundary, and `bash` can reach the same files anyway.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::AsyncReadExt;

/// The most directory entries `list_files` returns.
const LIST_LIMIT: usize = 1000;

/// How many leading bytes decide whether a file is text.
const SNIFF_BYTES: usize = 8192;

/// `path` resolved against `workdir` when relative.
pub fn resolve(workdir: &Path, path: &str) -> PathBuf {
    workdir.join(path)
}

/// The text of `bytes`, or `None` when they look binary (a NUL byte among
/// the first [`SNIFF_BYTES`], or invalid UTF-8). When `cut` is true the bytes
/// are a prefix, and a character split at the end is dropped, not a reason
/// to call the file binary.
pub fn decode_text(bytes: &[u8], cut: bool) -> Option<String> {
    if bytes[..bytes.len().min(SNIFF_BYTES)].contains(&0) {
        return None;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(text.to_owned()),
        Err(e) if cut && e.error_len().is_none() => {
            Some(String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned())
        }
        Err(_) => None,
    }
}

/// Reads at most `limit` bytes of `path`; returns them and the file's size.
pub async fn read_prefix(path: &Path, limit: usize) -> io::Result<(Vec<u8>, u64)> {
    let file = tokio::fs::File::open(path).await?;
    let size = file.metadata().await?.len();
    let mut bytes = Vec::with_capacity(limit.min(usize::try_from(size).unwrap_or(limit)));
    file.take(limit as u64).read_to_end(&mut bytes).await?;
    Ok((bytes, size))
}

/// `read_file`: the text, truncated at `limit` bytes with a marker.
pub async fn read_file(workdir: &Path, path: &str, limit: usize) -> Result<String, String> {
    let full = resolve(workdir, path);
    let (bytes, size) = read_prefix(&full, limit)
        .await
        .map_err(|e| failure(path, &e))?;
    let cut = (bytes.len() as u64) < size;
    let Some(mut text) = decode_text(&bytes, cut) else {
        return Err(format!(
            "{path}: binary file ({size} bytes); inspect it with bash"
        ));
    };
    if cut {
        text.push_str(&format!(
            "\n[... truncated: showed {} of {size} bytes; use bash (sed -n, tail) for the rest ...]",
            bytes.len()
        ));
    }
    Ok(text)
}

/// `write_file`: creates parent directories, replaces any existing content.
pub async fn write_file(workdir: &Path, path: &str, content: &str) -> Result<String, String> {
    let full = resolve(workdir, path);
    if let Some(parent) = full.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| failure(path, &e))?;
    }
    tokio::fs::write(&full, content)
        .await
        .map_err(|e| failure(path, &e))?;
    Ok(format!("wrote {} bytes to {path}", content.len()))
}

/// `edit_file`: replaces the single occurrence of `old` with `new`; fails,
/// changing nothing, when `old` occurs zero or several times.
pub async fn edit_file(workdir: &Path, path: &str, old: &str, new: &str) -> Result<String, String> {
    if old.is_empty() {
        return Err(format!("{path}: `old` must not be empty"));
    }
    let full = resolve(workdir, path);
    let text = tokio::fs::read_to_string(&full)
        .await
        .map_err(|e| failure(path, &e))?;
    let edited = replace_once(&text, old, new).map_err(|count| match count {
        0 => format!("{path}: `old` was not found; read the file and copy the text exactly"),
        _ => format!("{path}: `old` occurs more than once; include more context to make it unique"),
    })?;
    tokio::fs::write(&full, edited)
        .await
        .map_err(|e| failure(path, &e))?;
    Ok(format!("edited {path}"))
}

/// `text` with the only occurrence of `old` replaced; `Err(0)` when absent,
/// `Err(2)` when it occurs again (overlapping occurrences count).
fn replace_once(text: &str, old: &str, new: &str) -> Result<String, usize> {
    let first = text.find(old).ok_or(0usize)?;
    let step = old.chars().next().map_or(1, char::len_utf8);
    if text[first + step..].contains(old) {
        return Err(2);
    }
    let mut edited = String::with_capacity(text.len() + new.len());
    edited.push_str(&text[..first]);
    edited.push_str(new);
    edited.push_str(&text[first + old.len()..]);
    Ok(edited)
}

/// `list_files`: one entry a line, directories with a trailing `/`, symlinks
/// with their target, files with their size.
pub async fn list_files(workdir: &Path, path: &str) -> Result<String, String> {
    let full = resolve(workdir, path);
    let mut dir = tokio::fs::read_dir(&full)
        .await
        .map_err(|e| failure(path, &e))?;
    let mut lines = Vec::new();
    while let Some(entry) = dir.next_entry().await.map_err(|e| failure(path, &e))? {
        lines.push(describe(&entry).await);
    }
    lines.sort();
    let total = lines.len();
    lines.truncate(LIST_LIMIT);
    if total > LIST_LIMIT {
        lines.push(format!(
            "[... {} more entries; use bash (ls, find) ...]",
            total - LIST_LIMIT
        ));
    }
    if lines.is_empty() {
        return Ok(format!("{path}: empty directory"));
    }
    Ok(lines.join("\n"))
}

async fn describe(entry: &tokio::fs::DirEntry) -> String {
    let name = entry.file_name().to_string_lossy().into_owned();
    let Ok(kind) = entry.file_type().await else {
        return name;
    };
    if kind.is_dir() {
        format!("{name}/")
    } else if kind.is_symlink() {
        match tokio::fs::read_link(entry.path()).await {
            Ok(target) => format!("{name} -> {}", target.display()),
            Err(_) => format!("{name} -> ?"),
        }
    } else {
        let size = entry.metadata().await.map(|m| m.len()).unwrap_or(0);
        format!("{name} ({size} bytes)")
    }
}

fn failure(path: &str, error: &io::Error) -> String {
    format!("{path}: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_a_unique_occurrence_only() {
        assert_eq!(replace_once("a-b-c", "-b", "+B"), Ok("a+B-c".to_owned()));
        assert_eq!(replace_once("a-b-c", "x", "y"), Err(0));
        assert_eq!(replace_once("a-b-b", "-b", "y"), Err(2));
    }

    #[test]
    fn counts_overlapping_occurrences_as_ambiguous() {
        assert_eq!(replace_once("aaa", "aa", "b"), Err(2));
        assert_eq!(replace_once("ééx", "éx", "e"), Ok("ée".to_owned()));
    }

    #[test]
    fn text_detection_tolerates_a_cut_character_but_not_nul_or_invalid_bytes() {
        let cut = &"héllo".as_bytes()[..2];
        assert_eq!(decode_text(cut, true), Some("h".to_owned()));
        assert_eq!(decode_text(cut, false), None);
        assert_eq!(decode_text(b"a\0b", false), None);
        assert_eq!(decode_text(&[0xff, b'a'], true), None);
    }
}
