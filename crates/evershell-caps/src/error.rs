//! Error types: document validation errors carry the field path and the YAML
//! position; host and path errors name the offending input.

use std::collections::BTreeMap;
use std::fmt;

/// One problem in a caps.yaml document.
///
/// `path` names the field (`capabilities[1].allow[0].methods[0]`, or
/// `capabilities` for document-level problems); `line` and `column` are
/// 1-based positions in the YAML text. Display prints
/// `line 6, col 16: <message>`, the text the API puts in `details.fields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, col {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for FieldError {}

/// Every problem found in one document, in document order (at most
/// [`crate::MAX_ERRORS`]). Never empty when returned by [`crate::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapsErrors(pub Vec<FieldError>);

impl CapsErrors {
    /// The `details.fields` map of a `400 validation_error`: field path →
    /// `line L, col C: message`. Several problems on one path are joined
    /// with `; `.
    pub fn fields(&self) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        for e in &self.0 {
            out.entry(e.path.clone())
                .and_modify(|m| {
                    m.push_str("; ");
                    m.push_str(&e.to_string());
                })
                .or_insert_with(|| e.to_string());
        }
        out
    }
}

impl fmt::Display for CapsErrors {
    /// One problem per line: `<path>: line L, col C: <message>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {e}", e.path)?;
        }
        Ok(())
    }
}

impl std::error::Error for CapsErrors {}

/// Why a host name (a `Host` header, an SNI, a DNS query name or a pattern's
/// host part) was refused by [`crate::normalize_host`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("host is empty")]
    Empty,
    #[error("host {host:?}: character {ch:?} is not allowed in a host name")]
    InvalidChar { host: String, ch: char },
    #[error("host {host:?}: port is not a number in 1-65535")]
    InvalidPort { host: String },
    #[error("host {host:?}: empty label")]
    EmptyLabel { host: String },
    #[error("host {host:?}: label longer than 63 bytes")]
    LabelTooLong { host: String },
    #[error("host {host:?}: name longer than 253 bytes")]
    TooLong { host: String },
    #[error("host {host:?}: invalid IP literal")]
    InvalidIp { host: String },
    #[error("host {host:?}: numeric name that is not a dotted-quad IPv4 address")]
    AmbiguousNumeric { host: String },
    #[error("host {host:?}: not a valid internationalised domain name")]
    Idna { host: String },
}

/// Why a request path was refused by [`crate::canonicalize_path`]; every
/// variant is the decision reason `invalid_path`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path does not start with '/'")]
    NotAbsolute,
    #[error("path is {len} bytes, over the 8 KiB limit")]
    TooLong { len: usize },
    #[error("path contains byte 0x{byte:02x} at offset {at}, which is not allowed")]
    InvalidByte { byte: u8, at: usize },
    #[error("path contains a malformed percent escape at offset {at}")]
    BadEscape { at: usize },
    #[error("path climbs above '/' with '..'")]
    AboveRoot,
}

/// Why a host or path pattern of an allow rule was refused at load time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("\"*\" alone would admit every host; list the domains explicitly")]
    BareWildcard,
    #[error("wildcards must be a whole leftmost label (\"*.example.com\" or \"**.example.com\")")]
    PartialWildcard,
    #[error("an IP address cannot carry a wildcard")]
    WildcardIp,
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("path pattern must start with '/'")]
    PathNotAbsolute,
    #[error("\"*\" and \"**\" must be a whole path segment")]
    PartialPathWildcard,
    #[error("path pattern contains {ch:?}, which is not allowed (no '?', '#', '\\', spaces or control characters)")]
    PathChar { ch: char },
    #[error("path pattern contains a malformed percent escape")]
    PathEscape,
    #[error("path pattern must not contain \".\" or \"..\" segments or \"//\"")]
    PathDotOrEmpty,
    #[error("path pattern is longer than 8 KiB")]
    PathTooLong,
}
