//! Transforms: the rewrites that run on an allowed request before it is
//! forwarded, in document order.
//!
//! The engine is pure: [`apply_transforms`] edits a [`RequestParts`] and
//! reports what it did; it never performs I/O. Secrets come from a
//! synchronous [`SecretLookup`] (the proxy fetches the names each step's
//! [`TransformStep::secrets_needed`] lists beforehand), and `auth` steps
//! are handed back for the proxy to stamp the minted credential. Any
//! failure means the request must be denied, never forwarded half-done.

mod pointer;
mod query;

use std::cell::OnceCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::cel::{CelExpr, CelVars};
use crate::model::{Rewrite, Transform, TransformAction};
use crate::path::canonicalize_path;
use crate::policy::{AuthStep, RequestFacts};

pub(crate) use pointer::check_pointer;

/// One transform that fires on an allowed request. Cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct TransformStep {
    capability: String,
    transform: Arc<Transform>,
}

/// The parts of a request transforms may change.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestParts {
    /// Header names as the proxy holds them (matched case-insensitively;
    /// names set by a transform are lower-case).
    pub headers: Vec<(String, String)>,
    /// The canonical path ([`crate::Decision::canonical_path`]); stays
    /// canonical after `rewrite_path`.
    pub path: String,
    /// The raw query string without `?`; `None` when there is none.
    pub query: Option<String>,
    /// The parsed JSON body; `None` when absent or not JSON.
    pub body: Option<serde_json::Value>,
}

/// What transform values are evaluated against.
pub struct TransformContext<'a> {
    /// The request as decided: CEL's `request.*` (the body is taken from
    /// [`RequestParts::body`] before the first step runs).
    pub facts: &'a RequestFacts<'a>,
    pub secrets: &'a dyn SecretLookup,
}

/// The secrets transform values read as `secrets["name"]`.
pub trait SecretLookup {
    /// The secret's value; `None` when it does not exist (the step then
    /// fails with `auth_unavailable`).
    fn secret(&self, name: &str) -> Option<Zeroizing<String>>;
}

/// The result of [`apply_transforms`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransformOutcome {
    /// Steps that completed.
    pub applied: u32,
    /// Transform name → failure reason: `auth_unavailable` (a secret is
    /// missing), `cel_error: <message>`, `body_not_json`,
    /// `invalid_pointer`, `invalid_path`, `invalid_header_value`. Not
    /// empty: deny the request.
    pub failed: BTreeMap<String, String>,
    /// Credentials to stamp, in order (one per `auth` step).
    pub auth: Vec<AuthStep>,
}

/// Runs `steps` in order on `req`. Every step runs even after a failure,
/// so that the outcome lists every failing transform; after any failure
/// `req` may be partly rewritten and must not be forwarded.
///
/// CEL values see the request as decided (`ctx.facts`, and `req.body` as
/// it was before the first step), not as earlier steps changed it.
pub fn apply_transforms(
    steps: &[TransformStep],
    req: &mut RequestParts,
    ctx: &TransformContext<'_>,
) -> TransformOutcome {
    let mut out = TransformOutcome::default();
    let original_body = steps
        .iter()
        .any(TransformStep::reads_body)
        .then(|| req.body.clone())
        .flatten();
    let fields = steps
        .iter()
        .flat_map(TransformStep::exprs)
        .fold(0, |fields, e| fields | e.request_fields());
    let vars: OnceCell<Result<CelVars, String>> = OnceCell::new();

    for step in steps {
        match &step.transform.action {
            TransformAction::Auth { credential } => {
                out.auth.push(AuthStep {
                    transform: step.name().to_owned(),
                    credential: credential.clone(),
                });
                out.applied += 1;
            }
            TransformAction::Rewrite(rewrite) => {
                let vars = vars.get_or_init(|| {
                    CelVars::with_fields(ctx.facts, original_body.as_ref(), fields)
                });
                match apply_rewrite(rewrite, req, vars, ctx.secrets) {
                    Ok(()) => out.applied += 1,
                    Err(reason) => {
                        out.failed
                            .insert(step.name().to_owned(), redact(step, reason));
                    }
                }
            }
        }
    }
    out
}

/// A failure reason that cannot carry a secret. The evaluator's message of
/// an expression that reads `secrets[…]` may quote the secret's value
/// (`String("…") + Int(5)`), and failure reasons go to the audit log; such
/// messages are replaced by their kind.
fn redact(step: &TransformStep, reason: String) -> String {
    if step.secrets_needed().is_empty() || !reason.starts_with("cel_error") {
        return reason;
    }
    "cel_error: evaluation failed (message withheld: the transform reads secrets)".to_owned()
}

impl TransformStep {
    pub(crate) fn new(capability: &str, transform: Arc<Transform>) -> TransformStep {
        TransformStep {
            capability: capability.to_owned(),
            transform,
        }
    }

    /// The transform's name (`transforms_failed.<name>` in the audit row).
    pub fn name(&self) -> &str {
        &self.transform.name
    }

    pub fn capability(&self) -> &str {
        &self.capability
    }

    pub fn transform(&self) -> &Transform {
        &self.transform
    }

    /// The credential of an `auth` step.
    pub fn credential(&self) -> Option<&str> {
        match &self.transform.action {
            TransformAction::Auth { credential } => Some(credential),
            TransformAction::Rewrite(_) => None,
        }
    }

    /// The secret names this step's CEL values read, sorted and
    /// deduplicated; found statically at load.
    pub fn secrets_needed(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .exprs()
            .flat_map(|e| e.secrets().iter().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Whether this step needs the parsed body: it sets a body field or a
    /// value reads `request.body`.
    pub fn reads_body(&self) -> bool {
        match &self.transform.action {
            TransformAction::Rewrite(r) => {
                !r.set_body.is_empty() || self.exprs().any(CelExpr::reads_body)
            }
            TransformAction::Auth { .. } => false,
        }
    }

    /// One line saying what the step does, for `caps explain`.
    pub fn describe(&self) -> String {
        let r = match &self.transform.action {
            TransformAction::Auth { credential } => {
                return format!("{}: stamp credential {credential}", self.name());
            }
            TransformAction::Rewrite(r) => r,
        };
        let mut parts: Vec<String> = Vec::new();
        if !r.remove_headers.is_empty() {
            parts.push(format!("remove headers [{}]", r.remove_headers.join(", ")));
        }
        for (name, value) in &r.set_headers {
            parts.push(format!("set header {name} = {value}"));
        }
        if !r.remove_query.is_empty() {
            parts.push(format!("remove query [{}]", r.remove_query.join(", ")));
        }
        for (name, value) in &r.set_query {
            parts.push(format!("set query {name} = {value}"));
        }
        if let Some(rw) = &r.rewrite_path {
            parts.push(format!("rewrite path {:?} -> {:?}", rw.from(), rw.to()));
        }
        for (pointer, value) in &r.set_body {
            parts.push(format!("set body {pointer:?} = {value}"));
        }
        format!("{}: {}", self.name(), parts.join("; "))
    }

    fn exprs(&self) -> impl Iterator<Item = &CelExpr> {
        let rewrite = match &self.transform.action {
            TransformAction::Rewrite(r) => Some(r),
            TransformAction::Auth { .. } => None,
        };
        rewrite.into_iter().flat_map(|r| {
            r.set_headers
                .iter()
                .chain(&r.set_query)
                .chain(&r.set_body)
                .map(|(_, e)| e)
        })
    }
}

impl std::fmt::Debug for TransformStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformStep")
            .field("capability", &self.capability)
            .field("transform", &self.transform)
            .finish()
    }
}

impl<S: std::hash::BuildHasher> SecretLookup for HashMap<String, Zeroizing<String>, S> {
    fn secret(&self, name: &str) -> Option<Zeroizing<String>> {
        self.get(name).cloned()
    }
}

impl SecretLookup for BTreeMap<String, Zeroizing<String>> {
    fn secret(&self, name: &str) -> Option<Zeroizing<String>> {
        self.get(name).cloned()
    }
}

/// One rewrite transform, parts in their fixed order.
fn apply_rewrite(
    r: &Rewrite,
    req: &mut RequestParts,
    vars: &Result<CelVars, String>,
    secrets: &dyn SecretLookup,
) -> Result<(), String> {
    let vars = vars
        .as_ref()
        .map_err(|e| format!("cel_error: {e}"))?
        .activation();
    let values = fetch_secrets(r, secrets)?;
    let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let scoped = vars.with_secrets(&pairs);
    let vars = &scoped;
    let cel = |e: String| format!("cel_error: {e}");

    if !r.remove_headers.is_empty() {
        req.headers
            .retain(|(n, _)| !r.remove_headers.iter().any(|h| h.eq_ignore_ascii_case(n)));
    }
    for (name, expr) in &r.set_headers {
        let value = expr.eval_string(vars).map_err(cel)?;
        if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err("invalid_header_value".to_owned());
        }
        req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        req.headers.push((name.clone(), value));
    }

    if !r.remove_query.is_empty() || !r.set_query.is_empty() {
        let mut set = Vec::with_capacity(r.set_query.len());
        for (name, expr) in &r.set_query {
            set.push((name.as_str(), expr.eval_string(vars).map_err(cel)?));
        }
        req.query = query::edit(req.query.as_deref(), &r.remove_query, &set);
    }

    if let Some(rw) = &r.rewrite_path {
        let rewritten = rw.apply(&req.path);
        req.path = canonicalize_path(&rewritten).map_err(|_| "invalid_path".to_owned())?;
    }

    if !r.set_body.is_empty() {
        let body = req
            .body
            .as_mut()
            .ok_or_else(|| "body_not_json".to_owned())?;
        for (ptr, expr) in &r.set_body {
            let value = expr.eval_json(vars).map_err(cel)?;
            pointer::set(body, ptr, value).map_err(|_| "invalid_pointer".to_owned())?;
        }
    }
    Ok(())
}

/// The secrets this rewrite's values read, or `auth_unavailable`.
fn fetch_secrets<'r>(
    r: &'r Rewrite,
    lookup: &dyn SecretLookup,
) -> Result<Vec<(&'r str, Zeroizing<String>)>, String> {
    let mut names: Vec<&str> = r
        .set_headers
        .iter()
        .chain(&r.set_query)
        .chain(&r.set_body)
        .flat_map(|(_, e)| e.secrets().iter().map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let value = lookup
                .secret(name)
                .ok_or_else(|| "auth_unavailable".to_owned())?;
            Ok((name, value))
        })
        .collect()
}
