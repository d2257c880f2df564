//! Paths: canonicalisation of request paths (caps-yaml.md, "Path
//! patterns", steps 1-4) and the path patterns of allow rules.
//!
//! The canonical path is what rules match, what CEL sees and what is
//! forwarded upstream, so no upstream can read a path differently from the
//! policy.

use crate::error::{PathError, PatternError};

/// Longest request path (without query) accepted, in bytes.
pub const MAX_PATH_BYTES: usize = 8 * 1024;

/// A path pattern of an allow rule: `/`-separated segments where `*` is
/// exactly one non-empty segment, `**` zero or more segments, and anything
/// else is literal (compared case-sensitively with the canonical path).
///
/// Literal segments are canonicalised at load like request paths, so
/// `/%70rojects` and `/projects` are the same pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathPattern {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Segment {
    Literal(String),
    One,
    Any,
}

/// Canonicalises a request path (the part before `?`).
///
/// 1. Refuses a path that does not start with `/`, is longer than
///    [`MAX_PATH_BYTES`], or holds a control character, space, `\`, `#`
///    or any non-ASCII byte (RFC 3986 §3.3 allows none of them raw).
/// 2. Decodes percent escapes of unreserved characters (`A-Z a-z 0-9 - . _
///    ~`, RFC 3986 §2.3) and upper-cases the hex of all others, so `%2f`
///    becomes `%2F` and stays inside its segment.
/// 3. Collapses repeated `/`, then resolves `.` and `..` (RFC 3986 §5.2.4);
///    a `..` that would climb above `/` is an error. A trailing `/` is kept.
pub fn canonicalize_path(raw: &str) -> Result<String, PathError> {
    if raw.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong { len: raw.len() });
    }
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if let Some(at) = raw.bytes().position(|b| !allowed_raw_byte(b)) {
        return Err(PathError::InvalidByte {
            byte: raw.as_bytes()[at],
            at,
        });
    }

    let decoded = decode_unreserved(raw)?;
    resolve_segments(&decoded)
}

impl PathPattern {
    /// Parses one `paths` entry.
    pub fn parse(raw: &str) -> Result<PathPattern, PatternError> {
        if raw.len() > MAX_PATH_BYTES {
            return Err(PatternError::PathTooLong);
        }
        if !raw.starts_with('/') {
            return Err(PatternError::PathNotAbsolute);
        }
        let bad = |c: &char| !c.is_ascii() || *c == '?' || !allowed_raw_byte(*c as u8);
        if let Some(ch) = raw.chars().find(bad) {
            return Err(PatternError::PathChar { ch });
        }

        let decoded = decode_unreserved(raw).map_err(|_| PatternError::PathEscape)?;
        let body = &decoded[1..];
        let mut segments = Vec::new();
        if !body.is_empty() {
            let parts: Vec<&str> = body.split('/').collect();
            for (i, seg) in parts.iter().enumerate() {
                let last = i + 1 == parts.len();
                segments.push(parse_segment(seg, last)?);
            }
        }
        Ok(PathPattern {
            text: decoded,
            segments,
        })
    }

    /// The canonical pattern text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this pattern matches a canonical path (as returned by
    /// [`canonicalize_path`]).
    pub fn matches(&self, canonical: &str) -> bool {
        match_from(&self.segments, &split_segments(canonical))
    }

    /// [`PathPattern::matches`] on a path already split with
    /// [`split_segments`], so that several patterns share one split.
    pub(crate) fn matches_segments(&self, segments: &[&str]) -> bool {
        match_from(&self.segments, segments)
    }
}

impl std::fmt::Display for PathPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The segments of a canonical path: `/` has none, `/a/` is `["a", ""]`.
pub(crate) fn split_segments(canonical: &str) -> Vec<&str> {
    match canonical.get(1..) {
        None | Some("") => Vec::new(),
        Some(body) => body.split('/').collect(),
    }
}

/// Bytes allowed raw in a request path: visible ASCII except `\` and `#`.
/// (`?` never reaches here: the query is split off first.)
fn allowed_raw_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'\\' && b != b'#'
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Step 2: decode unreserved escapes, upper-case the hex of the others.
fn decode_unreserved(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i] as char);
            i += 1;
            continue;
        }
        let hex = bytes
            .get(i + 1..i + 3)
            .ok_or(PathError::BadEscape { at: i })?;
        let value = hex_value(hex).ok_or(PathError::BadEscape { at: i })?;
        if is_unreserved(value) {
            out.push(value as char);
        } else {
            out.push('%');
            out.push(hex[0].to_ascii_uppercase() as char);
            out.push(hex[1].to_ascii_uppercase() as char);
        }
        i += 3;
    }
    Ok(out)
}

fn hex_value(hex: &[u8]) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16);
    Some((digit(hex[0])? * 16 + digit(hex[1])?) as u8)
}

/// Step 3: collapse empty segments, resolve dot segments.
fn resolve_segments(decoded: &str) -> Result<String, PathError> {
    let parts: Vec<&str> = decoded[1..].split('/').collect();
    let mut stack: Vec<&str> = Vec::with_capacity(parts.len());
    let mut trailing_slash = false;
    for (i, seg) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        match *seg {
            "" | "." => trailing_slash = last,
            ".." => {
                stack.pop().ok_or(PathError::AboveRoot)?;
                trailing_slash = last;
            }
            s => {
                stack.push(s);
                trailing_slash = false;
            }
        }
    }

    let mut out = String::with_capacity(decoded.len());
    for seg in &stack {
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(out)
}

/// One pattern segment; only the last may be empty (a trailing `/`).
fn parse_segment(seg: &str, last: bool) -> Result<Segment, PatternError> {
    match seg {
        "**" => Ok(Segment::Any),
        "*" => Ok(Segment::One),
        "" if last => Ok(Segment::Literal(String::new())),
        "" | "." | ".." => Err(PatternError::PathDotOrEmpty),
        s if s.contains('*') => Err(PatternError::PartialPathWildcard),
        s => Ok(Segment::Literal(s.to_owned())),
    }
}

/// Segment matcher in O(pattern × path): on a mismatch only the most
/// recent `**` is retried one segment further, which is enough because
/// every other element matches exactly one segment.
fn match_from(pattern: &[Segment], path: &[&str]) -> bool {
    let (mut p, mut s) = (0, 0);
    let mut retry: Option<(usize, usize)> = None;
    while s < path.len() {
        let step = match pattern.get(p) {
            Some(Segment::Any) => {
                retry = Some((p, s));
                p += 1;
                continue;
            }
            Some(Segment::One) => !path[s].is_empty(),
            Some(Segment::Literal(lit)) => lit == path[s],
            None => false,
        };
        if step {
            p += 1;
            s += 1;
        } else if let Some((rp, rs)) = retry {
            // Let the last `**` swallow one more segment and try again.
            p = rp + 1;
            s = rs + 1;
            retry = Some((rp, rs + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|seg| *seg == Segment::Any)
}
