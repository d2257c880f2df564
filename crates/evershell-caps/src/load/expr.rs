//! CEL values in the document: `match:` of allow rules and the values of
//! `set_headers`, `set_query` and `set_body`. Compile errors are reported
//! at the value's position.

use crate::cel::{CelExpr, CelRole};

use super::scalar;
use super::tree::Node;
use super::Errors;

/// Compiles the CEL expression written at `node`.
pub(super) fn cel(node: &Node, path: &str, role: CelRole, errs: &mut Errors) -> Option<CelExpr> {
    let source = scalar::string(node, path, errs)?;
    match CelExpr::compile(source, role) {
        Ok(expr) => Some(expr),
        Err(e) => {
            errs.push(path, node.mark(), format!("invalid CEL expression: {e}"));
            None
        }
    }
}
