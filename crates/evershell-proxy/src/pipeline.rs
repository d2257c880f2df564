//! The per-request pipeline: classify → authorize → transform → forward,
//! with the audit row written exactly once, before the response for
//! refusals and after the response body for forwarded requests.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use evershell_core::{Decision, Phase, PolicyType};
use http::header::{HeaderValue, CONNECTION};
use http::{Request, Response, Version};
use hyper::body::Incoming;
use tokio::time::Instant;
use tracing::Instrument;

use crate::audit::{Exchange, Outcome};
use crate::body::{BodyEnd, Metered, OnEnd, ProxyBody};
use crate::classify::{self, Facts};
use crate::forward::{self, PoolKey, Target};
use crate::intercept::{Conn, Workspace};
use crate::refusal::{self, Denial};
use crate::{authorize, transform};

/// Writes the row of a forwarded request when its response body ends.
struct AllowRow {
    /// Where the row's write runs: the body may be dropped outside any
    /// runtime context.
    runtime: tokio::runtime::Handle,
    ws: Arc<Workspace>,
    outcome: Outcome,
    started: Instant,
    status: u16,
    sent: Arc<AtomicU64>,
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

    let decision = authorize::decide(&ws.binding.policy, request.method().as_str(), &facts);
    if let Some(path) = &decision.canonical_path {
        outcome.path = Some(path.clone());
    }
    outcome.capability = decision.capability.clone();
    outcome.reason = decision.reason.clone();
    tracing::debug!(allowed = decision.allowed, reason = %decision.reason, "request decided");
    if !decision.allowed {
        return Err(Denial::Policy {
            reason: decision.reason,
        });
    }

    let (mut parts, body) = request.into_parts();
    let applied = transform::apply(
        ws.proxy.credentials.as_ref(),
        &ws.binding.org_id,
        &decision.auth,
        &mut parts.headers,
    )
    .await?;
    outcome.transforms_applied = Some(applied.count);
    outcome.minted = applied.minted;

    let path_and_query = decision.forward_target.ok_or(Denial::Request {
        reason: "invalid_path",
    })?;
    let target = target(ws, &facts, decision.host, path_and_query, &outcome.minted);
    let sent = Arc::new(AtomicU64::new(0));
    let idle = ws.proxy.config.idle_timeout;
    let body = Metered::new(body, sent.clone(), idle).boxed();
    let response = ws.proxy.upstreams.send(&target, parts, body).await?;

    let row = AllowRow {
        runtime: tokio::runtime::Handle::current(),
        ws: ws.clone(),
        outcome: outcome.clone(),
        started,
        status: response.status().as_u16(),
        sent,
    };
    Ok(relay(response, row, idle))
}

/// The upstream's response for the agent: hop-by-hop fields dropped, the
/// body streamed through a meter that writes the row when it ends.
fn relay(
    response: Response<Incoming>,
    row: AllowRow,
    idle: std::time::Duration,
) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    forward::strip_response(&mut parts.headers);
    let body = Metered::new(body, Arc::new(AtomicU64::new(0)), idle)
        .on_end(Box::new(row))
        .boxed();
    Response::from_parts(parts, body)
}

/// Where an allowed request goes: the policy host at the logical port, in
/// a pool of its own when credentials ride on it.
fn target(
    ws: &Workspace,
    facts: &Facts,
    host: String,
    path_and_query: String,
    minted: &[String],
) -> Target {
    let identity =
        (!minted.is_empty()).then(|| format!("{}/{}", ws.binding.workspace_id, minted.join(",")));
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

impl OnEnd for AllowRow {
    fn ended(self: Box<Self>, end: BodyEnd, bytes: u64) {
        let AllowRow {
            runtime,
            ws,
            mut outcome,
            started,
            status,
            sent,
        } = *self;
        outcome.decision = Decision::Allow;
        outcome.exchange = Some(Exchange {
            status_code: Some(status),
            bytes_in: bytes,
            bytes_out: sent.load(Ordering::Relaxed),
            latency: started.elapsed(),
        });
        match end {
            BodyEnd::Complete => {}
            BodyEnd::IdleTimeout => outcome.reason = "idle_timeout".into(),
            BodyEnd::Failed => outcome.reason = "upstream_reset".into(),
            BodyEnd::Dropped => outcome.reason = "agent_closed".into(),
        }
        runtime.spawn(async move {
            let _ = ws.proxy.audit.record(&ws.binding, &outcome).await;
        });
    }
}
