//! Scalar and list readers shared by the capability, rule and transform
//! loaders. Each reports its own problem and returns `None`.

use super::tree::Node;
use super::Errors;

/// Longest identifier (capability, rule, transform, credential names).
const MAX_IDENT: usize = 64;

/// A non-null string value.
pub(super) fn string<'n>(node: &'n Node, path: &str, errs: &mut Errors) -> Option<&'n str> {
    match node {
        Node::Scalar { text, .. } if !node.is_null() => Some(text),
        other => {
            let msg = format!("expected a string, found {}", other.describe());
            errs.push(path, other.mark(), msg);
            None
        }
    }
}

/// A YAML 1.2 core-schema boolean written plain (`true`, `false`).
pub(super) fn boolean(node: &Node, path: &str, errs: &mut Errors) -> Option<bool> {
    if let Node::Scalar {
        text, plain: true, ..
    } = node
    {
        match text.as_str() {
            "true" | "True" | "TRUE" => return Some(true),
            "false" | "False" | "FALSE" => return Some(false),
            _ => {}
        }
    }
    let msg = match node {
        Node::Scalar { text, .. } => format!("expected true or false, found {text:?}"),
        other => format!("expected true or false, found {}", other.describe()),
    };
    errs.push(path, node.mark(), msg);
    None
}

/// The items of a list; `example` shows the expected shape in the message.
pub(super) fn list<'n>(
    node: &'n Node,
    path: &str,
    example: &str,
    errs: &mut Errors,
) -> Option<&'n [Node]> {
    match node {
        Node::Seq { items, .. } => Some(items),
        other => {
            let msg = format!(
                "expected a list (e.g. {example}), found {}",
                other.describe()
            );
            errs.push(path, other.mark(), msg);
            None
        }
    }
}

/// A non-empty list.
pub(super) fn non_empty_list<'n>(
    node: &'n Node,
    path: &str,
    example: &str,
    errs: &mut Errors,
) -> Option<&'n [Node]> {
    let items = list(node, path, example, errs)?;
    if items.is_empty() {
        errs.push(
            path,
            node.mark(),
            format!("must not be empty (e.g. {example})"),
        );
        return None;
    }
    Some(items)
}

/// An identifier `^[A-Za-z][A-Za-z0-9_-]{0,63}$`. With `user` set, a
/// leading `_` gets its own message: those names belong to the platform.
pub(super) fn identifier(node: &Node, path: &str, user: bool, errs: &mut Errors) -> Option<String> {
    let text = string(node, path, errs)?;
    if user && text.starts_with('_') {
        let msg = format!("name {text:?}: names starting with \"_\" are reserved for the platform");
        errs.push(path, node.mark(), msg);
        return None;
    }
    if !is_identifier(text) {
        let msg =
            format!("invalid name {text:?} (a letter, then up to 63 letters, digits, '_' or '-')");
        errs.push(path, node.mark(), msg);
        return None;
    }
    Some(text.to_owned())
}

/// `^[A-Za-z][A-Za-z0-9_-]{0,63}$`, checked by hand.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    first_ok
        && s.len() <= MAX_IDENT
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A non-negative integer written plain in decimal (`1048576`), at most
/// `max`.
pub(super) fn unsigned(node: &Node, path: &str, max: u64, errs: &mut Errors) -> Option<u64> {
    let parsed = match node {
        Node::Scalar {
            text, plain: true, ..
        } if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse::<u64>().ok()
        }
        _ => None,
    };
    match parsed {
        Some(n) if n <= max => Some(n),
        Some(n) => {
            errs.push(path, node.mark(), format!("{n} is over the limit of {max}"));
            None
        }
        None => {
            let found = match node {
                Node::Scalar { text, .. } => format!("{text:?}"),
                other => other.describe().to_owned(),
            };
            let msg = format!("expected a non-negative integer, found {found}");
            errs.push(path, node.mark(), msg);
            None
        }
    }
}
