//! Refusals: every way a request ends without an upstream response, what
//! the agent is told and what the row says. Both come from [`render`], so
//! the response and the row never disagree.

use std::collections::BTreeMap;

use bytes::Bytes;
use evershell_core::Decision;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};

use crate::audit::Outcome;
use crate::body::{self, ProxyBody};

/// The header that marks a response the proxy wrote itself on a deny.
pub(crate) const DECISION_HEADER: &str = "x-evershell-decision";
/// The request id of a response the proxy wrote itself.
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

/// Why a request did not get an upstream response.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Denial {
    /// The policy refused it; the reason is the policy engine's.
    #[error("policy refused the request: {reason}")]
    Policy { reason: String },
    /// The request's names are not acceptable (`sni_host_mismatch`,
    /// `host_missing`, `invalid_host`, …).
    #[error("request refused: {reason}")]
    Request { reason: &'static str },
    /// A tunnel or protocol switch the proxy does not relay yet
    /// (`connect_unsupported`, `upgrade_unsupported`).
    #[error("request refused: {reason}")]
    Unsupported { reason: &'static str },
    /// A framing shape that could smuggle a second request, or a header
    /// section over the limit. `shape` is for the log only.
    #[error("malformed request: {shape}")]
    Malformed { shape: &'static str },
    /// A request body the proxy had to read is larger than it reads
    /// (`body_too_large`), stayed silent (`idle_timeout`) or broke
    /// (`body_unreadable`).
    #[error("request body refused: {reason}")]
    Body { reason: &'static str },
    /// Transforms could not complete: a credential or secret unavailable,
    /// a value that does not evaluate, a body that is not JSON.
    #[error("transforms failed: {failed:?}")]
    Transform {
        /// Transform name → reason.
        failed: BTreeMap<String, String>,
        /// Credential name → reason.
        auth_failures: BTreeMap<String, String>,
    },
    /// The request does not fit a budget of its capability; the reason is
    /// `budget_exceeded:<counter>`.
    #[error("budget refused the request: {reason}")]
    Budget { reason: String },
    /// The workspace's stored budget usage could not be loaded.
    #[error("budget usage unavailable")]
    BudgetUnavailable,
    /// The audit store cannot take rows; nothing leaves unaudited.
    #[error("audit store unavailable")]
    AuditUnavailable,
    /// The upstream's TLS failed; `detail` names the class of failure.
    #[error("upstream tls failed: {detail}")]
    UpstreamTls { detail: &'static str },
    /// The upstream could not be resolved, reached, or answered nothing.
    #[error("upstream unavailable: {detail}")]
    UpstreamUnavailable { detail: &'static str },
}

/// Which side of the proxy a refusal is due to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Agent,
    Upstream,
    Internal,
}

impl Denial {
    pub(crate) fn side(&self) -> Side {
        match self {
            Denial::Policy { .. }
            | Denial::Request { .. }
            | Denial::Unsupported { .. }
            | Denial::Malformed { .. }
            | Denial::Body { .. }
            | Denial::Budget { .. } => Side::Agent,
            Denial::UpstreamTls { .. } | Denial::UpstreamUnavailable { .. } => Side::Upstream,
            Denial::Transform { .. } | Denial::AuditUnavailable | Denial::BudgetUnavailable => {
                Side::Internal
            }
        }
    }

    /// Whether sending the same request again may succeed without anyone
    /// changing configuration.
    pub(crate) fn retryable(&self) -> bool {
        matches!(
            self,
            Denial::AuditUnavailable
                | Denial::UpstreamUnavailable { .. }
                | Denial::BudgetUnavailable
        )
    }

    /// Whether an HTTP/1 connection must close after the refusal because
    /// what follows on it can no longer be framed (untrusted framing, the
    /// bytes of a refused tunnel).
    pub(crate) fn closes_connection(&self) -> bool {
        matches!(self, Denial::Malformed { .. } | Denial::Unsupported { .. })
    }

    /// The `reason` column.
    fn reason(&self) -> &str {
        match self {
            Denial::Policy { reason } => reason,
            Denial::Request { reason } | Denial::Unsupported { reason } => reason,
            Denial::Body { reason } => reason,
            Denial::Malformed { .. } => "bad_request",
            Denial::Transform { failed, .. } => {
                if failed.values().any(|r| r == "auth_unavailable") {
                    "auth_unavailable"
                } else {
                    "transform_failed"
                }
            }
            Denial::Budget { reason } => reason,
            Denial::BudgetUnavailable => "budget_unavailable",
            Denial::AuditUnavailable => "audit_unavailable",
            Denial::UpstreamTls { .. } => "upstream_tls_failed",
            Denial::UpstreamUnavailable { .. } => "upstream_unavailable",
        }
    }

    /// The status and the body's `code`, fixed per variant.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Denial::Policy { .. }
            | Denial::Request { .. }
            | Denial::Unsupported { .. }
            | Denial::Body { .. }
            | Denial::Transform { .. }
            | Denial::Budget { .. } => (StatusCode::FORBIDDEN, "egress_denied"),
            Denial::BudgetUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "budget_unavailable"),
            Denial::Malformed { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
            Denial::AuditUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable"),
            Denial::UpstreamTls { .. } => (StatusCode::BAD_GATEWAY, "upstream_tls_failed"),
            Denial::UpstreamUnavailable { .. } => (StatusCode::BAD_GATEWAY, "upstream_unavailable"),
        }
    }

    /// What the body's `reason` says: the row's reason, or for upstream
    /// failures the class of failure.
    fn public_reason(&self) -> &str {
        match self {
            Denial::UpstreamTls { detail } | Denial::UpstreamUnavailable { detail } => detail,
            other => other.reason(),
        }
    }

    /// Whether the policy's decision stands as `allow` (the request was
    /// admitted and then failed upstream) or the request is denied.
    fn decision(&self) -> Decision {
        match self {
            Denial::UpstreamTls { .. } | Denial::UpstreamUnavailable { .. } => Decision::Allow,
            _ => Decision::Deny,
        }
    }
}

/// Completes `outcome` with `denial` and builds the response the agent gets:
/// a JSON body `{"error":{"code","reason","host","method","path",
/// "request_id"}}`, `x-evershell-decision: deny` on denials. Nothing secret
/// is in either: the body carries only the row's public columns.
pub(crate) fn render(denial: &Denial, outcome: &mut Outcome) -> Response<ProxyBody> {
    outcome.decision = denial.decision();
    outcome.reason = denial.reason().to_owned();
    if let Denial::Transform {
        failed,
        auth_failures,
    } = denial
    {
        outcome.transforms_failed.extend(failed.clone());
        outcome.auth_failures.extend(auth_failures.clone());
    }

    let (status, code) = denial.status_and_code();
    let body = serde_json::json!({
        "error": {
            "code": code,
            "reason": denial.public_reason(),
            "host": outcome.destination,
            "method": outcome.method,
            "path": outcome.path,
            "request_id": outcome.request_id,
        }
    });
    let mut response = Response::new(body::full(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if outcome.decision == Decision::Deny {
        headers.insert(DECISION_HEADER, HeaderValue::from_static("deny"));
    }
    if let Some(id) = outcome.request_id.as_deref() {
        if let Ok(value) = HeaderValue::from_str(id) {
            headers.insert(REQUEST_ID_HEADER, value);
        }
    }
    response
}
