//! Static checks on a parsed CEL tree, and what the policy needs to know
//! about it: whether it reads `request.body`, which secrets it reads.
//!
//! The rules keep every read of a variable visible: `request`, `workspace`
//! and `task` are only read through a known field (`request.path`), and
//! `secrets` only with a literal name (`secrets["tenant-id"]`). That is
//! what lets the proxy buffer the body and pre-fetch secrets before
//! evaluating. The walk recurses, so the tree's depth is checked first,
//! without recursing.

use std::collections::BTreeSet;

use cel::common::ast::{operators, CallExpr, EntryExpr, Expr, IdedExpr, LiteralValue};

use crate::rewrite::regex_message;

use super::CelRole;

/// Deepest expression tree accepted after parsing. Left-nested chains
/// (`a + b + c + …`, `a.b.c.…`) are not brackets, so the token count does
/// not see them; evaluation recurses once per level.
const MAX_TREE_DEPTH: usize = 64;

/// Largest compiled size of a `matches` pattern, in bytes of the regex
/// crate's program.
const MAX_PATTERN_PROGRAM_BYTES: usize = 64 * 1024;

const REQUEST_FIELDS: &[&str] = &[
    "method",
    "scheme",
    "host",
    "port",
    "path",
    "query",
    "query_all",
    "headers",
    "body",
];
const WORKSPACE_FIELDS: &[&str] = &["id", "role", "environment"];
const TASK_FIELDS: &[&str] = &["id"];

/// Type names that may appear as identifiers (`type(x) == string`).
const TYPE_NAMES: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "dyn",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
];

/// What a checked expression reads.
#[derive(Debug, Default)]
pub(super) struct Refs {
    pub reads_body: bool,
    /// One bit per entry of [`REQUEST_FIELDS`] the expression reads.
    pub request_fields: u16,
    pub secrets: Vec<String>,
}

/// The bit of a `request` field in [`Refs::request_fields`].
pub(super) fn request_field_bit(field: &str) -> u16 {
    REQUEST_FIELDS
        .iter()
        .position(|f| *f == field)
        .map_or(0, |i| 1 << i)
}

/// Checks `root` for `role`; the error is a lowercase message.
pub(super) fn check(root: &IdedExpr, role: CelRole) -> Result<Refs, String> {
    if !depth_within(root, MAX_TREE_DEPTH) {
        return Err(format!(
            "expression tree is deeper than {MAX_TREE_DEPTH} levels"
        ));
    }
    let mut walker = Walker {
        role,
        bound: Vec::new(),
        in_loop: 0,
        request_fields: 0,
        secrets: BTreeSet::new(),
    };
    walker.expr(root)?;
    if role == CelRole::Match {
        if let Expr::Literal(lit) = &root.expr {
            if !matches!(lit, LiteralValue::Boolean(_)) {
                return Err("a match expression must evaluate to bool".to_owned());
            }
        }
    }
    Ok(Refs {
        reads_body: walker.request_fields & request_field_bit("body") != 0,
        request_fields: walker.request_fields,
        secrets: walker.secrets.into_iter().collect(),
    })
}

/// Whether the tree is at most `limit` deep, found with an explicit stack.
fn depth_within(root: &IdedExpr, limit: usize) -> bool {
    let mut stack: Vec<(&IdedExpr, usize)> = vec![(root, 1)];
    while let Some((e, depth)) = stack.pop() {
        if depth > limit {
            return false;
        }
        for child in children(e) {
            stack.push((child, depth + 1));
        }
    }
    true
}

/// The direct sub-expressions of `e`.
fn children(e: &IdedExpr) -> Vec<&IdedExpr> {
    match &e.expr {
        Expr::Call(call) => call.target.iter().map(|t| &**t).chain(&call.args).collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        Expr::List(list) => list.elements.iter().collect(),
        Expr::Map(map) => map
            .entries
            .iter()
            .flat_map(|e| entry_children(&e.expr))
            .collect(),
        Expr::Struct(s) => s
            .entries
            .iter()
            .flat_map(|e| entry_children(&e.expr))
            .collect(),
        Expr::Select(select) => vec![&*select.operand],
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

fn entry_children(entry: &EntryExpr) -> Vec<&IdedExpr> {
    match entry {
        EntryExpr::StructField(f) => vec![&f.value],
        EntryExpr::MapEntry(m) => vec![&m.key, &m.value],
    }
}

struct Walker {
    role: CelRole,
    /// Comprehension variables in scope, innermost last.
    bound: Vec<String>,
    /// How many comprehension bodies enclose the current node.
    in_loop: usize,
    request_fields: u16,
    secrets: BTreeSet<String>,
}

impl Walker {
    fn expr(&mut self, e: &IdedExpr) -> Result<(), String> {
        match &e.expr {
            Expr::Ident(name) => self.ident(name),
            Expr::Select(select) => match &select.operand.expr {
                Expr::Ident(root) if !self.is_bound(root) => {
                    self.variable_field(root, &select.field)
                }
                _ => self.expr(&select.operand),
            },
            Expr::Call(call) => self.call(call),
            Expr::Comprehension(c) => {
                if self.in_loop > 0 {
                    return Err("nested comprehensions (a macro like all or exists inside \
                                another one's body) are not allowed"
                        .to_owned());
                }
                self.expr(&c.iter_range)?;
                self.expr(&c.accu_init)?;
                let vars = [Some(&c.iter_var), c.iter_var2.as_ref(), Some(&c.accu_var)];
                let pushed = vars.iter().flatten().count();
                self.bound
                    .extend(vars.iter().flatten().map(|v| (*v).clone()));
                self.in_loop += 1;
                let body = [&c.loop_cond, &c.loop_step, &c.result]
                    .into_iter()
                    .try_for_each(|part| self.expr(part));
                self.in_loop -= 1;
                self.bound.truncate(self.bound.len() - pushed);
                body
            }
            Expr::Struct(s) => Err(format!(
                "message construction ({}{{…}}) is not supported",
                s.type_name
            )),
            Expr::List(_) | Expr::Map(_) => children(e).into_iter().try_for_each(|c| self.expr(c)),
            Expr::Literal(_) => Ok(()),
            Expr::Unspecified => Err("incomplete expression".to_owned()),
        }
    }

    fn is_bound(&self, name: &str) -> bool {
        self.bound.iter().any(|b| b == name)
    }

    /// A bare identifier: a comprehension variable or a type name; the
    /// variables themselves are only read through a field.
    fn ident(&mut self, name: &str) -> Result<(), String> {
        if self.is_bound(name) || TYPE_NAMES.contains(&name) {
            return Ok(());
        }
        match name {
            "request" | "workspace" | "task" => Err(format!(
                "{name} can only be read through one of its fields (e.g. {name}.{})",
                fields_of(name)[0]
            )),
            "secrets" => Err(self.secrets_hint()),
            other => Err(format!(
                "unknown variable {other:?} (expected {})",
                self.variables()
            )),
        }
    }

    /// `root.field` where `root` is not a comprehension variable.
    fn variable_field(&mut self, root: &str, field: &str) -> Result<(), String> {
        match root {
            "request" | "workspace" | "task" => {
                if !fields_of(root).contains(&field) {
                    return Err(format!(
                        "unknown field {root}.{field} (expected one of: {})",
                        fields_of(root).join(", ")
                    ));
                }
                if root == "request" {
                    self.request_fields |= request_field_bit(field);
                }
                Ok(())
            }
            "secrets" => self.secret(field),
            _ => self.ident(root),
        }
    }

    fn call(&mut self, call: &CallExpr) -> Result<(), String> {
        if call.func_name == operators::INDEX && call.target.is_none() && call.args.len() == 2 {
            if let Expr::Ident(root) = &call.args[0].expr {
                if !self.is_bound(root) {
                    return self.index_variable(root, &call.args[1]);
                }
            }
        }
        if call.func_name == "matches" {
            let pattern = match (&call.target, call.args.as_slice()) {
                (Some(_), [pattern]) | (None, [_, pattern]) => Some(pattern),
                _ => None,
            };
            if let Some(pattern) = pattern {
                check_pattern(pattern)?;
            }
        }
        if let Some(target) = &call.target {
            self.expr(target)?;
        }
        call.args.iter().try_for_each(|a| self.expr(a))
    }

    /// `root[index]` where `root` is a variable name.
    fn index_variable(&mut self, root: &str, index: &IdedExpr) -> Result<(), String> {
        let literal = match &index.expr {
            Expr::Literal(LiteralValue::String(s)) => Some(s.inner().to_owned()),
            _ => None,
        };
        match (root, literal) {
            ("secrets", Some(name)) => self.secret(&name),
            ("secrets", None) => Err(self.secrets_hint()),
            ("request" | "workspace" | "task", Some(field)) => self.variable_field(root, &field),
            ("request" | "workspace" | "task", None) => Err(format!(
                "{root} can only be read through one of its fields (e.g. {root}.{})",
                fields_of(root)[0]
            )),
            _ => {
                self.ident(root)?;
                self.expr(index)
            }
        }
    }

    fn secret(&mut self, name: &str) -> Result<(), String> {
        if self.role == CelRole::Match {
            return Err("secrets can only be read in transforms, not in match".to_owned());
        }
        if name.is_empty() {
            return Err("secret names must not be empty".to_owned());
        }
        self.secrets.insert(name.to_owned());
        Ok(())
    }

    fn secrets_hint(&self) -> String {
        match self.role {
            CelRole::Match => "secrets can only be read in transforms, not in match".to_owned(),
            CelRole::Value => {
                "secrets can only be read with a literal name (secrets[\"name\"])".to_owned()
            }
        }
    }

    fn variables(&self) -> &'static str {
        match self.role {
            CelRole::Match => "request, workspace or task",
            CelRole::Value => "request, workspace, task or secrets",
        }
    }
}

fn fields_of(root: &str) -> &'static [&'static str] {
    match root {
        "request" => REQUEST_FIELDS,
        "workspace" => WORKSPACE_FIELDS,
        _ => TASK_FIELDS,
    }
}

/// A `matches` pattern must be a string literal that compiles within a
/// size limit: the regex is then known at load, and (the regex crate being
/// linear-time) its cost is bounded by the input.
fn check_pattern(pattern: &IdedExpr) -> Result<(), String> {
    let Expr::Literal(LiteralValue::String(text)) = &pattern.expr else {
        return Err("matches() needs a string literal pattern".to_owned());
    };
    regex::RegexBuilder::new(text.inner())
        .size_limit(MAX_PATTERN_PROGRAM_BYTES)
        .build()
        .map(|_| ())
        .map_err(|e| format!("matches() pattern: {}", regex_message(&e)))
}
