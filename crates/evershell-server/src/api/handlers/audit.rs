//! Audit readers: `GET /v1/workspaces/{id}/audit` with `filter`, `from`,
//! `to`, `order`, `limit` and an opaque `cursor`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::Json;
use base64::Engine;
use chrono::{DateTime, Utc};
use evershell_core::{AuditEvent, ErrorCode, Scope};
use evershell_store::{AuditFilter, AuditQuery, FilterOp, Order, FILTERABLE_COLUMNS};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;

use super::workspaces::load;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::ApiPath;
use crate::api::openapi::describe::{DescribeInput, Operation, Schemas};
use crate::Ctx;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 10_000;

/// The query string of an audit reader, parsed by [`parse_params`] once the
/// handler knows the caller's org. `filter` repeats, which the typed query
/// extractor cannot express, hence the hand-written parser and description.
pub struct AuditParams(Option<String>);

/// One page of audit rows.
#[derive(Serialize, JsonSchema)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// Set only when the page is full: pass it back for the next page.
    pub cursor: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for AuditParams {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(AuditParams(parts.uri.query().map(str::to_string)))
    }
}

impl DescribeInput for AuditParams {
    fn describe(op: &mut Operation, _schemas: &mut Schemas) {
        let text = json!({ "type": "string" });
        let time = json!({ "type": "string", "format": "date-time" });
        op.query(
            "filter",
            false,
            json!({ "type": "array", "items": { "type": "string" } }),
            "repeatable, all must hold: `col=a,b`, `col!=a,b` or `col!=`",
        );
        op.query("from", false, time.clone(), "inclusive");
        op.query("to", false, time, "exclusive");
        op.query(
            "order",
            false,
            json!({ "enum": ["asc", "desc"], "default": "desc" }),
            "",
        );
        op.query(
            "limit",
            false,
            json!({
                "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT,
            }),
            "",
        );
        op.query("cursor", false, text, "continues after a previous page");
    }
}

/// The reader query of org `org_id` that the query string `raw` asks for.
pub fn parse_params(org_id: &str, raw: Option<&str>) -> ApiResult<AuditQuery> {
    let mut params = AuditQuery {
        org_id: org_id.to_string(),
        workspace_id: None,
        user_id: None,
        category: None,
        filters: Vec::new(),
        from: None,
        to: None,
        order: Order::Desc,
        limit: DEFAULT_LIMIT,
        after_key: None,
    };
    let mut cursor = None;
    for (key, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "filter" => params.filters.push(parse_filter(&value)?),
            "from" => params.from = Some(parse_time("from", &value)?),
            "to" => params.to = Some(parse_time("to", &value)?),
            "order" => {
                params.order = match value.as_ref() {
                    "asc" => Order::Asc,
                    "desc" => Order::Desc,
                    _ => return Err(ApiError::field("order", "must be asc or desc")),
                }
            }
            "limit" => {
                params.limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| ApiError::field("limit", format!("must be 1..={MAX_LIMIT}")))?
            }
            "cursor" => cursor = Some(value.into_owned()),
            "api_key" => {}
            other => return Err(ApiError::field(other, "unknown parameter")),
        }
    }
    if let Some(cursor) = cursor {
        let (order, key) = decode_cursor(&cursor)?;
        params.order = order;
        params.after_key = Some(key);
    }
    Ok(params)
}

fn parse_time(field: &str, value: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::field(field, "must be an RFC 3339 timestamp"))
}

/// `col=a,b` (in-list), `col!=a,b` (not in), `col!=` (populated).
fn parse_filter(text: &str) -> ApiResult<AuditFilter> {
    let (column, op) = if let Some((col, values)) = text.split_once("!=") {
        let op = if values.is_empty() {
            FilterOp::Populated
        } else {
            FilterOp::NotIn(split(values))
        };
        (col, op)
    } else if let Some((col, values)) = text.split_once('=') {
        (col, FilterOp::In(split(values)))
    } else {
        return Err(ApiError::field(
            "filter",
            "expected col=a,b, col!=a,b or col!=",
        ));
    };
    let column = FILTERABLE_COLUMNS
        .iter()
        .find(|c| **c == column)
        .ok_or_else(|| {
            ApiError::field(
                "filter",
                format!(
                    "unknown column {column:?}; allowed: {}",
                    FILTERABLE_COLUMNS.join(", ")
                ),
            )
        })?;
    Ok(AuditFilter { column, op })
}

fn split(values: &str) -> Vec<String> {
    values.split(',').map(str::to_string).collect()
}

fn encode_cursor(order: Order, event: &AuditEvent) -> String {
    let order = if order == Order::Asc { "a" } else { "d" };
    let text = format!("{order}|{}|{}", event.timestamp.to_rfc3339(), event.id);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

fn decode_cursor(cursor: &str) -> ApiResult<(Order, (DateTime<Utc>, String))> {
    let invalid = || ApiError::new(ErrorCode::InvalidCursor, "malformed cursor");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let mut parts = text.splitn(3, '|');
    let order = match parts.next() {
        Some("a") => Order::Asc,
        Some("d") => Order::Desc,
        _ => return Err(invalid()),
    };
    let at = parts
        .next()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .ok_or_else(invalid)?;
    let id = parts
        .next()
        .filter(|id| !id.is_empty())
        .ok_or_else(invalid)?;
    Ok((order, (at.with_timezone(&Utc), id.to_string())))
}

/// Runs a reader query and shapes the page: `{events, cursor}` with the
/// cursor present only when the page is full.
pub async fn page(ctx: &Ctx, query: AuditQuery) -> ApiResult<Json<AuditPage>> {
    let events = ctx.store.query_audit(&query).await?;
    let cursor = (events.len() as u32 == query.limit)
        .then(|| events.last().map(|last| encode_cursor(query.order, last)))
        .flatten();
    Ok(Json(AuditPage { events, cursor }))
}

pub async fn workspace_audit(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    AuditParams(raw): AuditParams,
) -> ApiResult<Json<AuditPage>> {
    let ws = load(&ctx, &caller, &id, Scope::WorkspaceRead).await?;
    let mut query = parse_params(&caller.org_id, raw.as_deref())?;
    // Workspace-scoped readers see every row of a workspace they may read.
    query.workspace_id = Some(ws.id);
    page(&ctx, query).await
}

/// `GET /v1/audit`: the org's whole log. Callers holding only
/// `audit:read:own` see the rows whose `user_id` is theirs.
pub async fn org_audit(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    AuditParams(raw): AuditParams,
) -> ApiResult<Json<AuditPage>> {
    let mut query = parse_params(&caller.org_id, raw.as_deref())?;
    query.user_id = caller.narrowing(Scope::AuditRead).map(str::to_string);
    page(&ctx, query).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_the_three_documented_shapes() {
        assert_eq!(
            parse_filter("decision=deny").unwrap().op,
            FilterOp::In(vec!["deny".into()])
        );
        assert_eq!(
            parse_filter("decision!=allow,x").unwrap().op,
            FilterOp::NotIn(vec!["allow".into(), "x".into()])
        );
        assert_eq!(parse_filter("reason!=").unwrap().op, FilterOp::Populated);
        assert!(parse_filter("secret_value=1").is_err());
    }

    #[test]
    fn every_documented_parameter_is_one_the_parser_accepts() {
        let mut op = Operation::default();
        AuditParams::describe(&mut op, &mut Schemas::default());
        let row = AuditEvent {
            id: "0193".to_string(),
            ..AuditEvent::default()
        };
        let samples = [
            ("filter", "decision=deny"),
            ("from", "2026-01-01T00:00:00Z"),
            ("to", "2026-01-02T00:00:00Z"),
            ("order", "asc"),
            ("limit", "5"),
            ("cursor", &encode_cursor(Order::Asc, &row)),
        ];
        assert_eq!(op.parameters.len(), samples.len());
        for parameter in &op.parameters {
            let name = parameter["name"].as_str().expect("parameters are named");
            let (_, value) = samples
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap_or_else(|| panic!("no sample for documented parameter {name}"));
            let query = format!("{name}={}", urlencode(value));
            assert!(parse_params("org", Some(&query)).is_ok(), "{query}");
        }
        assert!(parse_params("org", Some("undocumented=1")).is_err());
    }

    fn urlencode(value: &str) -> String {
        form_urlencoded::byte_serialize(value.as_bytes()).collect()
    }

    #[test]
    fn malformed_cursors_are_invalid_cursor() {
        let err = decode_cursor("%%%").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidCursor);
        let err = decode_cursor(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("x|y|z"))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidCursor);
    }
}
