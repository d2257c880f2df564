//! The canonical caps.yaml text: what `evershell caps fmt` prints and what
//! a policy's version hashes.
//!
//! Canonical means: every capability in long form with `type: http`, keys
//! in a fixed order, lists in flow style, defaults (`allow_insecure:
//! false`, empty `paths`, empty `transforms`) omitted, and scalars quoted
//! only when plain YAML could misread them.

use std::fmt::Write;

use crate::model::{AllowRule, Capability, CapabilityType, Transform, TransformAction};

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
