//! The validated capability model: what [`crate::parse`] returns and
//! [`crate::Policy::compile`] consumes.
//!
//! Values built by `parse` or [`crate::provider_capability`] are always
//! valid. Build values with `..Default::default()` and match
//! [`TransformAction`] with a wildcard arm so that code keeps compiling as
//! the language grows.

use std::collections::BTreeMap;

use crate::body::BodyCheck;
use crate::budget::{Budget, Counter};
use crate::cel::CelExpr;
use crate::host::HostPattern;
use crate::path::PathPattern;
use crate::rewrite::PathRewrite;

/// A named group of allow rules plus the transforms that fire on requests
/// those rules admit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capability {
    /// `^[A-Za-z][A-Za-z0-9_-]{0,63}$`; names starting with `_` belong to
    /// the platform (`_provider`).
    pub name: String,
    pub kind: CapabilityType,
    /// In document order; the first admitting rule wins.
    pub allow: Vec<AllowRule>,
    /// In document order; they run after the allow decision.
    pub transforms: Vec<Transform>,
    /// Usage ceilings of the requests this capability admits; the proxy's
    /// ledger enforces them.
    pub budgets: BTreeMap<Counter, Budget>,
}

/// The closed `type:` enum of a capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CapabilityType {
    #[default]
    Http,
}

/// One allow rule: a request is admitted when its host matches one of
/// `domains` (port included), its method is in `methods`, its canonical
/// path matches one of `paths` (any path when empty) and, for plain HTTP,
/// `allow_insecure` is true, its `body` check passes and its `match`
/// predicate is `true`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowRule {
    /// Lets transforms target this rule through `applies_to`.
    pub name: Option<String>,
    pub domains: Vec<HostPattern>,
    pub methods: Vec<Method>,
    pub paths: Vec<PathPattern>,
    /// Default `false`: only TLS requests are admitted.
    pub allow_insecure: bool,
    /// `match:`: a CEL predicate that must evaluate to `true`.
    pub match_expr: Option<CelExpr>,
    /// `body:`: a size limit and an optional JSON Schema for the request
    /// body.
    pub body: Option<BodyCheck>,
}

/// A rewrite applied to requests admitted by its capability's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub name: String,
    /// Allow-rule names of the same capability; `None` means every rule.
    pub applies_to: Option<Vec<String>>,
    pub action: TransformAction,
}

/// What a transform does: exactly one action group. Match with a wildcard
/// arm.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransformAction {
    /// `auth: <credential name>`: the broker mints the credential and the
    /// proxy stamps it on the request.
    Auth { credential: String },
    /// Any of the header, query, path and body keys.
    Rewrite(Rewrite),
}

/// The rewrite action group of a transform. Within one transform the
/// parts apply in this order: `remove_headers`, `set_headers`,
/// `remove_query`, `set_query`, `rewrite_path`, `set_body`. At least one is
/// non-empty in a parsed value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rewrite {
    /// Lower-cased header name → CEL expression evaluating to a string;
    /// replaces every existing value of the header. Sorted by name.
    pub set_headers: Vec<(String, CelExpr)>,
    /// Lower-cased header names, every value removed.
    pub remove_headers: Vec<String>,
    /// Query parameter name → CEL expression evaluating to a string;
    /// replaces every existing value of the parameter. Sorted by name.
    pub set_query: Vec<(String, CelExpr)>,
    /// Query parameter names, every value removed.
    pub remove_query: Vec<String>,
    /// First match of a regex in the canonical path, replaced.
    pub rewrite_path: Option<PathRewrite>,
    /// JSON pointer (RFC 6901) → CEL expression whose value is stored
    /// there. Sorted by pointer.
    pub set_body: Vec<(String, CelExpr)>,
}

/// The closed set of HTTP methods a rule can name (upper-case only, as on
/// the wire: RFC 9110 §9.1 makes methods case-sensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Patch,
    Head,
    Options,
}

impl Capability {
    /// Whether this capability's name is reserved for the platform.
    pub fn is_platform(&self) -> bool {
        self.name.starts_with('_')
    }
}

impl Transform {
    /// Whether this transform fires on requests admitted by `rule` (the
    /// rule's name, `None` for an unnamed rule).
    pub fn applies_to_rule(&self, rule: Option<&str>) -> bool {
        match (&self.applies_to, rule) {
            (None, _) => true,
            (Some(names), Some(rule)) => names.iter().any(|n| n == rule),
            (Some(_), None) => false,
        }
    }
}

impl Method {
    /// Every method, in the order used for messages and canonical output.
    pub const ALL: [Method; 7] = [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Patch,
        Method::Head,
        Method::Options,
    ];

    /// Parses an exact upper-case method name; anything else is `None`.
    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
        }
    }

    /// A distinct bit per method, for method sets in compiled rules.
    pub(crate) fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
