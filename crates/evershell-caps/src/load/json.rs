//! YAML nodes as JSON values, for `body.json_schema`: quoted scalars are
//! strings; plain scalars follow the YAML 1.2 core schema (null, booleans,
//! integers, floats, else strings).

use super::tree::Node;
use super::{unique_entries, Errors};

/// The JSON value of `node`; `None` after reporting a problem (a float
/// that JSON cannot hold, a duplicate key).
pub(super) fn to_json(node: &Node, path: &str, errs: &mut Errors) -> Option<serde_json::Value> {
    match node {
        Node::Scalar { text, plain, .. } => {
            if !*plain {
                return Some(serde_json::Value::String(text.clone()));
            }
            plain_scalar(text).or_else(|| {
                let msg = format!("{text:?} is a number JSON cannot represent");
                errs.push(path, node.mark(), msg);
                None
            })
        }
        Node::Seq { items, .. } => {
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match to_json(item, &format!("{path}[{i}]"), errs) {
                    Some(v) => out.push(v),
                    None => ok = false,
                }
            }
            ok.then_some(serde_json::Value::Array(out))
        }
        Node::Map { entries, .. } => {
            let mut out = serde_json::Map::new();
            let mut ok = true;
            for e in unique_entries(entries, path, errs) {
                match to_json(&e.value, &format!("{path}.{}", e.key), errs) {
                    Some(v) => {
                        out.insert(e.key.clone(), v);
                    }
                    None => ok = false,
                }
            }
            ok.then_some(serde_json::Value::Object(out))
        }
    }
}

/// A plain scalar by the core schema; `None` for `.inf` and `.nan`.
fn plain_scalar(text: &str) -> Option<serde_json::Value> {
    use serde_json::Value;
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    let lower = text.to_ascii_lowercase();
    if matches!(lower.trim_start_matches(['+', '-']), ".inf" | ".nan") {
        return None;
    }
    if is_integer(text) {
        if let Ok(i) = text.parse::<i64>() {
            return Some(Value::from(i));
        }
        if let Ok(u) = text.trim_start_matches('+').parse::<u64>() {
            return Some(Value::from(u));
        }
    }
    if is_float(text) {
        if let Some(n) = text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            return Some(Value::Number(n));
        }
    }
    Some(Value::String(text.to_owned()))
}

/// `[-+]?[0-9]+`
fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float(text: &str) -> bool {
    let s = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => digits(int) && digits(f) && !(int.is_empty() && f.is_empty()),
        None => !int.is_empty() && digits(int),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}
