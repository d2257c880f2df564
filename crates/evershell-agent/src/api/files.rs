//! `GET /files`, `/files/content`, `/files/raw`: live reads of the sandbox
//! filesystem. Paths are absolute or relative to the working directory; any
//! `..` component is refused, so what is read is what the path names. The
//! sandbox itself is the boundary: the agent sees only its own filesystem.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use evershell_core::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::io::ReaderStream;

use super::ApiError;
use crate::context::Ctx;
use crate::tools::files::{decode_text, read_prefix};

/// `max_bytes` of `/files/content` when absent.
const DEFAULT_MAX_BYTES: usize = 512 * 1024;

/// The largest `max_bytes` honoured.
const MAX_MAX_BYTES: usize = 16 * 1024 * 1024;

/// The most entries one listing returns (`truncated` tells when there were
/// more).
const LIST_LIMIT: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Default: the working directory.
    #[serde(default)]
    path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentQuery {
    path: String,
    #[serde(default)]
    max_bytes: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuery {
    path: String,
}

/// `{path, entries: [{name, kind, size, mode, modified}], truncated}`,
/// entries sorted by name; `kind` is `file`, `dir`, `symlink` or `other`.
pub async fn list(
    State(ctx): State<Arc<Ctx>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|r| ApiError::validation(r.body_text()))?;
    let path = match query.path.as_deref() {
        None | Some("") => ctx.config.workdir.clone(),
        Some(raw) => locate(&ctx.config.workdir, raw)?,
    };
    let mut dir = tokio::fs::read_dir(&path)
        .await
        .map_err(|e| io_error(&path, &e))?;
    let mut entries = Vec::new();
    while let Some(entry) = dir.next_entry().await.map_err(|e| io_error(&path, &e))? {
        entries.push(describe(&entry).await);
    }
    entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let truncated = entries.len() > LIST_LIMIT;
    entries.truncate(LIST_LIMIT);
    Ok(Json(
        json!({"path": path, "entries": entries, "truncated": truncated}),
    ))
}

/// `{path, size, truncated, binary, content}`: the first `max_bytes` as text,
/// `content: null` when the file is binary.
pub async fn content(
    State(ctx): State<Arc<Ctx>>,
    query: Result<Query<ContentQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|r| ApiError::validation(r.body_text()))?;
    let path = locate(&ctx.config.workdir, &query.path)?;
    let max_bytes = query
        .max_bytes
        .unwrap_or(DEFAULT_MAX_BYTES)
        .min(MAX_MAX_BYTES);
    if tokio::fs::metadata(&path)
        .await
        .map_err(|e| io_error(&path, &e))?
        .is_dir()
    {
        return Err(ApiError::validation("path is a directory"));
    }
    let (bytes, size) = read_prefix(&path, max_bytes)
        .await
        .map_err(|e| io_error(&path, &e))?;
    let truncated = (bytes.len() as u64) < size;
    let text = decode_text(&bytes, truncated);
    Ok(Json(json!({
        "path": path,
        "size": size,
        "truncated": truncated,
        "binary": text.is_none(),
        "content": text,
    })))
}

/// The file's bytes, streamed as `application/octet-stream`.
pub async fn raw(
    State(ctx): State<Arc<Ctx>>,
    query: Result<Query<RawQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|r| ApiError::validation(r.body_text()))?;
    let path = locate(&ctx.config.workdir, &query.path)?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| io_error(&path, &e))?;
    let metadata = file.metadata().await.map_err(|e| io_error(&path, &e))?;
    if metadata.is_dir() {
        return Err(ApiError::validation("path is a directory"));
    }
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
        (header::CONTENT_LENGTH, metadata.len().to_string()),
    ];
    Ok((headers, Body::from_stream(ReaderStream::new(file))).into_response())
}

/// `raw` resolved against `workdir`; refuses empty paths and `..`.
fn locate(workdir: &Path, raw: &str) -> Result<PathBuf, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::validation("path must not be empty"));
    }
    let path = Path::new(raw);
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(ApiError::validation("path must not contain `..`"));
    }
    Ok(workdir.join(path))
}

async fn describe(entry: &tokio::fs::DirEntry) -> Value {
    let name = entry.file_name().to_string_lossy().into_owned();
    let Ok(metadata) = tokio::fs::symlink_metadata(entry.path()).await else {
        return json!({"name": name, "kind": "other", "size": null, "mode": null, "modified": null});
    };
    let kind = match metadata.file_type() {
        t if t.is_dir() => "dir",
        t if t.is_file() => "file",
        t if t.is_symlink() => "symlink",
        _ => "other",
    };
    let modified = metadata
        .modified()
        .ok()
        .map(|t| DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Micros, true));
    json!({
        "name": name,
        "kind": kind,
        "size": metadata.len(),
        "mode": format!("{:o}", metadata.permissions().mode() & 0o7777),
        "modified": modified,
    })
}

fn io_error(path: &Path, error: &io::Error) -> ApiError {
    match error.kind() {
        io::ErrorKind::NotFound => ApiError::new(ErrorCode::NotFound, "no such file or directory"),
        io::ErrorKind::PermissionDenied => ApiError::new(
            ErrorCode::PermissionDenied,
            "the agent may not read this path",
        ),
        io::ErrorKind::NotADirectory => ApiError::validation("path is not a directory"),
        _ => {
            tracing::warn!(path = %path.display(), %error, "file read failed");
            ApiError::internal()
        }
    }
}
