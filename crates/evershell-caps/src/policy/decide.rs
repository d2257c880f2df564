//! The decision function: one request's facts in, allow or deny out, with
//! the rule that admitted it or why each candidate rule refused.

use crate::host::{normalize_host, port_fits};
use crate::model::Method;
use crate::path::{canonicalize_path, split_segments};

use super::index::Slot;
use super::{CompiledRule, Policy};

/// How the agent's request reached the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// TLS terminated by the proxy.
    Https,
    /// Plain HTTP: admitted only by rules with `allow_insecure: true`.
    Http,
}

/// What the proxy knows about a request when it decides.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The method exactly as sent (methods are case-sensitive).
    pub method: &'a str,
    pub scheme: Scheme,
    /// Raw `Host` / `:authority` / SNI; may carry a port, a trailing dot or
    /// upper case. A port in it must equal `port`.
    pub host: &'a str,
    /// The port the agent connected to (the upstream port).
    pub port: u16,
    /// Raw origin-form request target: path plus optional `?query`.
    pub target: &'a str,
}

/// The outcome of [`Policy::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// `allowed`, or the deny reason: `invalid_host`, `invalid_path`,
    /// `host_not_allowed` (no rule's domain and port fit),
    /// `insecure_not_allowed`, `method_not_allowed`, `path_not_allowed`
    /// (the furthest stage any candidate rule reached), or
    /// `no_matching_rule` (the policy has no rules at all).
    pub reason: String,
    /// The normalised host without port (the raw host for `invalid_host`).
    pub host: String,
    /// The canonical path without query, when the path was valid.
    pub canonical_path: Option<String>,
    /// Canonical path plus the original `?query`: exactly what must be
    /// forwarded upstream.
    pub forward_target: Option<String>,
    /// The admitting capability and rule (name, or `allow[i]`).
    pub capability: Option<String>,
    pub rule: Option<String>,
    /// The `auth` transforms that fire on this allowed request, in order.
    pub auth: Vec<AuthStep>,
    /// Candidate rules (their domain matched the host) that refused, in
    /// document order, for `explain` and audit.
    pub refusals: Vec<Refusal>,
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

/// The request as the rules see it, computed once per decision.
struct Probe<'a> {
    /// `None` for a method outside the closed set (no rule admits it).
    method: Option<Method>,
    raw_method: &'a str,
    tls: bool,
    port: u16,
    path: &'a str,
    segments: Vec<&'a str>,
}

/// How far a candidate rule got before refusing; the deny reason is the
/// furthest stage reached by any candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Port,
    Scheme,
    Method,
    Path,
}

impl Policy {
    /// Decides one request. Default deny; the first admitting rule in
    /// document order wins. Never panics on hostile input.
    pub fn decide(&self, req: &RequestFacts<'_>) -> Decision {
        let mut d = Decision::deny("invalid_host", req.host.to_owned());
        let (raw_path, query) = match req.target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (req.target, None),
        };
        let query_ok = query.is_none_or(|q| q.bytes().all(|b| b.is_ascii_graphic() && b != b'#'));
        if let (Ok(canonical), true) = (canonicalize_path(raw_path), query_ok) {
            d.forward_target = Some(match query {
                Some(q) => format!("{canonical}?{q}"),
                None => canonical.clone(),
            });
            d.canonical_path = Some(canonical);
        }

        match normalize_host(req.host) {
            Ok((host, port)) if port.is_none_or(|p| p == req.port) => d.host = host,
            _ => return d,
        }
        let Some(canonical) = d.canonical_path.clone() else {
            d.reason = "invalid_path".to_owned();
            return d;
        };

        let probe = Probe {
            method: Method::parse(req.method),
            raw_method: req.method,
            tls: req.scheme == Scheme::Https,
            port: req.port,
            path: &canonical,
            segments: split_segments(&canonical),
        };
        let candidates = self.hosts.candidates(&d.host);
        self.evaluate(&mut d, &candidates, &probe);
        d
    }

    /// Walks the candidate rules in order and fills in the outcome.
    fn evaluate(&self, d: &mut Decision, candidates: &[Slot], probe: &Probe<'_>) {
        let mut furthest: Option<Stage> = None;
        for group in candidates.chunk_by(|a, b| a.rule == b.rule) {
            let rule = &self.rules[group[0].rule as usize];
            let port_ok = group
                .iter()
                .any(|s| port_fits(s.port, probe.port, probe.tls));
            let Some((stage, why)) = probe.refusal(rule, port_ok) else {
                d.allow(rule);
                return;
            };
            furthest = furthest.max(Some(stage));
            d.refusals.push(Refusal {
                capability: rule.capability.clone(),
                rule: rule.label.clone(),
                why,
            });
        }

        d.reason = match furthest {
            None if self.rules.is_empty() => "no_matching_rule",
            None | Some(Stage::Port) => "host_not_allowed",
            Some(Stage::Scheme) => "insecure_not_allowed",
            Some(Stage::Method) => "method_not_allowed",
            Some(Stage::Path) => "path_not_allowed",
        }
        .to_owned();
    }
}

impl Probe<'_> {
    /// Checks one candidate rule stage by stage; `None` when it admits.
    fn refusal(&self, rule: &CompiledRule, port_ok: bool) -> Option<(Stage, String)> {
        if !port_ok {
            let why = format!("port {} is not admitted by its domains", self.port);
            return Some((Stage::Port, why));
        }
        if !self.tls && !rule.allow_insecure {
            let why = "plain http needs allow_insecure: true".to_owned();
            return Some((Stage::Scheme, why));
        }
        if !rule.admits_method(self.method) {
            let allowed: Vec<&str> = Method::ALL
                .iter()
                .filter(|m| rule.admits_method(Some(**m)))
                .map(|m| m.as_str())
                .collect();
            let why = format!(
                "method {:?} is not one of [{}]",
                self.raw_method,
                allowed.join(", ")
            );
            return Some((Stage::Method, why));
        }
        if !rule.admits_path(&self.segments) {
            let patterns: Vec<&str> = rule.paths.iter().map(|p| p.as_str()).collect();
            let why = format!(
                "path {} matches none of [{}]",
                self.path,
                patterns.join(", ")
            );
            return Some((Stage::Path, why));
        }
        None
    }
}

impl Decision {
    fn deny(reason: &str, host: String) -> Decision {
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
        }
    }

    fn allow(&mut self, rule: &CompiledRule) {
        self.allowed = true;
        self.reason = "allowed".to_owned();
        self.capability = Some(rule.capability.clone());
        self.rule = Some(rule.label.clone());
        self.auth = rule.auth.clone();
    }
}
