//! Transforms: `name`, `applies_to` and exactly one action group: `auth`
//! alone, or any of the rewrite keys (`set_headers`, `remove_headers`,
//! `set_query`, `remove_query`, `rewrite_path`, `set_body`).

use std::collections::HashSet;

use crate::cel::{CelExpr, CelRole};
use crate::model::{Rewrite, Transform, TransformAction};
use crate::rewrite::PathRewrite;
use crate::transform::check_pointer;

use super::expr;
use super::scalar;
use super::tree::{Mark, Node};
use super::{expect_map, unknown_key, Errors};

const TRANSFORM_KEYS: &str = "name, applies_to, auth, set_headers, remove_headers, set_query, \
                              remove_query, rewrite_path, set_body";

/// Headers a transform may neither set nor remove: they frame the message
/// or name its destination (RFC 9110 §7.6.1, §7.2; RFC 9112 §6), which the
/// proxy owns.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// A loaded transform with the position of each `applies_to` entry, so that
/// the capability can report names that are not its rules.
pub(super) struct LoadedTransform {
    pub transform: Transform,
    pub name_mark: Mark,
    pub applies_marks: Vec<Mark>,
}

/// The fields of one transform as they are read.
#[derive(Default)]
struct Draft {
    name: Option<String>,
    applies: Option<(Vec<String>, Vec<Mark>)>,
    auth: Option<Option<String>>,
    rewrite: Rewrite,
    /// The first rewrite key seen, and whether every rewrite key loaded.
    rewrite_key: Option<(String, Mark)>,
    rewrite_ok: bool,
}

/// Loads `transforms:` (a list, possibly empty).
pub(super) fn load_transforms(node: &Node, path: &str, errs: &mut Errors) -> Vec<LoadedTransform> {
    let example = "[{name: token, auth: my-credential}]";
    let Some(items) = scalar::list(node, path, example, errs) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| load_transform(item, &format!("{path}[{i}]"), errs))
        .collect()
}

fn load_transform(node: &Node, path: &str, errs: &mut Errors) -> Option<LoadedTransform> {
    let entries = expect_map(node, path, "a transform (a mapping)", errs)?;
    let mut draft = Draft {
        rewrite_ok: true,
        ..Draft::default()
    };
    let mut name_mark = node.mark();
    for e in entries {
        let field = format!("{path}.{}", e.key);
        match e.key.as_str() {
            "name" => {
                draft.name = scalar::identifier(&e.value, &field, true, errs);
                name_mark = e.value.mark();
            }
            "applies_to" => draft.applies = load_applies_to(&e.value, &field, errs),
            "auth" => {
                let credential = scalar::identifier(&e.value, &field, false, errs);
                draft.auth = Some(credential);
            }
            k => {
                if draft.rewrite_key.is_none() && is_rewrite_key(k) {
                    draft.rewrite_key = Some((k.to_owned(), e.key_mark));
                }
                if !take_rewrite(&mut draft.rewrite, k, &e.value, &field, errs) {
                    if is_rewrite_key(k) {
                        draft.rewrite_ok = false;
                    } else {
                        unknown_key(errs, &field, k, e.key_mark, TRANSFORM_KEYS);
                    }
                }
            }
        }
    }

    if !node_has(node, "name") {
        errs.push(path, node.mark(), "missing \"name\"");
    }
    let action = draft.action(path, node.mark(), errs);
    let (applies_to, applies_marks) = match draft.applies {
        Some((names, marks)) => (Some(names), marks),
        None => (None, Vec::new()),
    };
    let transform = Transform {
        name: draft.name?,
        applies_to,
        action: action?,
    };
    Some(LoadedTransform {
        transform,
        name_mark,
        applies_marks,
    })
}

impl Draft {
    /// The action: exactly one action group. Takes the action fields,
    /// leaving the name and `applies_to`.
    fn action(&mut self, path: &str, mark: Mark, errs: &mut Errors) -> Option<TransformAction> {
        match (self.auth.take(), self.rewrite_key.take()) {
            (Some(_), Some((key, key_mark))) => {
                let msg = format!(
                    "{key:?} cannot be combined with \"auth\": a transform has exactly one \
                     action group (auth alone, or header/query/path/body keys)"
                );
                errs.push(&format!("{path}.{key}"), key_mark, msg);
                None
            }
            (Some(credential), None) => {
                credential.map(|credential| TransformAction::Auth { credential })
            }
            (None, Some(_)) => self
                .rewrite_ok
                .then(|| TransformAction::Rewrite(std::mem::take(&mut self.rewrite))),
            (None, None) => {
                errs.push(
                    path,
                    mark,
                    "missing an action (e.g. auth: my-credential, or set_headers: {...})",
                );
                None
            }
        }
    }
}

fn is_rewrite_key(k: &str) -> bool {
    matches!(
        k,
        "set_headers"
            | "remove_headers"
            | "set_query"
            | "remove_query"
            | "rewrite_path"
            | "set_body"
    )
}

/// Loads one rewrite key into `r`. `false` when the key is not a rewrite
/// key or its value was refused (already reported).
fn take_rewrite(r: &mut Rewrite, key: &str, node: &Node, path: &str, errs: &mut Errors) -> bool {
    let loaded = match key {
        "set_headers" => load_cel_map(node, path, header_name, errs).map(|v| r.set_headers = v),
        "remove_headers" => load_names(node, path, header_name, errs).map(|v| r.remove_headers = v),
        "set_query" => load_cel_map(node, path, query_name, errs).map(|v| r.set_query = v),
        "remove_query" => load_names(node, path, query_name, errs).map(|v| r.remove_query = v),
        "rewrite_path" => load_rewrite_path(node, path, errs).map(|v| r.rewrite_path = Some(v)),
        "set_body" => load_cel_map(node, path, body_pointer, errs).map(|v| r.set_body = v),
        _ => None,
    };
    loaded.is_some()
}

/// A non-empty mapping of checked names to CEL values, sorted by name.
fn load_cel_map(
    node: &Node,
    path: &str,
    check: fn(&str) -> Result<String, String>,
    errs: &mut Errors,
) -> Option<Vec<(String, CelExpr)>> {
    let entries = expect_map(node, path, "a mapping of name to CEL expression", errs)?;
    if entries.is_empty() {
        errs.push(path, node.mark(), "must not be empty");
        return None;
    }
    let mut out: Vec<(String, CelExpr)> = Vec::with_capacity(entries.len());
    let mut seen: HashSet<String> = HashSet::with_capacity(entries.len());
    let mut ok = true;
    for e in entries {
        let field = format!("{path}.{}", e.key);
        let name = match check(&e.key) {
            Ok(name) if seen.contains(&name) => {
                errs.push(&field, e.key_mark, format!("duplicate name {:?}", e.key));
                ok = false;
                continue;
            }
            Ok(name) => name,
            Err(msg) => {
                errs.push(&field, e.key_mark, msg);
                ok = false;
                continue;
            }
        };
        match expr::cel(&e.value, &field, CelRole::Value, errs) {
            Some(value) => {
                seen.insert(name.clone());
                out.push((name, value));
            }
            None => ok = false,
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    ok.then_some(out)
}

/// A non-empty list of checked names, in order, without duplicates.
fn load_names(
    node: &Node,
    path: &str,
    check: fn(&str) -> Result<String, String>,
    errs: &mut Errors,
) -> Option<Vec<String>> {
    let items = scalar::non_empty_list(node, path, "[name]", errs)?;
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let field = format!("{path}[{i}]");
        let Some(text) = scalar::string(item, &field, errs) else {
            ok = false;
            continue;
        };
        match check(text) {
            Ok(name) if out.contains(&name) => {
                errs.push(&field, item.mark(), format!("duplicate name {text:?}"));
                ok = false;
            }
            Ok(name) => out.push(name),
            Err(msg) => {
                errs.push(&field, item.mark(), msg);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// An RFC 9110 §5.1 field name (a token), lower-cased; never one the proxy
/// owns.
fn header_name(name: &str) -> Result<String, String> {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(tchar) {
        return Err(format!("{name:?} is not a valid header name"));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED_HEADERS.contains(&lower.as_str()) {
        return Err(format!(
            "header {name:?} belongs to the proxy and cannot be changed by a transform"
        ));
    }
    Ok(lower)
}

/// A query parameter name: non-empty visible ASCII, no `&`, `=` or `#`.
fn query_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'&' | b'=' | b'#'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "{name:?} is not a valid query parameter name (visible ASCII without '&', '=', '#')"
        ))
    }
}

fn body_pointer(pointer: &str) -> Result<String, String> {
    check_pointer(pointer).map(|()| pointer.to_owned())
}

fn load_rewrite_path(node: &Node, path: &str, errs: &mut Errors) -> Option<PathRewrite> {
    let entries = expect_map(node, path, "a mapping with from and to", errs)?;
    let (mut from, mut to) = (None, None);
    for e in entries {
        let field = format!("{path}.{}", e.key);
        match e.key.as_str() {
            "from" => from = scalar::string(&e.value, &field, errs).map(|s| (s, e.value.mark())),
            "to" => to = scalar::string(&e.value, &field, errs),
            k => unknown_key(errs, &field, k, e.key_mark, "from, to"),
        }
    }
    if !node_has(node, "from") {
        errs.push(path, node.mark(), "missing \"from\" (a regex)");
    }
    if !node_has(node, "to") {
        errs.push(path, node.mark(), "missing \"to\" (the replacement)");
    }
    let ((from, from_mark), to) = (from?, to?);
    match PathRewrite::new(from, to) {
        Ok(rw) => Some(rw),
        Err(e) => {
            errs.push(&format!("{path}.from"), from_mark, e.to_string());
            None
        }
    }
}

fn load_applies_to(node: &Node, path: &str, errs: &mut Errors) -> Option<(Vec<String>, Vec<Mark>)> {
    let example = "[rule-name] (omit applies_to for every rule)";
    let items = scalar::non_empty_list(node, path, example, errs)?;
    let mut names = Vec::with_capacity(items.len());
    let mut marks = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if let Some(n) = scalar::identifier(item, &format!("{path}[{i}]"), true, errs) {
            names.push(n);
            marks.push(item.mark());
        }
    }
    Some((names, marks))
}

fn node_has(node: &Node, key: &str) -> bool {
    matches!(node, Node::Map { entries, .. } if entries.iter().any(|e| e.key == key))
}
