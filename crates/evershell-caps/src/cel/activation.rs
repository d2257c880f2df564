//! The variables an expression sees (caps-yaml.md, "CEL predicates"),
//! built once per request and lent to every evaluation.

use std::collections::HashMap;

use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;

use crate::policy::RequestFacts;
use crate::Scheme;

use super::check::request_field_bit;
use super::RequestFields;

/// Deepest JSON body turned into a CEL value (serde_json's own parser stops
/// at 128 levels; this bounds bodies built by other means).
const MAX_BODY_DEPTH: usize = 128;

/// A CEL value owning its data.
type Owned = Box<dyn Val>;

/// The values of `request`, `workspace` and `task` for one request,
/// converted once; `secrets` is empty (see [`Activation::with_secrets`]).
pub(crate) struct Activation {
    request: Owned,
    workspace: Owned,
    task: Owned,
    no_secrets: Owned,
}

/// An activation plus the secrets one transform reads.
pub(crate) struct WithSecrets<'a> {
    base: &'a Activation,
    secrets: Owned,
}

impl std::fmt::Debug for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never reach a log.
        f.debug_struct("Activation").finish_non_exhaustive()
    }
}

impl Activation {
    /// The variables of a request whose normalised host and canonical path
    /// are known. `body` is the parsed JSON body (`null` when absent or not
    /// JSON).
    ///
    /// # Errors
    /// A query string that is not percent-encoded UTF-8, or a body nested
    /// deeper than 128 levels.
    pub(crate) fn build(
        facts: &RequestFacts<'_>,
        host: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        fields: RequestFields,
    ) -> Result<Activation, String> {
        let wanted = |field: &str| fields & request_field_bit(field) != 0;
        let mut request: Vec<(&str, Owned)> = Vec::with_capacity(9);
        if wanted("query") || wanted("query_all") {
            let query = facts.target.split_once('?').map_or("", |(_, q)| q);
            let pairs = decode_query(query)?;
            request.push(("query", first_values(&pairs)));
            request.push(("query_all", all_values(pairs)));
        }
        if wanted("body") {
            let body = match body {
                Some(json) => json_to_cel(json, 0)?,
                None => Box::new(CelNull),
            };
            request.push(("body", body));
        }
        if wanted("headers") {
            request.push(("headers", headers(facts.headers)));
        }
        let scheme = match facts.scheme {
            Scheme::Https => "https",
            Scheme::Http => "http",
        };
        let port = || Box::new(CelInt::from(i64::from(facts.port))) as Owned;
        let scalars: [(&str, &dyn Fn() -> Owned); 5] = [
            ("method", &|| string(facts.method)),
            ("scheme", &|| string(scheme)),
            ("host", &|| string(host)),
            ("port", &port),
            ("path", &|| string(path)),
        ];
        for (name, value) in scalars {
            if wanted(name) {
                request.push((name, value()));
            }
        }
        let request = map_of(request.into_iter());
        let ws = facts.workspace;
        let workspace = map([
            ("id", string(ws.id)),
            ("role", string(ws.role)),
            ("environment", string(ws.environment)),
        ]);
        let task = match facts.task_id {
            Some(id) => map([("id", string(id))]),
            None => map([]),
        };
        Ok(Activation {
            request,
            workspace,
            task,
            no_secrets: map([]),
        })
    }

    /// These variables with `secrets` holding `values` (name, value).
    pub(crate) fn with_secrets(&self, values: &[(&str, &str)]) -> WithSecrets<'_> {
        let secrets = values.iter().map(|(k, v)| (*k, string(v)));
        WithSecrets {
            base: self,
            secrets: map_of(secrets),
        }
    }
}

impl VariableResolver for Activation {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let value: &'b dyn Val = match variable {
            "request" => &*self.request,
            "workspace" => &*self.workspace,
            "task" => &*self.task,
            "secrets" => &*self.no_secrets,
            _ => return None,
        };
        Some(CowVal::Borrowed(value))
    }
}

impl VariableResolver for WithSecrets<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        match variable {
            "secrets" => Some(CowVal::Borrowed(&*self.secrets)),
            other => self.base.resolve(other),
        }
    }
}

/// Splits and decodes a raw query string: `key=value` pairs separated by
/// `&` or `;`, `+` read as a space and percent escapes decoded (as HTML
/// forms and most servers do). Some servers (Rack among them) also split on
/// `;`, so predicates see every pair any server could see: a value that
/// hides `;branch=main` shows up as a second `branch`. Empty pieces are
/// skipped; a piece without `=` has an empty value.
///
/// # Errors
/// A malformed percent escape, or a name or value that is not UTF-8.
pub(crate) fn decode_query(query: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for piece in query.split(['&', ';']).filter(|p| !p.is_empty()) {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        out.push((decode_component(k)?, decode_component(v)?));
    }
    Ok(out)
}

/// Percent-decodes one query component, `+` as space.
pub(crate) fn decode_component(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| "query has a malformed percent escape".to_owned())?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "query is not UTF-8 once decoded".to_owned())
}

/// A JSON value as a CEL value: integers that fit stay integers (`int`,
/// else `uint`), other numbers are doubles.
pub(crate) fn json_to_cel(json: &serde_json::Value, depth: usize) -> Result<Owned, String> {
    if depth > MAX_BODY_DEPTH {
        return Err(format!("body nests deeper than {MAX_BODY_DEPTH} levels"));
    }
    Ok(match json {
        serde_json::Value::Null => Box::new(CelNull),
        serde_json::Value::Bool(b) => Box::new(CelBool::from(*b)),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Box::new(CelInt::from(i)),
            (None, Some(u)) => Box::new(CelUInt::from(u)),
            _ => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        serde_json::Value::String(s) => string(s),
        serde_json::Value::Array(items) => {
            let list = items
                .iter()
                .map(|i| json_to_cel(i, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Box::new(CelList::from(list))
        }
        serde_json::Value::Object(fields) => {
            let mut out: HashMap<CelMapKey<'static>, Owned> = HashMap::with_capacity(fields.len());
            for (k, v) in fields {
                out.insert(CelMapKey::from(k.clone()), json_to_cel(v, depth + 1)?);
            }
            Box::new(CelMap::from(out))
        }
    })
}

/// `request.query`: the first value of each parameter.
fn first_values(pairs: &[(String, String)]) -> Owned {
    let mut out: HashMap<CelMapKey<'static>, Owned> = HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        out.entry(CelMapKey::from(k.clone()))
            .or_insert_with(|| string(v));
    }
    Box::new(CelMap::from(out))
}

/// `request.query_all`: every value of each parameter, in order.
fn all_values(pairs: Vec<(String, String)>) -> Owned {
    let mut grouped: HashMap<String, Vec<Owned>> = HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        grouped
            .entry(k)
            .or_default()
            .push(Box::new(CelString::from(v)));
    }
    let out: HashMap<CelMapKey<'static>, Owned> = grouped
        .into_iter()
        .map(|(k, vs)| (CelMapKey::from(k), Box::new(CelList::from(vs)) as Owned))
        .collect();
    Box::new(CelMap::from(out))
}

/// `request.headers`: lower-cased names, repeated headers joined with
/// `, ` in order (RFC 9110 §5.3).
fn headers(raw: &[(String, String)]) -> Owned {
    let mut joined: HashMap<String, String> = HashMap::with_capacity(raw.len());
    for (name, value) in raw {
        joined
            .entry(name.to_ascii_lowercase())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    let out: HashMap<CelMapKey<'static>, Owned> = joined
        .into_iter()
        .map(|(k, v)| (CelMapKey::from(k), Box::new(CelString::from(v)) as Owned))
        .collect();
    Box::new(CelMap::from(out))
}

fn string(s: &str) -> Owned {
    Box::new(CelString::from(s.to_owned()))
}

fn map<const N: usize>(entries: [(&str, Owned); N]) -> Owned {
    map_of(entries.into_iter())
}

fn map_of<'k>(entries: impl Iterator<Item = (&'k str, Owned)>) -> Owned {
    let out: HashMap<CelMapKey<'static>, Owned> = entries
        .map(|(k, v)| (CelMapKey::from(k.to_owned()), v))
        .collect();
    Box::new(CelMap::from(out))
}
