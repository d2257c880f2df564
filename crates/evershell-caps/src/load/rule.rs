//! Allow rules: `name`, `domains`, `methods`, `paths`, `allow_insecure`,
//! `match`, `body`. The same fields serve a canonical rule and a shorthand
//! capability.

use std::collections::HashSet;

use crate::body::BodyCheck;
use crate::cel::{CelExpr, CelRole};
use crate::host::HostPattern;
use crate::model::{AllowRule, Method};
use crate::path::PathPattern;

use super::body::load_body;
use super::expr;
use super::scalar;
use super::tree::{Entry, Mark, Node};
use super::{expect_map, unknown_key, Errors};

/// Keys of an allow rule.
pub(super) const RULE_KEYS: &[&str] = &[
    "name",
    "domains",
    "methods",
    "paths",
    "allow_insecure",
    "match",
    "body",
];

/// The rule fields seen so far; `None` where absent or invalid.
#[derive(Default)]
pub(super) struct RuleDraft {
    domains: Option<Vec<HostPattern>>,
    methods: Option<Vec<Method>>,
    paths: Vec<PathPattern>,
    allow_insecure: bool,
    match_expr: Option<CelExpr>,
    body: Option<BodyCheck>,
    /// Whether `domains` / `methods` were written at all (even invalid),
    /// so a missing field is reported only when it is really missing.
    saw_domains: bool,
    saw_methods: bool,
}

/// Loads `allow:` (a non-empty list of rule mappings).
pub(super) fn load_rules(node: &Node, path: &str, errs: &mut Errors) -> Vec<AllowRule> {
    let example = "[{domains: [example.com], methods: [GET]}]";
    let Some(items) = scalar::non_empty_list(node, path, example, errs) else {
        return Vec::new();
    };
    let mut rules: Vec<AllowRule> = Vec::with_capacity(items.len());
    let mut names: HashSet<String> = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let rule_path = format!("{path}[{i}]");
        let Some(rule) = load_rule(item, &rule_path, errs) else {
            continue;
        };
        if let Some(name) = &rule.name {
            if !names.insert(name.clone()) {
                let mark = name_mark(item).unwrap_or(item.mark());
                let msg = format!("duplicate rule name {name:?} in this capability");
                errs.push(&format!("{rule_path}.name"), mark, msg);
            }
        }
        rules.push(rule);
    }
    rules
}

/// The position of a mapping's `name` value.
fn name_mark(node: &Node) -> Option<Mark> {
    match node {
        Node::Map { entries, .. } => entries
            .iter()
            .find(|e| e.key == "name")
            .map(|e| e.value.mark()),
        _ => None,
    }
}

fn load_rule(node: &Node, path: &str, errs: &mut Errors) -> Option<AllowRule> {
    let entries = expect_map(node, path, "an allow rule (a mapping)", errs)?;
    let mut draft = RuleDraft::default();
    let mut name = None;
    for e in entries {
        let field = format!("{path}.{}", e.key);
        if e.key == "name" {
            name = scalar::identifier(&e.value, &field, true, errs);
        } else if !draft.take(e, &field, errs) {
            unknown_key(errs, &field, &e.key, e.key_mark, &RULE_KEYS.join(", "));
        }
    }
    draft.finish(name, path, node.mark(), errs)
}

impl RuleDraft {
    /// Takes one rule field other than `name`. `false` when the key is not
    /// a rule field at all (the caller decides what that means).
    pub(super) fn take(&mut self, e: &Entry, field: &str, errs: &mut Errors) -> bool {
        match e.key.as_str() {
            "domains" => {
                self.saw_domains = true;
                self.domains = load_domains(&e.value, field, errs);
            }
            "methods" => {
                self.saw_methods = true;
                self.methods = load_methods(&e.value, field, errs);
            }
            "paths" => self.paths = load_paths(&e.value, field, errs),
            "allow_insecure" => {
                self.allow_insecure = scalar::boolean(&e.value, field, errs).unwrap_or(false);
            }
            "match" => self.match_expr = expr::cel(&e.value, field, CelRole::Match, errs),
            "body" => self.body = load_body(&e.value, field, errs),
            _ => return false,
        }
        true
    }

    /// Checks required fields and builds the rule.
    pub(super) fn finish(
        self,
        name: Option<String>,
        path: &str,
        mark: Mark,
        errs: &mut Errors,
    ) -> Option<AllowRule> {
        if !self.saw_domains {
            errs.push(
                path,
                mark,
                "missing \"domains\" (e.g. domains: [example.com])",
            );
        }
        if !self.saw_methods {
            errs.push(path, mark, "missing \"methods\" (e.g. methods: [GET])");
        }
        Some(AllowRule {
            name,
            domains: self.domains?,
            methods: self.methods?,
            paths: self.paths,
            allow_insecure: self.allow_insecure,
            match_expr: self.match_expr,
            body: self.body,
        })
    }
}

fn load_domains(node: &Node, path: &str, errs: &mut Errors) -> Option<Vec<HostPattern>> {
    let items = scalar::non_empty_list(node, path, "[example.com]", errs)?;
    let mut out: Vec<HostPattern> = Vec::with_capacity(items.len());
    let mut seen: HashSet<HostPattern> = HashSet::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let field = format!("{path}[{i}]");
        let Some(text) = scalar::string(item, &field, errs) else {
            ok = false;
            continue;
        };
        match HostPattern::parse(text) {
            Ok(p) if seen.contains(&p) => {
                errs.push(&field, item.mark(), format!("duplicate domain {text:?}"));
                ok = false;
            }
            Ok(p) => {
                seen.insert(p.clone());
                out.push(p);
            }
            Err(e) => {
                errs.push(&field, item.mark(), format!("domain {text:?}: {e}"));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn load_methods(node: &Node, path: &str, errs: &mut Errors) -> Option<Vec<Method>> {
    let items = scalar::non_empty_list(node, path, "[GET, POST]", errs)?;
    let mut out: Vec<Method> = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let field = format!("{path}[{i}]");
        let Some(text) = scalar::string(item, &field, errs) else {
            ok = false;
            continue;
        };
        match Method::parse(text) {
            Some(m) if out.contains(&m) => {
                errs.push(&field, item.mark(), format!("duplicate method {text:?}"));
                ok = false;
            }
            Some(m) => out.push(m),
            None => {
                errs.push(&field, item.mark(), unknown_method(text));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// The message for a method outside the closed set, with the upper-case
/// hint when that is all that is wrong.
fn unknown_method(text: &str) -> String {
    let upper = text.to_ascii_uppercase();
    if Method::parse(&upper).is_some() {
        format!("unknown method {text:?} (methods are upper-case: {upper})")
    } else {
        let all: Vec<&str> = Method::ALL.iter().map(|m| m.as_str()).collect();
        format!(
            "unknown method {text:?} (expected one of: {})",
            all.join(", ")
        )
    }
}

fn load_paths(node: &Node, path: &str, errs: &mut Errors) -> Vec<PathPattern> {
    let Some(items) = scalar::list(node, path, "[/api/v4/projects/**]", errs) else {
        return Vec::new();
    };
    let mut out: Vec<PathPattern> = Vec::with_capacity(items.len());
    let mut seen: HashSet<String> = HashSet::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("{path}[{i}]");
        let Some(text) = scalar::string(item, &field, errs) else {
            continue;
        };
        match PathPattern::parse(text) {
            Ok(p) if seen.contains(p.as_str()) => {
                errs.push(&field, item.mark(), format!("duplicate path {text:?}"));
            }
            Ok(p) => {
                seen.insert(p.as_str().to_owned());
                out.push(p);
            }
            Err(e) => errs.push(&field, item.mark(), format!("path {text:?}: {e}")),
        }
    }
    out
}
