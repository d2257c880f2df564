//! CEL: the predicates of allow rules (`match:`) and the values of
//! transforms, compiled once at load and evaluated on the proxy's hot path.
//!
//! A CEL expression is refused before it reaches the (recursive) parser
//! when it is longer than [`MAX_CEL_BYTES`], spans several lines, or nests
//! deeper than [`MAX_CEL_DEPTH`] (counted on its tokens, see [`scan`]).
//! After parsing, the tree is checked again (depth, variables, `secrets`
//! use, `matches` patterns, nested comprehensions, see [`check`]) so that
//! evaluation stays shallow and linear in the request's size.

mod activation;
mod check;
mod scan;

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, OnceLock};

use cel::context::VariableResolver;

use crate::host::normalize_host;
use crate::path::canonicalize_path;
use crate::policy::RequestFacts;
use cel::{Context, Env, Program, Value};

pub(crate) use activation::{decode_component, Activation};

/// A set of `request` fields (one bit each), so that only the fields some
/// expression reads are built for a request.
pub(crate) type RequestFields = u16;

/// Every `request` field.
pub(crate) const ALL_REQUEST_FIELDS: RequestFields = u16::MAX;

/// Whether `fields` holds `request.body`.
pub(crate) fn includes_body(fields: RequestFields) -> bool {
    fields & check::request_field_bit("body") != 0
}

/// Longest CEL expression accepted, in bytes.
pub const MAX_CEL_BYTES: usize = 4 * 1024;

/// Deepest nesting of brackets and prefix operators accepted in a CEL
/// expression.
pub const MAX_CEL_DEPTH: usize = 32;

/// A compiled CEL expression. Cheap to clone; equality is on the source
/// text, which is what canonical output prints.
#[derive(Clone)]
pub struct CelExpr {
    inner: Arc<Compiled>,
}

/// The CEL variables of one request (`request`, `workspace`, `task`),
/// built once and shared by every evaluation for that request.
pub struct CelVars {
    inner: Activation,
}

/// Where an expression stands, which decides the variables it may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CelRole {
    /// An allow rule's `match:`: `request`, `workspace`, `task`.
    Match,
    /// A transform value: those plus `secrets["name"]`.
    Value,
}

struct Compiled {
    source: String,
    program: Program,
    reads_body: bool,
    request_fields: RequestFields,
    secrets: Vec<String>,
}

/// Why an expression was refused at load. Messages are lowercase and name
/// the problem; the loader adds the YAML position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CelError {
    #[error("expression is {len} bytes, over the 4 KiB limit")]
    TooLong { len: usize },
    #[error("expression must be a single line")]
    MultiLine,
    #[error("expression nests deeper than 32 levels")]
    TooDeep,
    #[error("col {col} in the expression: {message}")]
    Syntax { col: isize, message: String },
    #[error("{0}")]
    Check(String),
    #[error("the CEL parser failed on this expression")]
    ParserPanic,
}

impl CelExpr {
    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// Whether the expression reads `request.body` (the proxy must buffer
    /// the body before it can be evaluated).
    pub fn reads_body(&self) -> bool {
        self.inner.reads_body
    }

    /// The secret names read as `secrets["name"]` (or `secrets.name`),
    /// sorted and deduplicated. Always empty for a `match:` predicate.
    pub fn secrets(&self) -> &[String] {
        &self.inner.secrets
    }

    /// Evaluates this expression as a `match:` predicate: `Ok(true)` only
    /// for the boolean `true`; errors are the evaluator's message (the
    /// decision reason is then `cel_error: <message>`).
    pub fn evaluate(&self, vars: &CelVars) -> Result<bool, String> {
        self.eval_bool(&vars.inner)
    }

    /// The `request` fields this expression reads.
    pub(crate) fn request_fields(&self) -> RequestFields {
        self.inner.request_fields
    }

    /// Compiles `source` for `role`, checking every limit first.
    pub(crate) fn compile(source: &str, role: CelRole) -> Result<CelExpr, CelError> {
        if source.len() > MAX_CEL_BYTES {
            return Err(CelError::TooLong { len: source.len() });
        }
        if source.contains(['\n', '\r']) {
            return Err(CelError::MultiLine);
        }
        if scan::nesting_depth(source) > MAX_CEL_DEPTH {
            return Err(CelError::TooDeep);
        }

        // The parser is generated code we do not control: a panic in it is
        // a refused expression, never a crashed control plane.
        let parsed = catch_unwind(AssertUnwindSafe(|| env().compile(source)))
            .map_err(|_| CelError::ParserPanic)?;
        let program = parsed.map_err(|e| {
            let first = e.errors.first();
            CelError::Syntax {
                col: first.map_or(0, |e| e.pos.1 + 1),
                message: first.map_or_else(|| "invalid expression".to_owned(), |e| e.msg.clone()),
            }
        })?;

        let refs = check::check(program.expression(), role).map_err(CelError::Check)?;
        Ok(CelExpr {
            inner: Arc::new(Compiled {
                source: source.to_owned(),
                program,
                reads_body: refs.reads_body,
                request_fields: refs.request_fields,
                secrets: refs.secrets,
            }),
        })
    }

    /// Evaluates against `vars`. Errors are the evaluator's message.
    pub(crate) fn eval(&self, vars: &dyn VariableResolver) -> Result<Value, String> {
        let mut ctx = Context::with_env(Arc::clone(env()));
        ctx.set_variable_resolver(vars);
        self.inner.program.execute(&ctx).map_err(|e| e.to_string())
    }

    /// Evaluates a predicate: `Ok(true)` only for the boolean `true`.
    pub(crate) fn eval_bool(&self, vars: &dyn VariableResolver) -> Result<bool, String> {
        match self.eval(vars)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!(
                "expression evaluated to {}, not bool",
                other.type_of()
            )),
        }
    }

    /// Evaluates a transform value that must be a string.
    pub(crate) fn eval_string(&self, vars: &dyn VariableResolver) -> Result<String, String> {
        match self.eval(vars)? {
            Value::String(s) => Ok(Arc::unwrap_or_clone(s)),
            other => Err(format!(
                "expression evaluated to {}, not string",
                other.type_of()
            )),
        }
    }

    /// Evaluates a transform value and converts it to JSON.
    pub(crate) fn eval_json(
        &self,
        vars: &dyn VariableResolver,
    ) -> Result<serde_json::Value, String> {
        let value = self.eval(vars)?;
        value.json().map_err(|e| e.to_string())
    }
}

impl CelVars {
    /// The variables of `facts`, with `body` as `request.body` (`null`
    /// when `None`).
    ///
    /// # Errors
    /// An invalid host or path, a query that is not percent-encoded UTF-8,
    /// or a body nested deeper than 128 levels.
    pub fn new(
        facts: &RequestFacts<'_>,
        body: Option<&serde_json::Value>,
    ) -> Result<CelVars, String> {
        CelVars::with_fields(facts, body, ALL_REQUEST_FIELDS)
    }

    /// [`CelVars::new`] building only the `request` fields in `fields`.
    pub(crate) fn with_fields(
        facts: &RequestFacts<'_>,
        body: Option<&serde_json::Value>,
        fields: RequestFields,
    ) -> Result<CelVars, String> {
        let (host, _) = normalize_host(facts.host).map_err(|e| e.to_string())?;
        let raw_path = facts
            .target
            .split_once('?')
            .map_or(facts.target, |(p, _)| p);
        let path = canonicalize_path(raw_path).map_err(|e| e.to_string())?;
        let inner = Activation::build(facts, &host, &path, body, fields)?;
        Ok(CelVars { inner })
    }

    pub(crate) fn activation(&self) -> &Activation {
        &self.inner
    }
}

impl PartialEq for CelExpr {
    fn eq(&self, other: &CelExpr) -> bool {
        self.source() == other.source()
    }
}

impl Eq for CelExpr {}

impl std::hash::Hash for CelExpr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.source().hash(state);
    }
}

impl fmt::Debug for CelExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CelExpr").field(&self.source()).finish()
    }
}

impl fmt::Display for CelExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.source())
    }
}

/// The standard CEL environment, built once per process.
fn env() -> &'static Arc<Env> {
    static ENV: OnceLock<Arc<Env>> = OnceLock::new();
    // No optional syntax (`a.?b`): every read of a variable is a plain
    // selection that `check` can see.
    ENV.get_or_init(|| Arc::new(Env::stdlib().with_optional_support(false)))
}
