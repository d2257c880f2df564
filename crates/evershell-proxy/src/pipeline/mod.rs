//! The per-request pipeline: classify → authorize → reserve budgets →
//! transform → forward, with the audit row written exactly once, before the
//! response for refusals and after the response body for forwarded
//! requests (once the budgets are settled).

mod relay;
mod reserve;

use std::convert::Infallible;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use evershell_caps::{Decision, RequestFacts};
use evershell_core::{Phase, PolicyType};
use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH};
use http::{HeaderMap, Request, Response, Version};
use hyper::body::Incoming;
use tokio::time::Instant;
use tracing::Instrument;

use crate::audit::Outcome;
use crate::authorize;
use crate::body::{AgentBody, Metered, ProxyBody};
use crate::budget::Reservation;
use crate::classify::{self, Facts};
use crate::forward::{PoolKey, Target};
use crate::intercept::{Conn, Workspace};
use crate::refusal::{self, Denial};
use crate::transform::{self, Draft, Sources};

use relay::{Account, AllowRow};

/// What the transforms leave to forwarding.
struct Rewritten {
    path_and_query: String,
    /// Names of the secrets placed on the request.
    secrets: Vec<String>,
}

/// Handles one request of `conn`. Never fails: every failure becomes a
/// response the agent can read.
pub(crate) async fn handle(
    conn: Arc<Conn>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    let mut outcome = Outcome::deny(PolicyType::Http, Phase::RequestHeaders, "");
    outcome.request_id = Some(evershell_core::id::new_request_id());
    outcome.task_id = conn.ws.binding.current_task();
    outcome.method = Some(request.method().as_str().to_owned());
    outcome.path = Some(classify::raw_path(&request));
    outcome.destination = conn
        .sni
        .as_deref()
        .map(|host| classify::destination(host, conn.listener.port, conn.listener.tls));

    let span = tracing::debug_span!(
        "request",
        request_id = outcome.request_id.as_deref(),
        task_id = outcome.task_id.as_deref(),
        method = %request.method(),
    );
    let version = request.version();
    let result = decide_and_forward(&conn, request, &mut outcome, started)
        .instrument(span.clone())
        .await;
    Ok(match result {
        Ok(response) => response,
        Err(denial) => {
            refuse(&conn.ws, denial, outcome, version)
                .instrument(span)
                .await
        }
    })
}

async fn decide_and_forward(
    conn: &Arc<Conn>,
    request: Request<Incoming>,
    outcome: &mut Outcome,
    started: Instant,
) -> Result<Response<ProxyBody>, Denial> {
    let ws = &conn.ws;
    let facts = classify::request(conn, &request)?;
    outcome.destination = Some(classify::destination(
        &facts.host,
        facts.port,
        conn.listener.tls,
    ));
    if !ws.proxy.audit.is_healthy() {
        return Err(Denial::AuditUnavailable);
    }

    let (mut parts, body) = request.into_parts();
    let mut body = AgentBody::new(body);
    let admitted = admit(ws, &facts, &mut parts, &mut body, outcome).await;
    let (decision, reservation, rewritten) = match admitted {
        Ok(admitted) => admitted,
        Err(denial) => {
            drain(&mut body, ws.proxy.config.idle_timeout).await;
            return Err(denial);
        }
    };

    let identity = pool_identity(ws, &outcome.minted, &rewritten.secrets);
    let target = target(&facts, decision.host, rewritten.path_and_query, identity);
    let sent = Arc::new(AtomicU64::new(0));
    let idle = ws.proxy.config.idle_timeout;
    let body = Metered::new(body.into_replay(), sent.clone(), idle).boxed();
    let response = ws.proxy.upstreams.send(&target, parts, body).await?;

    let row = AllowRow {
        runtime: tokio::runtime::Handle::current(),
        ws: ws.clone(),
        outcome: outcome.clone(),
        started,
        status: response.status().as_u16(),
        sent,
        account: reservation.map(|reservation| Account {
            reservation,
            tap: None,
        }),
    };
    Ok(relay::relay(response, row, idle))
}

/// Decides, reserves and transforms one request; everything that can
/// refuse it before it is forwarded.
async fn admit(
    ws: &Workspace,
    facts: &Facts,
    parts: &mut http::request::Parts,
    body: &mut AgentBody<Incoming>,
    outcome: &mut Outcome,
) -> Result<(Decision, Option<Reservation>, Rewritten), Denial> {
    let headers = transform::header_pairs(&parts.headers);
    let task = outcome.task_id.clone();
    let method = parts.method.as_str().to_owned();
    let policy_facts = authorize::facts(&ws.binding, &method, facts, &headers, task.as_deref());
    let decision = authorize::decide(ws, &policy_facts, body, outcome).await?;
    let reservation = reserve::reserve(ws, &decision, &parts.headers, body, outcome).await?;
    let rewritten = rewrite(
        ws,
        &decision,
        &policy_facts,
        &mut parts.headers,
        body,
        outcome,
    )
    .await?;
    Ok((decision, reservation, rewritten))
}

/// Largest request body read (and discarded) before a refusal is sent.
const DRAIN_LIMIT: usize = 256 * 1024;
/// How long a refusal waits for the rest of a small body.
const DRAIN_WAIT: Duration = Duration::from_millis(500);

/// Reads what is left of a refused request's body, up to [`DRAIN_LIMIT`],
/// so that the refusal is not followed by a reset the client would report
/// instead of the 403 (HTTP/2 streams whose body is still arriving).
async fn drain(body: &mut AgentBody<Incoming>, idle: Duration) {
    let _ = body.read_ahead(DRAIN_LIMIT, idle.min(DRAIN_WAIT)).await;
}

/// Runs the decision's transforms on the request's `headers` and `body`.
async fn rewrite(
    ws: &Workspace,
    decision: &Decision,
    facts: &RequestFacts<'_>,
    headers: &mut HeaderMap,
    body: &mut AgentBody<Incoming>,
    outcome: &mut Outcome,
) -> Result<Rewritten, Denial> {
    let mut draft = draft(decision, std::mem::take(headers), body)?;
    let sources = Sources {
        org_id: &ws.binding.org_id,
        credentials: ws.proxy.credentials.as_ref(),
        secrets: ws.proxy.secrets.as_ref(),
    };
    let applied = transform::apply(&sources, &decision.transforms, facts, &mut draft).await?;
    outcome.transforms_applied = Some(applied.count);
    outcome.minted = applied.minted;

    if draft.body_changed {
        body.replace(draft.body.take().expect("a changed body is held"));
    }
    *headers = draft.headers;
    // The proxy frames what it changed; an unchanged body keeps the
    // agent's framing.
    if body.is_replaced() {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.held().len()));
    }
    let path_and_query = match draft.query {
        Some(query) => format!("{}?{query}", draft.path),
        None => draft.path,
    };
    Ok(Rewritten {
        path_and_query,
        secrets: applied.secrets,
    })
}

/// The request as transforms start from: the decided path and query, and
/// the body when it was read whole.
fn draft(
    decision: &Decision,
    headers: HeaderMap,
    body: &AgentBody<Incoming>,
) -> Result<Draft, Denial> {
    let invalid = || Denial::Request {
        reason: "invalid_path",
    };
    let target = decision.forward_target.as_deref().ok_or_else(invalid)?;
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (target.to_owned(), None),
    };
    // Only a step that reads the body gets a copy of it.
    let reads_body = decision.transforms.iter().any(|s| s.reads_body());
    let whole =
        (reads_body && body.is_complete()).then(|| bytes::Bytes::copy_from_slice(body.held()));
    Ok(Draft {
        headers,
        path,
        query,
        body: whole,
        body_changed: false,
    })
}

/// The pool of a request that carries credentials or secrets: the
/// workspace's own, per set of names; `None` (the shared pool) otherwise.
fn pool_identity(ws: &Workspace, minted: &[String], secrets: &[String]) -> Option<String> {
    if minted.is_empty() && secrets.is_empty() {
        return None;
    }
    let secrets: Vec<String> = secrets.iter().map(|s| format!("secret:{s}")).collect();
    let names = [minted, &secrets].concat().join(",");
    Some(format!("{}/{names}", ws.binding.workspace_id))
}

/// Where an allowed request goes: the policy host at the logical port, in
/// the pool of `identity`.
fn target(facts: &Facts, host: String, path_and_query: String, identity: Option<String>) -> Target {
    Target {
        key: PoolKey {
            tls: facts.scheme == evershell_caps::Scheme::Https,
            host,
            port: facts.port,
            identity,
        },
        path_and_query,
    }
}

/// Records the refusal's row, then returns its response; if the row cannot
/// be recorded the agent gets `503 audit_unavailable` instead.
async fn refuse(
    ws: &Workspace,
    denial: Denial,
    mut outcome: Outcome,
    version: Version,
) -> Response<ProxyBody> {
    tracing::debug!(
        %denial,
        side = ?denial.side(),
        retryable = denial.retryable(),
        "request refused"
    );
    let mut response = refusal::render(&denial, &mut outcome);
    if ws.proxy.audit.record(&ws.binding, &outcome).await.is_err() {
        response = refusal::render(&Denial::AuditUnavailable, &mut outcome.clone());
    }

    // HTTP/2 has no Connection field (RFC 9113 §8.2.2); its framing needs
    // no reset either.
    let headers = response.headers_mut();
    if version == Version::HTTP_2 {
        headers.remove(CONNECTION);
    } else if denial.closes_connection() {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
