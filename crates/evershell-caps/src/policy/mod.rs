//! The compiled policy: the merged capabilities of one workspace, indexed
//! for the proxy's hot path and identified by the hash of their canonical
//! text.

mod decide;
mod decision;
mod explain;
mod facts;
mod index;

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tracing::{debug, warn};

use crate::body::{BodyCheck, DEFAULT_BODY_MAX_BYTES};
use crate::cel::{CelExpr, RequestFields};
use crate::emit::to_yaml;
use crate::host::{normalize_host, port_fits};
use crate::model::{Capability, Method, Transform, TransformAction};
use crate::path::PathPattern;
use crate::transform::TransformStep;

pub use decision::{AuthStep, BudgetRef, Decision, Refusal};
pub use explain::{Candidate, Explanation};
pub use facts::{RequestFacts, Scheme, WorkspaceFacts};

use index::HostIndex;

/// An immutable, compiled policy. Cheap to share (`Send + Sync`); build it
/// once per activation and keep it behind an `Arc`.
#[derive(Debug)]
pub struct Policy {
    caps: Vec<Capability>,
    version: String,
    rules: Vec<CompiledRule>,
    hosts: HostIndex,
    /// The `request` fields any `match` reads: the only ones built.
    match_fields: RequestFields,
}

/// One allow rule, flattened out of its capability, with everything a
/// decision needs precomputed.
#[derive(Debug)]
struct CompiledRule {
    capability: String,
    /// The rule's name, or `allow[i]` for an unnamed rule.
    label: String,
    /// One bit per [`Method`].
    methods: u8,
    paths: Vec<PathPattern>,
    allow_insecure: bool,
    match_expr: Option<CelExpr>,
    body: Option<BodyCheck>,
    /// Whether a decision on this rule needs the body: a `body` check, or
    /// a `match` or transform that reads or sets it.
    needs_body: bool,
    /// The body limit when `needs_body`: `body.max_bytes`, or the default.
    body_limit: usize,
    /// The `auth` transforms that fire when this rule admits, in order.
    auth: Vec<AuthStep>,
    /// Every transform that fires when this rule admits, in order.
    steps: Vec<TransformStep>,
    budgets: Vec<BudgetRef>,
}

impl Policy {
    /// Merges and compiles a workspace's effective policy.
    ///
    /// Order is the provider's capabilities, then the role's. A role
    /// capability with the name of a provider capability replaces it in
    /// place; role capabilities whose names start with `_` are ignored,
    /// so the platform's `_provider` always stays. A later capability with
    /// a name already taken in the same list is ignored.
    pub fn compile(provider: Vec<Capability>, role: Vec<Capability>) -> Policy {
        let caps = merge(provider, role);
        let version = format!("sha256:{}", hex(&Sha256::digest(to_yaml(&caps).as_bytes())));

        let mut rules = Vec::new();
        let mut hosts = HostIndex::default();
        for cap in &caps {
            let transforms: Vec<Arc<Transform>> =
                cap.transforms.iter().cloned().map(Arc::new).collect();
            for (i, rule) in cap.allow.iter().enumerate() {
                let id = u32::try_from(rules.len()).expect("fewer than 2^32 rules");
                for domain in &rule.domains {
                    hosts.insert(domain, id);
                }
                rules.push(compile_rule(cap, &transforms, i));
            }
        }

        let match_fields = rules
            .iter()
            .filter_map(|r| r.match_expr.as_ref())
            .fold(0, |fields, e| fields | e.request_fields());
        debug!(capabilities = caps.len(), rules = rules.len(), version = %version, "policy compiled");
        Policy {
            caps,
            version,
            rules,
            hosts,
            match_fields,
        }
    }

    /// `sha256:<hex>` of the canonical YAML of the merged capabilities:
    /// equal policies have equal versions, on any machine.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The merged capabilities, in evaluation order.
    pub fn capabilities(&self) -> &[Capability] {
        &self.caps
    }

    /// Whether some domain pattern could match `host` on any port: the DNS
    /// resolver's question. `host` is normalised first (a port in it is
    /// ignored); an invalid name is `false`.
    pub fn admits_name(&self, host: &str) -> bool {
        match normalize_host(host) {
            Ok((host, _)) => !self.hosts.candidates(&host).is_empty(),
            Err(_) => false,
        }
    }

    /// Whether some rule could admit a connection to `host:port`: the
    /// connection-level check made on the ClientHello (or on a plain-HTTP
    /// connection, `tls = false`, which only `allow_insecure` rules admit).
    /// A port inside `host` must equal `port`.
    pub fn admits_host(&self, host: &str, port: u16, tls: bool) -> bool {
        let host = match normalize_host(host) {
            Ok((host, None)) => host,
            Ok((host, Some(p))) if p == port => host,
            _ => return false,
        };
        self.hosts.candidates(&host).iter().any(|slot| {
            let rule = &self.rules[slot.rule as usize];
            port_fits(slot.port, port, tls) && (tls || rule.allow_insecure)
        })
    }
}

/// Provider capabilities, then role capabilities (see [`Policy::compile`]).
fn merge(provider: Vec<Capability>, role: Vec<Capability>) -> Vec<Capability> {
    let mut caps: Vec<Capability> = Vec::with_capacity(provider.len() + role.len());
    let mut index: HashMap<String, usize> = HashMap::new();
    for cap in provider {
        if !index.contains_key(&cap.name) {
            index.insert(cap.name.clone(), caps.len());
            caps.push(cap);
        }
    }

    let provider_count = caps.len();
    for cap in role {
        if cap.is_platform() {
            warn!(capability = %cap.name, "role capability with a reserved name ignored");
            continue;
        }
        match index.get(&cap.name) {
            Some(&i) if i < provider_count => caps[i] = cap,
            Some(_) => {}
            None => {
                index.insert(cap.name.clone(), caps.len());
                caps.push(cap);
            }
        }
    }
    caps
}

/// Flattens rule `index` of `cap`; `transforms` are the capability's,
/// shared by its rules.
fn compile_rule(cap: &Capability, transforms: &[Arc<Transform>], index: usize) -> CompiledRule {
    let rule = &cap.allow[index];
    let label = rule
        .name
        .clone()
        .unwrap_or_else(|| format!("allow[{index}]"));
    let steps: Vec<TransformStep> = transforms
        .iter()
        .filter(|t| t.applies_to_rule(rule.name.as_deref()))
        .map(|t| TransformStep::new(&cap.name, Arc::clone(t)))
        .collect();
    let auth = steps
        .iter()
        .filter_map(|s| match &s.transform().action {
            TransformAction::Auth { credential } => Some(AuthStep {
                transform: s.name().to_owned(),
                credential: credential.clone(),
            }),
            _ => None,
        })
        .collect();
    let budgets = cap
        .budgets
        .iter()
        .map(|(counter, budget)| BudgetRef {
            capability: cap.name.clone(),
            counter: *counter,
            budget: *budget,
        })
        .collect();

    let needs_body = rule.body.is_some()
        || rule.match_expr.as_ref().is_some_and(CelExpr::reads_body)
        || steps.iter().any(TransformStep::reads_body);
    CompiledRule {
        capability: cap.name.clone(),
        label,
        methods: rule.methods.iter().fold(0, |bits, m| bits | m.bit()),
        paths: rule.paths.clone(),
        allow_insecure: rule.allow_insecure,
        match_expr: rule.match_expr.clone(),
        body: rule.body.clone(),
        needs_body,
        body_limit: rule
            .body
            .as_ref()
            .map_or(DEFAULT_BODY_MAX_BYTES, |b| b.max_bytes),
        auth,
        steps,
        budgets,
    }
}

impl CompiledRule {
    fn admits_method(&self, method: Option<Method>) -> bool {
        method.is_some_and(|m| self.methods & m.bit() != 0)
    }

    fn admits_path(&self, segments: &[&str]) -> bool {
        self.paths.is_empty() || self.paths.iter().any(|p| p.matches_segments(segments))
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}
