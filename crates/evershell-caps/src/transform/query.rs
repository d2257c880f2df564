//! Query-string edits for `set_query` and `remove_query`, on the raw
//! query: untouched parameters keep their exact bytes and order.

use crate::cel::decode_component;

/// `query` with every parameter named in `remove` or `set` removed, then
/// each `set` pair appended (percent-encoded). `None` when nothing is
/// left. Names are compared after decoding (`a%62` is `ab`).
pub(super) fn edit(
    query: Option<&str>,
    remove: &[String],
    set: &[(&str, String)],
) -> Option<String> {
    let mut kept: Vec<String> = Vec::new();
    for piece in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let raw_name = piece.split_once('=').map_or(piece, |(k, _)| k);
        let name = decode_component(raw_name).unwrap_or_else(|_| raw_name.to_owned());
        let dropped = remove.contains(&name) || set.iter().any(|(s, _)| *s == name);
        if !dropped {
            kept.push(piece.to_owned());
        }
    }
    for (name, value) in set {
        kept.push(format!("{}={}", encode(name), encode(value)));
    }
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(super) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
