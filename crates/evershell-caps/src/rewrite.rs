//! `rewrite_path`: a regex over the canonical path and its replacement.
//!
//! The regex crate runs in time linear in the input (no backtracking), so
//! a pattern like `(a+)+$` costs no more than any other; what is bounded
//! at load is the compiled program's size and the pattern's length.

use std::fmt;

use regex::{Regex, RegexBuilder};

/// Longest `rewrite_path.from` pattern accepted, in bytes.
pub const MAX_REWRITE_PATTERN_BYTES: usize = 1024;

/// Largest compiled program of a `rewrite_path.from` pattern, in bytes.
pub const MAX_REWRITE_PROGRAM_BYTES: usize = 256 * 1024;

/// The first match of `from` in the canonical path is replaced by `to`
/// (`$1`, `${name}` expand capture groups; `$$` is a literal `$`).
#[derive(Clone)]
pub struct PathRewrite {
    from: Regex,
    to: String,
}

/// Why a `rewrite_path` was refused at load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("pattern is {len} bytes, over the 1 KiB limit")]
    TooLong { len: usize },
    #[error("invalid pattern: {0}")]
    Invalid(String),
    #[error("pattern compiles to more than the 256 KiB program size limit")]
    TooBig,
    #[error("replacement refers to group {group:?}, which the pattern does not have")]
    UnknownGroup { group: String },
}

impl PathRewrite {
    /// Compiles a rewrite.
    ///
    /// # Errors
    /// A pattern over the length or program-size limit, a syntax error, or
    /// a replacement naming a group the pattern lacks.
    pub fn new(from: &str, to: &str) -> Result<PathRewrite, RewriteError> {
        if from.len() > MAX_REWRITE_PATTERN_BYTES {
            return Err(RewriteError::TooLong { len: from.len() });
        }
        let regex = RegexBuilder::new(from)
            .size_limit(MAX_REWRITE_PROGRAM_BYTES)
            .build()
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(_) => RewriteError::TooBig,
                other => RewriteError::Invalid(regex_message(&other)),
            })?;
        check_groups(&regex, to)?;
        Ok(PathRewrite {
            from: regex,
            to: to.to_owned(),
        })
    }

    pub fn from(&self) -> &str {
        self.from.as_str()
    }

    pub fn to(&self) -> &str {
        &self.to
    }

    /// The path with the first match replaced; the path itself when the
    /// pattern does not match.
    pub fn apply(&self, path: &str) -> String {
        self.from.replacen(path, 1, self.to.as_str()).into_owned()
    }
}

impl PartialEq for PathRewrite {
    fn eq(&self, other: &PathRewrite) -> bool {
        self.from.as_str() == other.from.as_str() && self.to == other.to
    }
}

impl Eq for PathRewrite {}

impl fmt::Debug for PathRewrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PathRewrite")
            .field("from", &self.from.as_str())
            .field("to", &self.to)
            .finish()
    }
}

/// The useful line of a regex error (syntax errors span several lines:
/// the pattern, a caret, then `error: …`).
pub(crate) fn regex_message(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().next().unwrap_or("invalid regex"))
        .to_owned()
}

/// Every `$n` / `$name` / `${name}` in `to` names a group of `regex`.
fn check_groups(regex: &Regex, to: &str) -> Result<(), RewriteError> {
    let names: Vec<&str> = regex.capture_names().flatten().collect();
    let count = regex.captures_len();
    let bytes = to.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        if bytes.get(i + 1) == Some(&b'$') {
            i += 2;
            continue;
        }
        let (group, next) = group_ref(to, i + 1);
        let known = match group.parse::<usize>() {
            Ok(n) => n < count,
            Err(_) => group.is_empty() || names.contains(&group),
        };
        if !known {
            return Err(RewriteError::UnknownGroup {
                group: group.to_owned(),
            });
        }
        i = next;
    }
    Ok(())
}

/// The group reference after a `$` at `start`: `{name}` or the longest run
/// of `[A-Za-z0-9_]` (the regex crate's reading), and the index after it.
fn group_ref(to: &str, start: usize) -> (&str, usize) {
    let rest = &to[start..];
    if let Some(inner) = rest.strip_prefix('{') {
        if let Some(end) = inner.find('}') {
            return (&inner[..end], start + end + 2);
        }
    }
    let len = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    (&rest[..len], start + len)
}
