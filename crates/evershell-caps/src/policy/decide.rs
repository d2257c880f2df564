//! The decision function: one request's facts in, allow or deny out, with
//! the rule that admitted it or why each candidate rule refused.
//!
//! A decision walks the candidate rules (those whose domain matches the
//! host) in document order, each through the same stages: port, scheme,
//! method, path, body, `match`. The first rule to pass them all admits.
//! A rule that needs the body (a `body:` check, a `match` or transform
//! reading `request.body`, a `set_body`) cannot be judged from the head
//! alone: [`Policy::decide`] then stops and asks for the body
//! (`needs_body`), and [`Policy::decide_with_body`] runs the same walk with
//! it.

use std::cell::{Cell, OnceCell};

use crate::cel::{includes_body, Activation, RequestFields};
use crate::host::{normalize_host, port_fits};
use crate::model::Method;
use crate::path::{canonicalize_path, split_segments};

use super::decision::{Decision, Refusal};
use super::facts::{RequestFacts, Scheme};
use super::index::Slot;
use super::{CompiledRule, Policy};

/// Whether the body is known to a decision.
#[derive(Debug, Clone, Copy)]
pub(super) enum BodyInput<'b> {
    /// `decide`: rules that need the body make the decision wait for it.
    Unknown,
    /// `decide_with_body`: the body, or its first `limit + 1` bytes.
    Given(&'b [u8]),
}

/// A decision and, when it waits for the body, the rule that asked.
pub(super) struct Outcome {
    pub decision: Decision,
    pub pending: Option<usize>,
}

/// The request as the rules see it, computed once per decision.
struct Probe<'a> {
    facts: &'a RequestFacts<'a>,
    /// `None` for a method outside the closed set (no rule admits it).
    method: Option<Method>,
    tls: bool,
    host: &'a str,
    path: &'a str,
    segments: Vec<&'a str>,
    body: BodyInput<'a>,
    /// The body parsed as JSON, once (`None`: absent or not JSON).
    json: OnceCell<Option<serde_json::Value>>,
    /// CEL variables, built on the first rule with a `match`, with the
    /// `request` fields in `fields`.
    activation: OnceCell<Result<Activation, String>>,
    fields: RequestFields,
    validations: Cell<u32>,
}

/// How far a candidate rule got before refusing; the deny reason is the
/// furthest stage reached by any candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Port,
    Scheme,
    Method,
    Path,
    Body,
    Match,
}

/// One rule's verdict.
enum Verdict {
    Admit,
    Refuse {
        stage: Stage,
        reason: String,
        why: String,
    },
    /// Needs the body, which is not known yet.
    NeedsBody,
}

impl Policy {
    /// Decides one request from its head. Default deny; the first
    /// admitting rule in document order wins. When a candidate rule needs
    /// the body before any rule admits, the decision is a deny with
    /// `needs_body: Some(limit)` and reason `body_required`: call
    /// [`Policy::decide_with_body`]. Never panics on hostile input.
    pub fn decide(&self, req: &RequestFacts<'_>) -> Decision {
        self.run(req, BodyInput::Unknown).decision
    }

    /// Decides one request with its body: the whole body, or (when it is
    /// longer than the limit `decide` reported) its first `limit + 1`
    /// bytes, which is enough to refuse it as `body_too_large`. An empty
    /// slice is an empty body. The body is parsed as JSON once; a body
    /// that does not parse is `request.body == null` in CEL and refused by
    /// a `json_schema` check as `body_not_json`.
    pub fn decide_with_body(&self, req: &RequestFacts<'_>, body: &[u8]) -> Decision {
        self.run(req, BodyInput::Given(body)).decision
    }

    pub(super) fn run(&self, req: &RequestFacts<'_>, body: BodyInput<'_>) -> Outcome {
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
            _ => return Outcome::done(d),
        }
        let Some(canonical) = d.canonical_path.clone() else {
            d.reason = "invalid_path".to_owned();
            return Outcome::done(d);
        };

        let host = d.host.clone();
        let probe = Probe {
            facts: req,
            method: Method::parse(req.method),
            tls: req.scheme == Scheme::Https,
            host: &host,
            path: &canonical,
            segments: split_segments(&canonical),
            body,
            json: OnceCell::new(),
            activation: OnceCell::new(),
            fields: self.match_fields,
            validations: Cell::new(0),
        };
        let candidates = self.hosts.candidates(&d.host);
        let pending = self.evaluate(&mut d, &candidates, &probe);
        d.validations_applied = probe.validations.get();
        Outcome {
            decision: d,
            pending,
        }
    }

    /// Walks the candidate rules in order and fills in the outcome; returns
    /// the rule that waits for the body, if any.
    fn evaluate(&self, d: &mut Decision, candidates: &[Slot], probe: &Probe<'_>) -> Option<usize> {
        let mut furthest: Option<(Stage, String)> = None;
        let groups: Vec<&[Slot]> = candidates.chunk_by(|a, b| a.rule == b.rule).collect();
        for (i, group) in groups.iter().enumerate() {
            let rule = &self.rules[group[0].rule as usize];
            let port_ok = group
                .iter()
                .any(|s| port_fits(s.port, probe.port(), probe.tls));
            match probe.verdict(rule, port_ok) {
                Verdict::Admit => {
                    d.allow(rule);
                    return None;
                }
                Verdict::NeedsBody => {
                    d.reason = "body_required".to_owned();
                    d.needs_body = Some(self.body_limit_from(&groups[i..], probe));
                    return Some(group[0].rule as usize);
                }
                Verdict::Refuse { stage, reason, why } => {
                    if furthest.as_ref().is_none_or(|(s, _)| stage > *s) {
                        furthest = Some((stage, reason));
                    }
                    d.refusals.push(Refusal {
                        capability: rule.capability.clone(),
                        rule: rule.label.clone(),
                        why,
                    });
                }
            }
        }

        d.reason = match furthest {
            None if self.rules.is_empty() => "no_matching_rule".to_owned(),
            None => "host_not_allowed".to_owned(),
            Some((_, reason)) => reason,
        };
        None
    }

    /// The largest body limit among `groups` whose rules pass the head
    /// stages and need the body.
    fn body_limit_from(&self, groups: &[&[Slot]], probe: &Probe<'_>) -> usize {
        groups
            .iter()
            .filter_map(|group| {
                let rule = &self.rules[group[0].rule as usize];
                let port_ok = group
                    .iter()
                    .any(|s| port_fits(s.port, probe.port(), probe.tls));
                (rule.needs_body && probe.head_refusal(rule, port_ok).is_none())
                    .then_some(rule.body_limit)
            })
            .max()
            .unwrap_or(0)
    }
}

impl Outcome {
    fn done(decision: Decision) -> Outcome {
        Outcome {
            decision,
            pending: None,
        }
    }
}

impl Probe<'_> {
    fn port(&self) -> u16 {
        self.facts.port
    }

    /// Checks one candidate rule stage by stage.
    fn verdict(&self, rule: &CompiledRule, port_ok: bool) -> Verdict {
        if let Some((stage, reason, why)) = self.head_refusal(rule, port_ok) {
            return Verdict::Refuse {
                stage,
                reason: reason.to_owned(),
                why,
            };
        }
        if rule.needs_body {
            let BodyInput::Given(body) = self.body else {
                return Verdict::NeedsBody;
            };
            if let Some(refusal) = self.body_refusal(rule, body) {
                return refusal;
            }
        }
        match &rule.match_expr {
            Some(expr) => self.match_verdict(expr),
            None => Verdict::Admit,
        }
    }

    /// The stages decided by the request head: port, scheme, method, path.
    fn head_refusal(
        &self,
        rule: &CompiledRule,
        port_ok: bool,
    ) -> Option<(Stage, &'static str, String)> {
        if !port_ok {
            let why = format!("port {} is not admitted by its domains", self.port());
            return Some((Stage::Port, "host_not_allowed", why));
        }
        if !self.tls && !rule.allow_insecure {
            let why = "plain http needs allow_insecure: true".to_owned();
            return Some((Stage::Scheme, "insecure_not_allowed", why));
        }
        if !rule.admits_method(self.method) {
            let allowed: Vec<&str> = Method::ALL
                .iter()
                .filter(|m| rule.admits_method(Some(**m)))
                .map(|m| m.as_str())
                .collect();
            let why = format!(
                "method {:?} is not one of [{}]",
                self.facts.method,
                allowed.join(", ")
            );
            return Some((Stage::Method, "method_not_allowed", why));
        }
        if !rule.admits_path(&self.segments) {
            let patterns: Vec<&str> = rule.paths.iter().map(|p| p.as_str()).collect();
            let why = format!(
                "path {} matches none of [{}]",
                self.path,
                patterns.join(", ")
            );
            return Some((Stage::Path, "path_not_allowed", why));
        }
        None
    }

    /// The body stage: size limit, then the schema.
    fn body_refusal(&self, rule: &CompiledRule, body: &[u8]) -> Option<Verdict> {
        let refuse = |reason: &str, why: String| Verdict::Refuse {
            stage: Stage::Body,
            reason: reason.to_owned(),
            why,
        };
        if body.len() > rule.body_limit {
            let why = format!("body is over the {}-byte limit", rule.body_limit);
            return Some(refuse("body_too_large", why));
        }
        let check = rule.body.as_ref()?;
        let result = check.verify(body, self.json());
        let validated = match &result {
            Ok(validated) => *validated,
            Err((reason, _)) => *reason == "body_invalid",
        };
        self.validations
            .set(self.validations.get() + u32::from(validated));
        result.err().map(|(reason, why)| refuse(reason, why))
    }

    fn match_verdict(&self, expr: &crate::cel::CelExpr) -> Verdict {
        let refuse = |reason: String, why: String| Verdict::Refuse {
            stage: Stage::Match,
            reason,
            why,
        };
        let result = match self.activation() {
            Ok(vars) => expr.eval_bool(vars),
            Err(e) => Err(e.clone()),
        };
        match result {
            Ok(true) => Verdict::Admit,
            Ok(false) => refuse(
                "match_not_satisfied".to_owned(),
                format!("match is false: {}", expr.source()),
            ),
            Err(e) => refuse(format!("cel_error: {e}"), format!("match failed: {e}")),
        }
    }

    /// The body parsed as JSON; `None` without a body or when it is not
    /// JSON.
    fn json(&self) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| match self.body {
                BodyInput::Given(bytes) if !bytes.is_empty() => serde_json::from_slice(bytes).ok(),
                _ => None,
            })
            .as_ref()
    }

    fn activation(&self) -> &Result<Activation, String> {
        self.activation.get_or_init(|| {
            // Parse the body only when some expression reads it.
            let body = if includes_body(self.fields) {
                self.json()
            } else {
                None
            };
            Activation::build(self.facts, self.host, self.path, body, self.fields)
        })
    }
}
