//! `body:` of an allow rule: `json_schema` and `max_bytes`.

use crate::body::{BodyCheck, JsonSchema, DEFAULT_BODY_MAX_BYTES, MAX_BODY_MAX_BYTES};

use super::json::to_json;
use super::scalar;
use super::tree::Node;
use super::{expect_map, unknown_key, Errors};

const BODY_KEYS: &str = "json_schema, max_bytes";

/// Loads `body:`; `None` after reporting a problem.
pub(super) fn load_body(node: &Node, path: &str, errs: &mut Errors) -> Option<BodyCheck> {
    let what = "a body check (a mapping with json_schema and/or max_bytes)";
    let entries = expect_map(node, path, what, errs)?;
    let mut check = BodyCheck {
        json_schema: None,
        max_bytes: DEFAULT_BODY_MAX_BYTES,
    };
    let mut ok = true;
    for e in entries {
        let field = format!("{path}.{}", e.key);
        match e.key.as_str() {
            "json_schema" => match load_schema(&e.value, &field, errs) {
                Some(schema) => check.json_schema = Some(schema),
                None => ok = false,
            },
            "max_bytes" => {
                let max = MAX_BODY_MAX_BYTES as u64;
                match scalar::unsigned(&e.value, &field, max, errs) {
                    Some(n) => check.max_bytes = usize::try_from(n).expect("at most 64 MiB"),
                    None => ok = false,
                }
            }
            k => {
                unknown_key(errs, &field, k, e.key_mark, BODY_KEYS);
                ok = false;
            }
        }
    }
    ok.then_some(check)
}

fn load_schema(node: &Node, path: &str, errs: &mut Errors) -> Option<JsonSchema> {
    if !matches!(node, Node::Map { .. }) {
        let msg = format!(
            "expected a JSON Schema object (a mapping), found {}",
            node.describe()
        );
        errs.push(path, node.mark(), msg);
        return None;
    }
    let document = to_json(node, path, errs)?;
    match JsonSchema::compile(document) {
        Ok(schema) => Some(schema),
        Err(e) => {
            errs.push(path, node.mark(), e.to_string());
            None
        }
    }
}
