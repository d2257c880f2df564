//! The outcome of a decision, and what it carries for the proxy and the
//! audit row.

use crate::budget::{Budget, Counter};
use crate::transform::TransformStep;

use super::CompiledRule;

/// The outcome of [`crate::Policy::decide`] and
/// [`crate::Policy::decide_with_body`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// `allowed`, or the deny reason: `invalid_host`, `invalid_path`,
    /// `host_not_allowed` (no rule's domain and port fit),
    /// `insecure_not_allowed`, `method_not_allowed`, `path_not_allowed`,
    /// `body_too_large`, `body_not_json`, `body_invalid` (schema),
    /// `match_not_satisfied`, `cel_error: <message>` (the furthest stage
    /// any candidate rule reached; at equal stages the first candidate's),
    /// `no_matching_rule` (the policy has no rules at all), or
    /// `body_required` while `needs_body` is set.
    pub reason: String,
    /// The normalised host without port (the raw host for `invalid_host`).
    pub host: String,
    /// The canonical path without query, when the path was valid.
    pub canonical_path: Option<String>,
    /// Canonical path plus the original `?query`: exactly what must be
    /// forwarded upstream (unless transforms rewrite it).
    pub forward_target: Option<String>,
    /// The admitting capability and rule (name, or `allow[i]`).
    pub capability: Option<String>,
    pub rule: Option<String>,
    /// The `auth` transforms that fire on this allowed request, in order
    /// (also present, as steps, in `transforms`).
    pub auth: Vec<AuthStep>,
    /// Candidate rules (their domain matched the host) that refused, in
    /// document order, for `explain` and audit.
    pub refusals: Vec<Refusal>,
    /// `Some(n)` when no decision can be made without the request body:
    /// the proxy buffers at most `n + 1` bytes and calls
    /// [`crate::Policy::decide_with_body`]. `n` is the largest body limit
    /// among the candidate rules that still could admit and need the body.
    /// `allowed` is `false` meanwhile. Always `None` from `decide_with_body`.
    pub needs_body: Option<usize>,
    /// How many body schema validations ran.
    pub validations_applied: u32,
    /// Every transform that fires on this allowed request, in document
    /// order; run them with [`crate::apply_transforms`].
    pub transforms: Vec<TransformStep>,
    /// The budgets of the admitting capability.
    pub budgets: Vec<BudgetRef>,
}

/// One credential to stamp on an allowed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthStep {
    pub transform: String,
    pub credential: String,
}

/// Why one candidate rule did not admit the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub capability: String,
    pub rule: String,
    pub why: String,
}

/// A budget that applies to an allowed request: the proxy's ledger
/// reserves against it before forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetRef {
    pub capability: String,
    pub counter: Counter,
    pub budget: Budget,
}

impl Decision {
    pub(super) fn deny(reason: &str, host: String) -> Decision {
        Decision {
            allowed: false,
            reason: reason.to_owned(),
            host,
            canonical_path: None,
            forward_target: None,
            capability: None,
            rule: None,
            auth: Vec::new(),
            refusals: Vec::new(),
            needs_body: None,
            validations_applied: 0,
            transforms: Vec::new(),
            budgets: Vec::new(),
        }
    }

    pub(super) fn allow(&mut self, rule: &CompiledRule) {
        self.allowed = true;
        self.reason = "allowed".to_owned();
        self.capability = Some(rule.capability.clone());
        self.rule = Some(rule.label.clone());
        self.auth = rule.auth.clone();
        self.transforms = rule.steps.clone();
        self.budgets = rule.budgets.clone();
    }
}
