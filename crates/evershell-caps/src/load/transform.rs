//! Transforms: `name`, `applies_to` and one action (`auth` in this
//! version).

use crate::model::{Transform, TransformAction};

use super::scalar;
use super::tree::Node;
use super::{expect_map, unknown_key, unsupported, Errors};

const TRANSFORM_KEYS: &str = "name, applies_to, auth";

/// Action keys a later version will support.
const LATER_ACTION_KEYS: &[&str] = &[
    "set_headers",
    "remove_headers",
    "set_query",
    "remove_query",
    "rewrite_path",
    "set_body",
];

/// A loaded transform with the position of each `applies_to` entry, so that
/// the capability can report names that are not its rules.
pub(super) struct LoadedTransform {
    pub transform: Transform,
    pub name_mark: super::tree::Mark,
    pub applies_marks: Vec<super::tree::Mark>,
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
    let (mut name, mut name_mark) = (None, node.mark());
    let mut applies: Option<(Vec<String>, Vec<super::tree::Mark>)> = None;
    let mut action = None;
    let mut saw_action = false;

    for e in entries {
        let field = format!("{path}.{}", e.key);
        match e.key.as_str() {
            "name" => {
                name = scalar::identifier(&e.value, &field, true, errs);
                name_mark = e.value.mark();
            }
            "applies_to" => applies = load_applies_to(&e.value, &field, errs),
            "auth" => {
                saw_action = true;
                action = scalar::identifier(&e.value, &field, false, errs)
                    .map(|credential| TransformAction::Auth { credential });
            }
            k if LATER_ACTION_KEYS.contains(&k) => {
                saw_action = true;
                unsupported(errs, &field, k, e.key_mark);
            }
            k => unknown_key(errs, &field, k, e.key_mark, TRANSFORM_KEYS),
        }
    }

    if !node_has(node, "name") {
        errs.push(path, node.mark(), "missing \"name\"");
    }
    if !saw_action {
        errs.push(
            path,
            node.mark(),
            "missing an action (e.g. auth: my-credential)",
        );
    }
    let (applies_to, applies_marks) = match applies {
        Some((names, marks)) => (Some(names), marks),
        None => (None, Vec::new()),
    };
    let transform = Transform {
        name: name?,
        applies_to,
        action: action?,
    };
    Some(LoadedTransform {
        transform,
        name_mark,
        applies_marks,
    })
}

fn load_applies_to(
    node: &Node,
    path: &str,
    errs: &mut Errors,
) -> Option<(Vec<String>, Vec<super::tree::Mark>)> {
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
