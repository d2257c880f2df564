//! The canonical caps.yaml text: what `evershell caps fmt` prints and what
//! a policy's version hashes.
//!
//! Canonical means: every capability in long form with `type: http`, keys
//! in a fixed order, lists in flow style, defaults (`allow_insecure:
//! false`, empty `paths`, empty `transforms`, empty `budgets`, `ceiling:
//! deny`, `max_bytes: 1048576` next to a schema) omitted, and scalars
//! quoted only when plain YAML could misread them. CEL expressions print
//! as written; JSON Schemas print as one-line JSON (which is YAML), keys
//! sorted.

use std::fmt::Write;

use crate::body::{BodyCheck, DEFAULT_BODY_MAX_BYTES};
use crate::budget::{Budget, Ceiling, Counter};
use crate::cel::CelExpr;
use crate::model::{AllowRule, Capability, CapabilityType, Rewrite, Transform, TransformAction};

/// Prints capabilities in canonical form. The output parses back (with
/// [`crate::parse`], for names not starting with `_`) to equal values, and
/// equal values always print the same bytes.
pub fn to_yaml(caps: &[Capability]) -> String {
    if caps.is_empty() {
        return "[]\n".to_owned();
    }
    let mut out = String::new();
    for cap in caps {
        write_capability(&mut out, cap);
    }
    out
}

fn write_capability(out: &mut String, cap: &Capability) {
    let kind = match cap.kind {
        CapabilityType::Http => "http",
    };
    line(out, 0, &format!("- name: {}", scalar(&cap.name)));
    line(out, 2, &format!("type: {kind}"));
    if cap.allow.is_empty() {
        line(out, 2, "allow: []");
    } else {
        line(out, 2, "allow:");
        for rule in &cap.allow {
            write_rule(out, rule);
        }
    }
    if !cap.transforms.is_empty() {
        line(out, 2, "transforms:");
        for t in &cap.transforms {
            write_transform(out, t);
        }
    }
    if !cap.budgets.is_empty() {
        line(out, 2, "budgets:");
        for (counter, budget) in &cap.budgets {
            line(out, 4, &budget_line(*counter, budget));
        }
    }
}

fn budget_line(counter: Counter, budget: &Budget) -> String {
    let mut text = format!(
        "{counter}: {{limit: {}, per: {}",
        budget.limit,
        budget.per.as_str()
    );
    if budget.ceiling != Ceiling::Deny {
        let _ = write!(text, ", ceiling: {}", budget.ceiling.as_str());
    }
    text.push('}');
    text
}

fn write_rule(out: &mut String, rule: &AllowRule) {
    // The first key of a list item carries the "- ".
    let mut first = true;
    let mut field = |out: &mut String, text: String| {
        let indent = if first { "    - " } else { "      " };
        first = false;
        let _ = writeln!(out, "{indent}{text}");
    };
    if let Some(name) = &rule.name {
        field(out, format!("name: {}", scalar(name)));
    }
    field(
        out,
        format!(
            "domains: {}",
            flow(rule.domains.iter().map(|d| d.to_string()))
        ),
    );
    field(
        out,
        format!(
            "methods: {}",
            flow(rule.methods.iter().map(|m| m.as_str().to_owned()))
        ),
    );
    if !rule.paths.is_empty() {
        field(
            out,
            format!(
                "paths: {}",
                flow(rule.paths.iter().map(|p| p.as_str().to_owned()))
            ),
        );
    }
    if rule.allow_insecure {
        field(out, "allow_insecure: true".to_owned());
    }
    if let Some(expr) = &rule.match_expr {
        field(out, format!("match: {}", cel_scalar(expr.source())));
    }
    if let Some(body) = &rule.body {
        field(out, format!("body: {}", body_flow(body)));
    }
}

/// `{json_schema: {...}, max_bytes: N}` on one line.
fn body_flow(body: &BodyCheck) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(schema) = &body.json_schema {
        parts.push(format!("json_schema: {}", json_flow(schema.document())));
    }
    if body.json_schema.is_none() || body.max_bytes != DEFAULT_BODY_MAX_BYTES {
        parts.push(format!("max_bytes: {}", body.max_bytes));
    }
    format!("{{{}}}", parts.join(", "))
}

/// JSON with `, ` and `: ` separators: a YAML flow node that reads back to
/// the same value.
fn json_flow(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_json(&mut out, value);
    out
}

fn write_json(out: &mut String, value: &serde_json::Value) {
    match value {
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(out, item);
            }
            out.push(']');
        }
        serde_json::Value::Object(fields) => {
            out.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push_str(": ");
                write_json(out, v);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_transform(out: &mut String, t: &Transform) {
    line(out, 4, &format!("- name: {}", scalar(&t.name)));
    if let Some(targets) = &t.applies_to {
        line(
            out,
            6,
            &format!("applies_to: {}", flow(targets.iter().cloned())),
        );
    }
    match &t.action {
        TransformAction::Auth { credential } => {
            line(out, 6, &format!("auth: {}", scalar(credential)));
        }
        TransformAction::Rewrite(r) => write_rewrite(out, r),
    }
}

/// The rewrite keys in application order.
fn write_rewrite(out: &mut String, r: &Rewrite) {
    if !r.remove_headers.is_empty() {
        let names = flow(r.remove_headers.iter().cloned());
        line(out, 6, &format!("remove_headers: {names}"));
    }
    write_cel_map(out, "set_headers", &r.set_headers);
    if !r.remove_query.is_empty() {
        let names = flow(r.remove_query.iter().cloned());
        line(out, 6, &format!("remove_query: {names}"));
    }
    write_cel_map(out, "set_query", &r.set_query);
    if let Some(rw) = &r.rewrite_path {
        let text = format!(
            "rewrite_path: {{from: {}, to: {}}}",
            scalar(rw.from()),
            scalar(rw.to())
        );
        line(out, 6, &text);
    }
    write_cel_map(out, "set_body", &r.set_body);
}

fn write_cel_map(out: &mut String, key: &str, entries: &[(String, CelExpr)]) {
    if entries.is_empty() {
        return;
    }
    line(out, 6, &format!("{key}:"));
    for (name, expr) in entries {
        line(
            out,
            8,
            &format!("{}: {}", scalar(name), cel_scalar(expr.source())),
        );
    }
}

fn line(out: &mut String, indent: usize, text: &str) {
    let _ = writeln!(out, "{:indent$}{text}", "");
}

/// `[a, b, c]` with each item quoted when needed.
fn flow(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.map(|s| scalar(&s)).collect();
    format!("[{}]", items.join(", "))
}

/// A CEL expression: plain when unambiguous, else single-quoted (CEL's
/// own string literals are usually double-quoted, and need no escaping
/// there), else double-quoted.
fn cel_scalar(s: &str) -> String {
    if is_safe_plain(s) {
        return s.to_owned();
    }
    if !s.contains('\'') && !s.chars().any(char::is_control) {
        return format!("'{s}'");
    }
    scalar(s)
}

/// A scalar, plain when that is unambiguous, double-quoted otherwise.
fn scalar(s: &str) -> String {
    if is_safe_plain(s) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Plain scalars limited to characters that mean nothing to YAML in block
/// or flow context, starting with a letter or `/`, and never a word that a
/// YAML 1.1 or 1.2 reader would turn into a boolean or null.
fn is_safe_plain(s: &str) -> bool {
    let Some(first) = s.bytes().next() else {
        return false;
    };
    let chars_ok = s.bytes().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b'~' | b'%' | b'*')
    });
    // `*` only matters to YAML at the start of a scalar (an alias).
    let start_ok = first.is_ascii_alphabetic() || first == b'/';
    let reserved = matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
    );
    chars_ok && start_ok && !reserved
}
