//! JSON pointers (RFC 6901) for `set_body`: checked at load, applied with
//! the "add" semantics of JSON Patch (RFC 6902 §4.1): the parent must
//! exist; an object member is added or replaced; an array index inserts
//! (`-` appends).

/// Why a pointer could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PointerError;

/// Checks a pointer's syntax: empty (the whole document) or `/`-prefixed
/// tokens where `~` is followed by `0` or `1`.
pub(crate) fn check_pointer(pointer: &str) -> Result<(), String> {
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(format!(
            "JSON pointer {pointer:?} must be empty or start with '/'"
        ));
    }
    let bytes = pointer.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'~' && !matches!(bytes.get(i + 1), Some(b'0' | b'1')) {
            return Err(format!(
                "JSON pointer {pointer:?}: '~' must be followed by 0 or 1"
            ));
        }
    }
    Ok(())
}

/// Stores `value` at `pointer` in `doc`.
pub(super) fn set(
    doc: &mut serde_json::Value,
    pointer: &str,
    value: serde_json::Value,
) -> Result<(), PointerError> {
    if pointer.is_empty() {
        *doc = value;
        return Ok(());
    }
    let tokens: Vec<String> = pointer[1..].split('/').map(unescape).collect();
    let (last, parents) = tokens.split_last().ok_or(PointerError)?;
    let mut node = doc;
    for token in parents {
        node = match node {
            serde_json::Value::Object(fields) => fields.get_mut(token).ok_or(PointerError)?,
            serde_json::Value::Array(items) => {
                let i = index(token, items.len())?;
                items.get_mut(i).ok_or(PointerError)?
            }
            _ => return Err(PointerError),
        };
    }
    match node {
        serde_json::Value::Object(fields) => {
            fields.insert(last.clone(), value);
            Ok(())
        }
        serde_json::Value::Array(items) => {
            let i = if last == "-" {
                items.len()
            } else {
                index(last, items.len() + 1)?
            };
            items.insert(i, value);
            Ok(())
        }
        _ => Err(PointerError),
    }
}

/// RFC 6901 §4: `~1` → `/`, then `~0` → `~`.
fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// An array index: decimal, no leading zero, below `len`.
fn index(token: &str, len: usize) -> Result<usize, PointerError> {
    let canonical = token == "0" || (!token.starts_with('0') && !token.is_empty());
    if !canonical || !token.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PointerError);
    }
    token
        .parse::<usize>()
        .ok()
        .filter(|i| *i < len)
        .ok_or(PointerError)
}
