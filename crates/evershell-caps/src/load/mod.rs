//! Loading: caps.yaml text → validated [`Capability`] values, or every
//! problem found with its field path and YAML position.

mod body;
mod budget;
mod capability;
mod expr;
mod json;
mod rule;
mod scalar;
mod transform;
mod tree;

use std::collections::HashMap;

use crate::error::{CapsErrors, FieldError};
use crate::model::Capability;

use tree::{Mark, Node};

/// Largest caps.yaml document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Most problems reported for one document; later ones are dropped.
pub const MAX_ERRORS: usize = 100;

/// Stack of the thread that loads a document: CEL's parser and the JSON
/// Schema compiler recurse, and no input may overflow them.
const LOADER_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Parses and validates a caps.yaml document written by a user (a role's
/// or provider's `capabilities`, a pack's `capabilities:`).
///
/// Accepts a list of capabilities in canonical form or the one-rule
/// shorthand, and returns them in canonical form, in document order. An
/// empty document is an empty list. Names starting with `_` are refused
/// (reserved for the platform). Unknown keys are errors, never ignored.
///
/// CEL expressions, JSON Schemas and regexes are compiled here, once. The
/// size limit is checked before anything is parsed; the rest runs on a
/// dedicated thread with a 64 MiB stack.
///
/// # Errors
/// Every problem found (up to [`MAX_ERRORS`]), in document order, each
/// with its field path and 1-based line and column.
pub fn parse(yaml: &str) -> Result<Vec<Capability>, CapsErrors> {
    if yaml.len() > MAX_DOCUMENT_BYTES {
        let mut errs = Errors::default();
        let msg = format!("document is {} bytes, over the 1 MiB limit", yaml.len());
        errs.push("capabilities", Mark { line: 1, col: 1 }, msg);
        return Err(errs.into_result());
    }

    let spawned = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("caps-load".to_owned())
            .stack_size(LOADER_STACK_BYTES)
            .spawn_scoped(scope, || load(yaml))
            .map(|handle| handle.join())
    });
    match spawned {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(e) => {
            let mut errs = Errors::default();
            let msg = format!("could not start the loader thread: {e}");
            errs.push("capabilities", Mark { line: 1, col: 1 }, msg);
            Err(errs.into_result())
        }
    }
}

/// [`parse`] after the size check, on the loader thread.
fn load(yaml: &str) -> Result<Vec<Capability>, CapsErrors> {
    let mut errs = Errors::default();
    let caps = match tree::build(yaml, &mut errs) {
        Some(root) if !root.is_null() => capability::load_document(&root, &mut errs),
        _ => Vec::new(),
    };
    if errs.list.is_empty() {
        Ok(caps)
    } else {
        Err(errs.into_result())
    }
}

/// Problems collected while loading one document.
#[derive(Debug, Default)]
pub(crate) struct Errors {
    list: Vec<FieldError>,
}

impl Errors {
    /// Records a problem; silently drops it past [`MAX_ERRORS`].
    pub(crate) fn push(&mut self, path: &str, mark: Mark, message: impl Into<String>) {
        if self.list.len() < MAX_ERRORS {
            self.list.push(FieldError {
                path: path.to_owned(),
                line: mark.line,
                column: mark.col,
                message: message.into(),
            });
        }
    }

    /// The problems in document order (by position; stable for ties).
    fn into_result(mut self) -> CapsErrors {
        self.list.sort_by_key(|e| (e.line, e.column));
        CapsErrors(self.list)
    }
}

/// Reports a key that means nothing where it stands.
pub(crate) fn unknown_key(errs: &mut Errors, path: &str, key: &str, mark: Mark, expected: &str) {
    errs.push(
        path,
        mark,
        format!("unknown key {key:?} (expected one of: {expected})"),
    );
}

/// The entries of a mapping, first occurrence of each key only; later
/// duplicates are reported.
pub(crate) fn unique_entries<'n>(
    entries: &'n [tree::Entry],
    path: &str,
    errs: &mut Errors,
) -> Vec<&'n tree::Entry> {
    let mut out: Vec<&tree::Entry> = Vec::with_capacity(entries.len());
    let mut seen: HashMap<&str, Mark> = HashMap::with_capacity(entries.len());
    for e in entries {
        match seen.get(e.key.as_str()) {
            Some(first) => {
                let msg = format!("duplicate key {:?} (first at line {})", e.key, first.line);
                errs.push(&format!("{path}.{}", e.key), e.key_mark, msg);
            }
            None => {
                seen.insert(&e.key, e.key_mark);
                out.push(e);
            }
        }
    }
    out
}

/// The entries of a mapping node, or a reported error naming `what`.
pub(crate) fn expect_map<'n>(
    node: &'n Node,
    path: &str,
    what: &str,
    errs: &mut Errors,
) -> Option<Vec<&'n tree::Entry>> {
    match node {
        Node::Map { entries, .. } => Some(unique_entries(entries, path, errs)),
        other => {
            let msg = format!("expected {what}, found {}", other.describe());
            errs.push(path, other.mark(), msg);
            None
        }
    }
}
