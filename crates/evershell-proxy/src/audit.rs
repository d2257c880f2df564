//! The proxy's audit rows. An *outcome* is everything one decision produced
//! (an HTTP request, a refused TLS connection, a DNS query): each becomes
//! exactly one `policy_decision` row, built by [`event`] and nowhere else.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use evershell_core::audit::AuditError;
use evershell_core::{AuditEvent, AuditSink, Decision, EventType, Phase, PolicyType};

use crate::binding::WorkspaceBinding;

/// What one decision produced, in typed form.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub policy_type: PolicyType,
    pub phase: Phase,
    pub decision: Decision,
    /// The policy engine's reason, or the proxy's own (`sni_missing`,
    /// `upstream_tls_failed`, `idle_timeout`, …).
    pub reason: String,
    /// The task current when the request started.
    pub task_id: Option<String>,
    /// Also sent to the agent in deny bodies, so both can be correlated.
    pub request_id: Option<String>,
    /// Host, with `:port` when the port is not the scheme's default; the
    /// query name for DNS.
    pub destination: Option<String>,
    pub method: Option<String>,
    /// Canonical path without the query.
    pub path: Option<String>,
    pub capability: Option<String>,
    pub transforms_applied: Option<i64>,
    /// Body schema validations the decision ran.
    pub validations_applied: Option<i64>,
    /// Counter → what the request actually used, for its capability's
    /// budgets.
    pub debits: BTreeMap<String, i64>,
    /// Counter → allowance left after the request was accounted.
    pub budgets: BTreeMap<String, i64>,
    /// Counter → how a ceiling changed the request (`clamped_to_<n>`).
    pub ceilings: BTreeMap<String, String>,
    /// Names of the credentials stamped on the request, never values.
    pub minted: Vec<String>,
    pub auth_failures: BTreeMap<String, String>,
    pub transforms_failed: BTreeMap<String, String>,
    pub exchange: Option<Exchange>,
    /// For an aggregated DNS row: how many identical denials it stands for.
    pub suppressed: Option<u64>,
}

/// The measured part of a forwarded request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exchange {
    /// The upstream's status, absent when no response came.
    pub status_code: Option<u16>,
    /// Response body bytes received from the upstream.
    pub bytes_in: u64,
    /// Request body bytes sent to the upstream.
    pub bytes_out: u64,
    /// From the request's arrival to the end of the response body.
    pub latency: Duration,
}

/// Writes rows through the installation's sink and remembers whether the
/// last write worked, so that the proxy fails closed while the store is
/// down.
pub(crate) struct AuditWriter {
    sink: Arc<dyn AuditSink>,
    healthy: AtomicBool,
}

impl Outcome {
    /// A denial of `policy_type` at `phase` with nothing else known yet.
    pub(crate) fn deny(policy_type: PolicyType, phase: Phase, reason: &str) -> Outcome {
        Outcome {
            policy_type,
            phase,
            decision: Decision::Deny,
            reason: reason.to_owned(),
            task_id: None,
            request_id: None,
            destination: None,
            method: None,
            path: None,
            capability: None,
            transforms_applied: None,
            validations_applied: None,
            debits: BTreeMap::new(),
            budgets: BTreeMap::new(),
            ceilings: BTreeMap::new(),
            minted: Vec::new(),
            auth_failures: BTreeMap::new(),
            transforms_failed: BTreeMap::new(),
            exchange: None,
            suppressed: None,
        }
    }
}

/// The row for `outcome` in the workspace of `binding`.
pub(crate) fn event(binding: &WorkspaceBinding, outcome: &Outcome) -> AuditEvent {
    let mut row = AuditEvent::new(EventType::PolicyDecision, &binding.org_id, &binding.user_id);
    row.workspace_id = Some(binding.workspace_id.clone());
    row.task_id = outcome.task_id.clone();
    row.agent_role = Some(binding.role_name.clone());
    row.agent_provider = Some(binding.provider_name.clone());

    row.policy_type = Some(outcome.policy_type.as_str().to_owned());
    row.phase = Some(outcome.phase.as_str().to_owned());
    row.decision = Some(outcome.decision.as_str().to_owned());
    row.reason = Some(outcome.reason.clone());
    row.destination = outcome.destination.clone();
    row.method = outcome.method.clone();
    row.path = outcome.path.clone();
    row.capability_name = outcome.capability.clone();
    row.transforms_applied = outcome.transforms_applied;
    row.validations_applied = outcome.validations_applied;
    row.debits = non_empty_map(&outcome.debits);
    row.budgets = non_empty_map(&outcome.budgets);
    row.ceilings = non_empty_map(&outcome.ceilings);

    row.minted = non_empty(outcome.minted.clone());
    row.auth_failures = non_empty_map(&outcome.auth_failures);
    row.transforms_failed = non_empty_map(&outcome.transforms_failed);

    if let Some(exchange) = outcome.exchange {
        row.status_code = exchange.status_code.map(i64::from);
        row.bytes_in = Some(saturating_i64(exchange.bytes_in));
        row.bytes_out = Some(saturating_i64(exchange.bytes_out));
        row.latency_ms = Some(saturating_i64(exchange.latency.as_millis() as u64));
    }
    row.detail = detail(outcome);
    row
}

impl AuditWriter {
    pub(crate) fn new(sink: Arc<dyn AuditSink>) -> AuditWriter {
        AuditWriter {
            sink,
            healthy: AtomicBool::new(true),
        }
    }

    /// Records the row of `outcome` and resolves once the sink has it.
    pub(crate) async fn record(
        &self,
        binding: &WorkspaceBinding,
        outcome: &Outcome,
    ) -> Result<(), AuditError> {
        let result = self.sink.record(event(binding, outcome)).await;
        let was_healthy = self.healthy.swap(result.is_ok(), Ordering::SeqCst);
        match &result {
            Err(error) if was_healthy => {
                tracing::error!(%error, "audit sink failed; refusing requests until it recovers")
            }
            Ok(()) if !was_healthy => tracing::warn!("audit sink recovered"),
            _ => {}
        }
        result
    }

    /// Whether the last write succeeded. New requests are refused while it
    /// did not; the refusal's own row is the probe that clears the state.
    pub(crate) fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::SeqCst)
    }
}

fn detail(outcome: &Outcome) -> Option<serde_json::Value> {
    let mut detail = serde_json::Map::new();
    if let Some(id) = &outcome.request_id {
        detail.insert("request_id".into(), id.clone().into());
    }
    if let Some(count) = outcome.suppressed {
        detail.insert("suppressed".into(), count.into());
    }
    (!detail.is_empty()).then_some(serde_json::Value::Object(detail))
}

fn non_empty(names: Vec<String>) -> Option<Vec<String>> {
    (!names.is_empty()).then_some(names)
}

fn non_empty_map<V: Clone>(map: &BTreeMap<String, V>) -> Option<BTreeMap<String, V>> {
    (!map.is_empty()).then(|| map.clone())
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
