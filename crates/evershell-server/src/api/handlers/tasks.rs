//! Tasks: submitting (JSON or multipart with `file` parts), reading and
//! cancelling.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::Json;
use bytes::Bytes;
use evershell_core::model::{AgentRole, Task};
use evershell_core::{ErrorCode, Scope};
use evershell_store::DocTable;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::roles::{ENVIRONMENTS, THINKING_EFFORTS};
use super::workspaces::load;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::{ApiJson, ApiPath};
use crate::api::openapi::describe::{DescribeInput, Operation, Schemas};
use crate::api::respond::Accepted;
use crate::api::validate::Fields;
use crate::Ctx;

/// The fields of a task submission, from JSON or multipart form fields.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    #[serde(default)]
    pub role_name: Option<String>,
    #[serde(default)]
    pub role_id: Option<String>,
    pub description: String,
    #[serde(default)]
    pub metadata: serde_json::Map<String, Value>,
    #[serde(default)]
    pub thinking_effort: Option<String>,
    #[serde(default)]
    pub max_continuations: Option<u32>,
    #[serde(default)]
    pub max_context_tokens: Option<u64>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub reset_session: bool,
    /// Uploaded files: sanitised name and content.
    #[serde(skip)]
    pub files: Vec<(String, Bytes)>,
}

impl Submission {
    fn validate(&self, first_task: bool) -> ApiResult<()> {
        let mut fields = Fields::default();
        fields.non_empty("description", &self.description);
        fields.max_len("description", &self.description, 256 * 1024);
        if let Some(effort) = &self.thinking_effort {
            fields.one_of("thinking_effort", effort, THINKING_EFFORTS);
        }
        if self.max_continuations == Some(0) {
            fields.add("max_continuations", "must be at least 1");
        }
        match &self.environment {
            Some(_) if !first_task => fields.add("environment", "only the first task may set it"),
            Some(env) => fields.one_of("environment", env, ENVIRONMENTS),
            None => {}
        }
        fields.into_result()
    }
}

/// The body of a task submission, read by the handler once it knows the
/// workspace (so that an unknown workspace is a `404` whatever the body):
/// a JSON [`Submission`], or a multipart form whose `file` parts are
/// uploads and whose other parts are the submission's fields as text.
pub struct SubmissionBody(Request);

/// `{"task_id", "workspace_id", "status"}` of a queued task.
#[derive(Serialize, JsonSchema)]
pub struct Submitted {
    pub task_id: String,
    pub workspace_id: String,
    /// `submitted`.
    pub status: String,
}

/// `{"task_id", "status": "cancelling"}`.
#[derive(Serialize, JsonSchema)]
pub struct Cancelling {
    pub task_id: String,
    pub status: &'static str,
}

impl<S: Send + Sync> FromRequest<S> for SubmissionBody {
    type Rejection = Infallible;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(SubmissionBody(req))
    }
}

impl SubmissionBody {
    pub async fn read(self, ctx: &Arc<Ctx>) -> ApiResult<Submission> {
        read_submission(ctx, self.0).await
    }
}

impl DescribeInput for SubmissionBody {
    fn describe(op: &mut Operation, schemas: &mut Schemas) {
        op.body
            .push(("application/json", schemas.request::<Submission>()));
        let mut form = schemas.request_inline::<Submission>();
        form["properties"]["file"] = json!({
            "type": "array",
            "items": { "type": "string", "contentMediaType": "application/octet-stream" },
            "description": "uploads, stored at /data/uploads/<task_id>/<file name>",
        });
        op.body.push(("multipart/form-data", form));
    }
}

/// Multipart fields whose text is JSON rather than a string.
const JSON_FORM_FIELDS: &[&str] = &[
    "metadata",
    "max_continuations",
    "max_context_tokens",
    "reset_session",
];

/// Reads a submission from a JSON body or a multipart form whose `file`
/// parts are uploads and whose other parts are the JSON fields as text.
async fn read_submission(ctx: &Arc<Ctx>, request: Request) -> ApiResult<Submission> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if !content_type.starts_with("multipart/form-data") {
        let ApiJson(submission) = ApiJson::<Submission>::from_request(request, ctx).await?;
        return Ok(submission);
    }
    let limit = ctx.config.body_limit_bytes;
    let too_large = |e| multipart_error(e, limit);
    let mut multipart = Multipart::from_request(request, ctx)
        .await
        .map_err(|e| ApiError::field("body", e.body_text()))?;
    let mut object = serde_json::Map::new();
    let mut files = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(too_large)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            let filename = sanitize_filename(field.file_name().unwrap_or_default())
                .ok_or_else(|| ApiError::field("file", "file part needs a plain file name"))?;
            files.push((filename, field.bytes().await.map_err(too_large)?));
            continue;
        }
        let text = field.text().await.map_err(too_large)?;
        // Non-string fields (numbers, booleans, metadata) arrive as JSON
        // text; every other field is taken as the text it is.
        let value = if JSON_FORM_FIELDS.contains(&name.as_str()) {
            serde_json::from_str(&text).map_err(|_| ApiError::field(&name, "must be JSON"))?
        } else {
            Value::String(text)
        };
        object.insert(name, value);
    }
    let mut submission: Submission = serde_json::from_value(Value::Object(object))
        .map_err(|e| ApiError::field("body", e.to_string()))?;
    submission.files = files;
    Ok(submission)
}

fn multipart_error(e: axum::extract::multipart::MultipartError, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::payload_too_large(limit);
    }
    ApiError::field("body", e.body_text())
}

/// The last path component of `raw`, without control characters; `None`
/// when nothing usable is left.
pub fn sanitize_filename(raw: &str) -> Option<String> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = base.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim().to_string();
    (!clean.is_empty() && clean != "." && clean != ".." && clean.len() <= 255).then_some(clean)
}

pub async fn submit_new(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    body: SubmissionBody,
) -> ApiResult<Accepted<Submitted>> {
    let submission = body.read(&ctx).await?;
    submission.validate(true)?;
    let key = submission
        .role_name
        .clone()
        .or_else(|| submission.role_id.clone());
    let Some(key) = key else {
        return Err(ApiError::field(
            "role_name",
            "role_name or role_id is required",
        ));
    };
    let role: Option<AgentRole> = ctx
        .store
        .get_doc(DocTable::AgentRoles, &caller.org_id, &key)
        .await?;
    let role = role
        .filter(|r| r.archived_at.is_none())
        .ok_or_else(|| ApiError::not_found(ErrorCode::RoleNotFound, "agent role"))?;
    let (ws, task) = ctx
        .orchestrator
        .submit_new(&caller, role, submission)
        .await?;
    Ok(Accepted(Submitted {
        task_id: task.id,
        workspace_id: ws.id,
        status: task.status,
    }))
}

pub async fn submit_follow_up(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    body: SubmissionBody,
) -> ApiResult<Accepted<Submitted>> {
    let ws = load(&ctx, &caller, &id, Scope::TasksWrite).await?;
    let submission = body.read(&ctx).await?;
    submission.validate(false)?;
    let task = ctx
        .orchestrator
        .submit_follow_up(&caller, &ws, submission)
        .await?;
    Ok(Accepted(Submitted {
        task_id: task.id,
        workspace_id: ws.id,
        status: task.status,
    }))
}

pub async fn list(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<Task>>> {
    let ws = load(&ctx, &caller, &id, Scope::WorkspaceRead).await?;
    Ok(Json(ctx.store.list_tasks(&ws.id).await?))
}

pub async fn get_one(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath((id, task_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Task>> {
    let ws = load(&ctx, &caller, &id, Scope::WorkspaceRead).await?;
    ctx.store
        .task(&caller.org_id, &ws.id, &task_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(ErrorCode::TaskNotFound, "task"))
}

pub async fn cancel(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Cancelling>> {
    let ws = load(&ctx, &caller, &id, Scope::WorkspaceWrite).await?;
    let task = ctx.orchestrator.cancel(&caller, &ws).await?;
    Ok(Json(Cancelling {
        task_id: task.id,
        status: "cancelling",
    }))
}

#[cfg(test)]
mod tests {
    use super::sanitize_filename;

    #[test]
    fn upload_names_lose_every_path_component() {
        assert_eq!(
            sanitize_filename("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            sanitize_filename("C:\\x\\report.txt").as_deref(),
            Some("report.txt")
        );
        assert_eq!(sanitize_filename("a\u{0}b.txt").as_deref(), Some("ab.txt"));
        assert_eq!(sanitize_filename(".."), None);
        assert_eq!(sanitize_filename("dir/"), None);
    }
}
