//! Live streams (SSE): `GET /v1/workspaces/{id}/activity/stream`.
//!
//! Frames are `event: activity`, `id: <row id>`, `data: <row JSON>` for
//! every row of the workspace as it is committed (lifecycle, agent events
//! and proxy decisions). A heartbeat comment goes out every 15 s and the
//! server closes the stream after 5 minutes so clients reconnect.
//! `Last-Event-ID` (header or `?last_event_id=`) replays what was missed
//! from the store first. A subscriber that falls behind the in-memory
//! fan-out gets `event: gap` and is replayed from the store: never a silent
//! drop.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use evershell_core::{AuditEvent, Scope};
use futures_util::Stream;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::workspaces::load;
use crate::api::auth::Caller;
use crate::api::error::{ApiError, ApiResult};
use crate::api::extract::ApiPath;
use crate::api::openapi::describe::{DescribeInput, Operation, Schemas};
use crate::Ctx;

const STREAM_LIFETIME: Duration = Duration::from_secs(300);
const HEARTBEAT: Duration = Duration::from_secs(15);
const REPLAY_PAGE: u32 = 500;

fn frame(event: &AuditEvent) -> Event {
    Event::default()
        .event("activity")
        .id(event.id.clone())
        .data(serde_json::to_string(event).expect("audit rows serialise"))
}

/// The row a reconnecting client last received: the `Last-Event-ID`
/// header, or `?last_event_id=` for clients that cannot set headers.
pub struct LastEventId(Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for LastEventId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(LastEventId(last_event_id(
            &parts.headers,
            parts.uri.query(),
        )))
    }
}

impl DescribeInput for LastEventId {
    fn describe(op: &mut Operation, _schemas: &mut Schemas) {
        let description = "replay the workspace's rows committed after this row id first";
        op.header("Last-Event-ID", json!({ "type": "string" }), description);
        op.query(
            "last_event_id",
            false,
            json!({ "type": "string" }),
            description,
        );
    }
}

fn last_event_id(headers: &HeaderMap, raw: Option<&str>) -> Option<String> {
    let header = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    header.or_else(|| {
        form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
            .find(|(k, _)| k == "last_event_id")
            .map(|(_, v)| v.into_owned())
    })
}

pub async fn workspace_activity(
    State(ctx): State<Arc<Ctx>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    LastEventId(last_event_id): LastEventId,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let ws = load(&ctx, &caller, &id, Scope::WorkspaceRead).await?;
    // Subscribe before reading the store so that nothing committed in
    // between is missed; rows seen in a replay are not sent again live.
    let mut live = ctx.audit.subscribe();
    let resume_from = match last_event_id {
        Some(id) => Some(
            ctx.store
                .audit_position(&caller.org_id, &id)
                .await?
                .ok_or_else(|| ApiError::field("last_event_id", "no such event"))?,
        ),
        None => None,
    };
    let head = ctx.store.audit_head().await?;
    let org_id = caller.org_id.clone();
    let ws_id = ws.id.clone();

    let stream = async_stream::stream! {
        let deadline = tokio::time::Instant::now() + STREAM_LIFETIME;
        // Commit position up to which the store has been replayed.
        let mut position = resume_from.unwrap_or(head);
        let mut replayed: HashSet<String> = HashSet::new();
        if resume_from.is_some() {
            for event in replay(&ctx, &org_id, &ws_id, &mut position, &mut replayed).await {
                yield Ok(frame(&event));
            }
        }
        loop {
            let next = tokio::time::timeout_at(deadline, live.recv()).await;
            match next {
                Err(_) | Ok(Err(RecvError::Closed)) => break,
                Ok(Ok(event)) => {
                    if event.workspace_id.as_deref() != Some(ws_id.as_str()) || replayed.remove(&event.id) {
                        continue;
                    }
                    yield Ok(frame(&event));
                }
                Ok(Err(RecvError::Lagged(_))) => {
                    yield Ok(Event::default().event("gap").data(position.to_string()));
                    for event in replay(&ctx, &org_id, &ws_id, &mut position, &mut replayed).await {
                        yield Ok(frame(&event));
                    }
                }
            }
        }
    };
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat")))
}

/// Every row of the workspace committed after `position`, in commit order;
/// moves `position` forward and remembers the ids it returned.
async fn replay(
    ctx: &Ctx,
    org_id: &str,
    ws_id: &str,
    position: &mut i64,
    replayed: &mut HashSet<String>,
) -> Vec<AuditEvent> {
    let mut out = Vec::new();
    loop {
        let page = match ctx
            .store
            .audit_committed_after(org_id, ws_id, *position, REPLAY_PAGE)
            .await
        {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(workspace = %ws_id, error = %e, "activity replay failed");
                return out;
            }
        };
        let full = page.len() as u32 == REPLAY_PAGE;
        for (at, event) in page {
            *position = at;
            replayed.insert(event.id.clone());
            out.push(event);
        }
        if !full {
            return out;
        }
    }
}
