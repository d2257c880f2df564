//! Authorization: the compiled policy's decision on a request's facts. The
//! policy owns host normalisation, path canonicalisation, rule order, CEL
//! and body checks; this stage only asks, so that `evershell caps explain`
//! and enforcement can never disagree. When a candidate rule needs the
//! body, the body is read ahead (bounded by the largest limit the policy
//! names) and the policy asked again with it.

use std::time::Duration;

use evershell_caps::{Decision, RequestFacts, WorkspaceFacts};
use evershell_core::Phase;
use hyper::body::Incoming;

use crate::audit::Outcome;
use crate::binding::WorkspaceBinding;
use crate::body::{AgentBody, ReadAhead};
use crate::classify::Facts;
use crate::intercept::Workspace;
use crate::refusal::Denial;

/// The facts of a request as the policy reads them.
pub(crate) fn facts<'a>(
    binding: &'a WorkspaceBinding,
    method: &'a str,
    facts: &'a Facts,
    headers: &'a [(String, String)],
    task: Option<&'a str>,
) -> RequestFacts<'a> {
    let workspace = WorkspaceFacts {
        id: &binding.workspace_id,
        role: &binding.role_name,
        environment: &binding.environment,
    };
    RequestFacts::new(method, facts.scheme, &facts.host, facts.port, &facts.target)
        .with_headers(headers)
        .with_workspace(workspace)
        .with_task_id(task)
}

/// Bodies of one workspace read ahead at the same time.
pub(crate) const READ_AHEAD_SLOTS: usize = 8;
/// How long a request waits for a read-ahead slot before it is refused.
const READ_AHEAD_WAIT: Duration = Duration::from_secs(10);
/// Longest silence between body frames while a body is read ahead.
const READ_AHEAD_IDLE: Duration = Duration::from_secs(30);

/// The decision on `facts`, with the request's body when a rule needs it.
/// Fills the row's path, capability, reason and validations; a refusal is
/// the policy's reason, at phase `request_body` when the body was read.
pub(crate) async fn decide(
    ws: &Workspace,
    facts: &RequestFacts<'_>,
    body: &mut AgentBody<Incoming>,
    outcome: &mut Outcome,
) -> Result<Decision, Denial> {
    let policy = &ws.binding.policy;
    let mut decision = policy.decide(facts);
    if let Some(limit) = decision.needs_body {
        outcome.phase = Phase::RequestBody;
        // At most READ_AHEAD_SLOTS bodies of a workspace are read at once,
        // each within READ_AHEAD_IDLE per frame: a workspace cannot pin an
        // unbounded amount of the proxy's memory with stalled bodies.
        let slot =
            tokio::time::timeout(READ_AHEAD_WAIT, ws.read_ahead.clone().acquire_owned()).await;
        let Ok(Ok(_slot)) = slot else {
            return Err(Denial::Body {
                reason: "body_buffer_busy",
            });
        };
        let idle = ws.proxy.config.idle_timeout.min(READ_AHEAD_IDLE);
        body.read_ahead(limit, idle).await.map_err(unreadable)?;
        decision = policy.decide_with_body(facts, body.held());
    }

    if let Some(path) = &decision.canonical_path {
        outcome.path = Some(path.clone());
    }
    outcome.capability = decision.capability.clone();
    outcome.reason = decision.reason.clone();
    outcome.validations_applied = Some(i64::from(decision.validations_applied));
    tracing::debug!(allowed = decision.allowed, reason = %decision.reason, "request decided");
    if !decision.allowed {
        return Err(Denial::Policy {
            reason: decision.reason,
        });
    }
    Ok(decision)
}

/// The refusal of a body that could not be read ahead.
pub(crate) fn unreadable(error: ReadAhead) -> Denial {
    tracing::debug!(%error, "request body not read");
    let reason = match error {
        ReadAhead::Idle(_) => "idle_timeout",
        ReadAhead::Failed(_) => "body_unreadable",
    };
    Denial::Body { reason }
}
