//! `GET /events?after=<seq>&wait=<seconds>`: the long poll of the event log.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use evershell_core::agent::EventsPage;
use serde::Deserialize;

use super::ApiError;
use crate::context::Ctx;

/// The longest a poll waits for the first event.
const MAX_WAIT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Answer with events whose `seq` is greater; default 0 (from the start).
    #[serde(default)]
    after: u64,
    /// Seconds to wait when there is nothing yet; default 0, at most 30.
    #[serde(default)]
    wait: u64,
}

/// Events with `seq > after`, oldest first, at most
/// [`PAGE_LIMIT`](crate::events::PAGE_LIMIT); empty when none arrived within
/// `wait`.
pub async fn poll(
    State(ctx): State<Arc<Ctx>>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<EventsPage>, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::validation(rejection.body_text()))?;
    let wait = Duration::from_secs(query.wait).min(MAX_WAIT);
    let events = ctx
        .events
        .wait_after(query.after, wait, &ctx.shutdown)
        .await;
    Ok(Json(EventsPage { events }))
}
