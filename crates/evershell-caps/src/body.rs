//! Request-body checks of allow rules: a size limit and an optional JSON
//! Schema, compiled once at load.

use std::fmt;
use std::sync::Arc;

use jsonschema::{PatternOptions, Validator};

/// `body.max_bytes` when it is not written: 1 MiB.
pub const DEFAULT_BODY_MAX_BYTES: usize = 1024 * 1024;

/// Largest `body.max_bytes` accepted: 64 MiB (the proxy holds the body in
/// memory while it decides).
pub const MAX_BODY_MAX_BYTES: usize = 64 * 1024 * 1024;

/// Largest compiled size of a schema's `pattern` regexes, in bytes.
const MAX_SCHEMA_PATTERN_BYTES: usize = 64 * 1024;

/// An allow rule's `body:`. A request is admitted only when its body is at
/// most `max_bytes` long and, with a schema, parses as JSON and validates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyCheck {
    pub json_schema: Option<JsonSchema>,
    /// Default [`DEFAULT_BODY_MAX_BYTES`]; `0` admits only an empty body.
    pub max_bytes: usize,
}

/// A compiled JSON Schema (draft 2020-12 unless `$schema` names another).
/// Only local references (`#…`) are allowed; nothing is ever fetched.
/// `pattern` keywords use the linear-time regex engine. Equality is on the
/// schema document.
#[derive(Clone)]
pub struct JsonSchema {
    document: serde_json::Value,
    validator: Arc<Validator>,
}

/// Why a schema was refused at load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("json_schema must be a mapping (a JSON Schema object)")]
    NotAnObject,
    #[error("{keyword} {target:?} at {at}: only local references (\"#…\") are allowed")]
    RemoteRef {
        keyword: String,
        target: String,
        at: String,
    },
    #[error("invalid JSON Schema: {0}")]
    Invalid(String),
}

impl BodyCheck {
    /// Checks `body` (the whole request body, or its first `max_bytes + 1`
    /// bytes); `parsed` is the body parsed as JSON (`None` when it is not
    /// JSON). Returns whether a schema validation ran.
    ///
    /// # Errors
    /// The reason (`body_too_large`, `body_not_json`, `body_invalid`) and
    /// a sentence for `explain`.
    pub(crate) fn verify(
        &self,
        body: &[u8],
        parsed: Option<&serde_json::Value>,
    ) -> Result<bool, (&'static str, String)> {
        if body.len() > self.max_bytes {
            let why = format!("body is over the {}-byte limit", self.max_bytes);
            return Err(("body_too_large", why));
        }
        let Some(schema) = &self.json_schema else {
            return Ok(false);
        };
        let Some(json) = parsed else {
            return Err(("body_not_json", "body is not JSON".to_owned()));
        };
        match schema.first_error(json) {
            None => Ok(true),
            Some(e) => Err((
                "body_invalid",
                format!("body does not match json_schema: {e}"),
            )),
        }
    }
}

impl JsonSchema {
    /// Compiles a schema document.
    ///
    /// # Errors
    /// A document that is not an object, a `$ref` (or `$dynamicRef`,
    /// `$recursiveRef`) that is not local, or an invalid schema.
    pub fn compile(document: serde_json::Value) -> Result<JsonSchema, SchemaError> {
        if !document.is_object() {
            return Err(SchemaError::NotAnObject);
        }
        check_refs(&document)?;
        let validator = jsonschema::options()
            .offline()
            .with_pattern_options(PatternOptions::regex().size_limit(MAX_SCHEMA_PATTERN_BYTES))
            .build(&document)
            .map_err(|e| SchemaError::Invalid(e.to_string()))?;
        Ok(JsonSchema {
            document,
            validator: Arc::new(validator),
        })
    }

    /// The schema as written (JSON).
    pub fn document(&self) -> &serde_json::Value {
        &self.document
    }

    /// Whether `instance` validates.
    pub fn is_valid(&self, instance: &serde_json::Value) -> bool {
        self.validator.is_valid(instance)
    }

    /// The first validation error, as `<instance pointer>: <message>`;
    /// `None` when `instance` validates.
    pub fn first_error(&self, instance: &serde_json::Value) -> Option<String> {
        self.validator.validate(instance).err().map(|e| {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() { "/" } else { at.as_str() };
            format!("{at}: {e}")
        })
    }
}

impl PartialEq for JsonSchema {
    fn eq(&self, other: &JsonSchema) -> bool {
        self.document == other.document
    }
}

impl Eq for JsonSchema {}

impl fmt::Debug for JsonSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JsonSchema").field(&self.document).finish()
    }
}

/// Refuses references that would leave the document, walking it with an
/// explicit stack (the document came from YAML nested at most 64 deep, but
/// the walk does not rely on it).
fn check_refs(document: &serde_json::Value) -> Result<(), SchemaError> {
    let mut stack: Vec<(&serde_json::Value, String)> = vec![(document, String::new())];
    while let Some((node, at)) = stack.pop() {
        match node {
            serde_json::Value::Object(fields) => {
                for (key, value) in fields {
                    let is_ref = matches!(key.as_str(), "$ref" | "$dynamicRef" | "$recursiveRef");
                    if let (true, Some(target)) = (is_ref, value.as_str()) {
                        if !target.starts_with('#') {
                            return Err(SchemaError::RemoteRef {
                                keyword: key.clone(),
                                target: target.to_owned(),
                                at: pointer_or_root(&at),
                            });
                        }
                    }
                    stack.push((value, format!("{at}/{}", escape_pointer(key))));
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    stack.push((item, format!("{at}/{i}")));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn pointer_or_root(at: &str) -> String {
    if at.is_empty() {
        "the schema root".to_owned()
    } else {
        at.to_owned()
    }
}

/// RFC 6901 §3: `~` → `~0`, `/` → `~1`.
fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}
