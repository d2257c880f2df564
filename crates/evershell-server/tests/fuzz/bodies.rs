//! Random request bodies for one route, shaped by the route's request
//! schema from the OpenAPI document: valid-shaped bodies (values drawn
//! from the schema, with realistic values for well-known field names) and
//! their mutations, next to plain garbage.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Map, Value};

/// What kind of body was sent, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    RandomBytes,
    Truncated,
    Malformed,
    RandomValue,
    Valid,
    WrongType,
    UnknownField,
    MissingField,
    HugeString,
    DeepNesting,
    BadName,
    OverLimit,
}

/// One body to send.
pub struct Body {
    pub kind: Kind,
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

/// Generates bodies for one route.
pub struct Bodies<'a> {
    /// The route's JSON request schema.
    pub schema: &'a Value,
    /// `components.schemas` of the document, to resolve `$ref`s.
    pub components: &'a Value,
    /// Bodies over this many bytes are refused as too large.
    pub limit: usize,
}

/// Strings that are not resource names: case, length, separators, control
/// characters, path and SQL metacharacters, non-ASCII.
const BAD_NAMES: &[&str] = &[
    "",
    " ",
    "UPPER",
    "1starts-with-digit",
    "-dash",
    "has space",
    "under_score",
    "dot.dot",
    "../../etc/passwd",
    "a/b",
    "a\\b",
    "x'; DROP TABLE providers; --",
    "nul\u{0}byte",
    "tab\there",
    "newline\n",
    "é",
    "日本語",
    "emoji-🙂",
    "\u{202e}rtl",
    "%2e%2e",
    "{id}",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

/// A small caps.yaml that parses, to mutate.
const CAPS: &str = "- name: docs\n  domains: [docs.example.test]\n  methods: [GET]\n";

impl Bodies<'_> {
    pub fn next(&self, rng: &mut StdRng) -> Body {
        let kinds: &[(Kind, u32)] = &[
            (Kind::RandomBytes, 8),
            (Kind::Truncated, 8),
            (Kind::Malformed, 8),
            (Kind::RandomValue, 8),
            (Kind::Valid, 14),
            (Kind::WrongType, 14),
            (Kind::UnknownField, 8),
            (Kind::MissingField, 8),
            (Kind::HugeString, 2),
            (Kind::DeepNesting, 6),
            (Kind::BadName, 14),
            (Kind::OverLimit, 1),
        ];
        let total: u32 = kinds.iter().map(|(_, w)| w).sum();
        let mut pick = rng.gen_range(0..total);
        let kind = kinds
            .iter()
            .find(|(_, w)| {
                let found = pick < *w;
                pick = pick.saturating_sub(*w);
                found
            })
            .map(|(k, _)| *k)
            .expect("weights cover the range");
        self.body(kind, rng)
    }

    fn body(&self, kind: Kind, rng: &mut StdRng) -> Body {
        let json_body = |value: Value| Body {
            kind,
            bytes: serde_json::to_vec(&value).expect("values serialize"),
            content_type: "application/json",
        };
        match kind {
            Kind::RandomBytes => {
                let len = rng.gen_range(0..512);
                let bytes = (0..len).map(|_| rng.gen()).collect();
                let content_type = *[
                    "application/json",
                    "application/json",
                    "text/plain",
                    "multipart/form-data",
                    "application/x-www-form-urlencoded",
                ]
                .choose(rng)
                .expect("non-empty");
                Body {
                    kind,
                    bytes,
                    content_type,
                }
            }
            Kind::Truncated => {
                let mut bytes = serde_json::to_vec(&self.valid(rng)).expect("serializes");
                let cut = rng.gen_range(0..bytes.len().max(1));
                bytes.truncate(cut);
                Body {
                    kind,
                    bytes,
                    content_type: "application/json",
                }
            }
            Kind::Malformed => {
                let mut bytes = serde_json::to_vec(&self.valid(rng)).expect("serializes");
                for _ in 0..rng.gen_range(1..4) {
                    let at = rng.gen_range(0..=bytes.len());
                    let junk = *b",:{}[]\"\\'0x\xff\x00 ".choose(rng).expect("non-empty");
                    if rng.gen_bool(0.5) && at < bytes.len() {
                        bytes[at] = junk;
                    } else {
                        bytes.insert(at, junk);
                    }
                }
                Body {
                    kind,
                    bytes,
                    content_type: "application/json",
                }
            }
            Kind::RandomValue => json_body(random_value(rng, 3)),
            Kind::Valid => json_body(self.valid(rng)),
            Kind::WrongType => {
                let mut value = self.valid(rng);
                match value.as_object_mut().filter(|o| !o.is_empty()) {
                    Some(object) if rng.gen_bool(0.9) => {
                        let keys: Vec<String> = object.keys().cloned().collect();
                        for _ in 0..rng.gen_range(1..=2) {
                            let key = keys.choose(rng).expect("non-empty");
                            let current = object[key].clone();
                            object.insert(key.clone(), other_type(&current, rng));
                        }
                    }
                    _ => value = other_type(&value, rng),
                }
                json_body(value)
            }
            Kind::UnknownField => {
                let mut value = self.valid(rng);
                if let Some(object) = value.as_object_mut() {
                    let name = *["files", "id", "org_id", "__proto__", "Name", "extra", ""]
                        .choose(rng)
                        .expect("non-empty");
                    object.insert(name.to_string(), random_value(rng, 2));
                }
                json_body(value)
            }
            Kind::MissingField => {
                let mut value = self.valid(rng);
                if let Some(object) = value.as_object_mut() {
                    let keys: Vec<String> = object.keys().cloned().collect();
                    if let Some(key) = keys.choose(rng) {
                        object.remove(key);
                    }
                }
                json_body(value)
            }
            Kind::HugeString => {
                let mut value = self.valid(rng);
                let high = self.limit.saturating_sub(1024).max(64 * 1024 + 1);
                let huge = "h".repeat(rng.gen_range(64 * 1024..high));
                self.set_some_string(&mut value, huge, rng);
                json_body(value)
            }
            Kind::DeepNesting => {
                let depth = rng.gen_range(2..4000);
                let nested = if rng.gen_bool(0.5) {
                    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
                } else {
                    format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
                };
                // At the top, or inside the first object-valued field.
                let text = match self.valid(rng) {
                    Value::Object(object) if rng.gen_bool(0.5) => {
                        let mut text = String::from("{");
                        for (key, value) in &object {
                            text.push_str(&format!("{}:{},", json!(key), value));
                        }
                        text.push_str(&format!("\"metadata\":{nested}}}"));
                        text
                    }
                    _ => nested,
                };
                Body {
                    kind,
                    bytes: text.into_bytes(),
                    content_type: "application/json",
                }
            }
            Kind::BadName => {
                let mut value = self.valid(rng);
                let bad = BAD_NAMES.choose(rng).expect("non-empty").to_string();
                self.set_some_string(&mut value, bad, rng);
                json_body(value)
            }
            Kind::OverLimit => {
                let mut bytes = serde_json::to_vec(&self.valid(rng)).expect("serializes");
                bytes.resize(self.limit + rng.gen_range(1..4096), b' ');
                Body {
                    kind,
                    bytes,
                    content_type: "application/json",
                }
            }
        }
    }

    /// Puts `text` into one string field (names first), or replaces the
    /// body when it has none.
    fn set_some_string(&self, value: &mut Value, text: String, rng: &mut StdRng) {
        let Some(object) = value.as_object_mut() else {
            *value = Value::String(text);
            return;
        };
        let mut keys: Vec<String> = object
            .iter()
            .filter(|(_, v)| v.is_string())
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort_by_key(|k| !(k == "name" || k.ends_with("_name") || k.ends_with("_id")));
        let key = if rng.gen_bool(0.6) {
            keys.first()
        } else {
            keys.choose(rng)
        };
        match key {
            Some(key) => {
                object.insert(key.clone(), Value::String(text));
            }
            None => {
                object.insert("name".to_string(), Value::String(text));
            }
        }
    }

    /// A body the schema admits, with well-known fields set to values the
    /// server knows most of the time.
    pub fn valid(&self, rng: &mut StdRng) -> Value {
        self.value_for(self.schema, None, rng, 0)
    }

    fn resolve<'s>(&'s self, schema: &'s Value) -> &'s Value {
        match schema["$ref"].as_str() {
            Some(reference) => {
                let name = reference.rsplit('/').next().expect("refs have a name");
                &self.components[name]
            }
            None => schema,
        }
    }

    fn value_for(
        &self,
        schema: &Value,
        field: Option<&str>,
        rng: &mut StdRng,
        depth: u32,
    ) -> Value {
        let schema = self.resolve(schema);
        if let Some(value) = field.and_then(|f| hint(f, rng)) {
            return value;
        }
        if let Some(options) = schema["anyOf"].as_array().or(schema["oneOf"].as_array()) {
            let option = options.choose(rng).expect("non-empty");
            return self.value_for(option, field, rng, depth);
        }
        if let Some(values) = schema["enum"].as_array() {
            return values.choose(rng).cloned().unwrap_or(Value::Null);
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        // Prefer a present value over null.
        let ty = types
            .iter()
            .find(|t| **t != "null" || rng.gen_bool(0.1))
            .or(types.first())
            .copied();
        match ty {
            Some("object") => self.object_for(schema, rng, depth),
            Some("array") => {
                let items = &schema["items"];
                let n = rng.gen_range(0..3);
                Value::Array(
                    (0..n)
                        .map(|_| self.value_for(items, None, rng, depth + 1))
                        .collect(),
                )
            }
            Some("string") => Value::String(slug(rng)),
            Some("integer") => {
                let min = schema["minimum"].as_i64().unwrap_or(i64::MIN / 2);
                let max = schema["maximum"].as_i64().unwrap_or(100_000).max(min);
                let edges = [min, max, 0, 1];
                match edges.choose(rng) {
                    Some(edge) if rng.gen_bool(0.3) && (min..=max).contains(edge) => json!(edge),
                    _ => json!(rng.gen_range(min.max(0)..=max.max(min.max(0)))),
                }
            }
            Some("number") => json!(rng.gen_range(-1000.0..1000.0)),
            Some("boolean") => json!(rng.gen_bool(0.5)),
            Some("null") => Value::Null,
            _ => random_value(rng, 2),
        }
    }

    fn object_for(&self, schema: &Value, rng: &mut StdRng, depth: u32) -> Value {
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut object = Map::new();
        match schema["properties"].as_object() {
            Some(properties) => {
                for (name, property) in properties {
                    if required.contains(&name.as_str()) || rng.gen_bool(0.5) {
                        let value = self.value_for(property, Some(name), rng, depth + 1);
                        object.insert(name.clone(), value);
                    }
                }
            }
            // A free-form map (`metadata`, `config`).
            None if depth < 4 => {
                for _ in 0..rng.gen_range(0..3) {
                    object.insert(slug(rng), random_value(rng, 2));
                }
            }
            None => {}
        }
        Value::Object(object)
    }
}

/// Values the server recognises, for fields with well-known names, most of
/// the time; `None` lets the schema decide.
fn hint(field: &str, rng: &mut StdRng) -> Option<Value> {
    if rng.gen_bool(0.25) {
        return None;
    }
    let choices: &[&str] = match field {
        "kind" => &[
            "anthropic",
            "openai",
            "gemini",
            "api_key",
            "query_api_key",
            "basic_auth",
        ],
        "provider" => &["anthropic", "openai"],
        "credential_name" => &["fuzz-cred", "fuzz-cred-openai"],
        "provider_id" => &["fuzz-provider"],
        "domain" => &[
            "api.example.test",
            "*.example.test",
            "EXAMPLE.test",
            "1.2.3.4",
            "[::1]",
        ],
        "permission_set" => &["full_access", "submit_observe", "read_only", "owner"],
        "environment" => &["development", "staging", "production", "moon"],
        "thinking_effort" => &["high", "medium", "low", "off", "max"],
        "pool_policy" => &["", "static", "dynamic"],
        "base_path" => &["/v1", "/openai/v1", "v1", "/../x"],
        "role_name" | "role_id" => &["no-such-role", "fuzz-absent"],
        "email" => &["owner@localhost", "nobody@example.test"],
        "capabilities" => return Some(Value::String(caps(rng))),
        _ => return None,
    };
    choices.choose(rng).map(|c| json!(c))
}

/// caps.yaml text: the sample, or the sample with a few bytes changed.
fn caps(rng: &mut StdRng) -> String {
    let mut text: Vec<char> = CAPS.chars().collect();
    if rng.gen_bool(0.6) {
        for _ in 0..rng.gen_range(1..6) {
            let at = rng.gen_range(0..text.len());
            text[at] = *[':', '-', ' ', '\n', '[', ']', '{', '*', '&', '!', 'x', '\t']
                .choose(rng)
                .expect("non-empty");
        }
    }
    text.into_iter().collect()
}

fn slug(rng: &mut StdRng) -> String {
    let len = rng.gen_range(1..12);
    let mut s = String::from("f");
    for _ in 0..len {
        s.push(
            *b"abcdefghijklmnopqrstuvwxyz0123456789-"
                .choose(rng)
                .expect("non-empty") as char,
        );
    }
    s
}

/// Any JSON value, nested at most `depth` levels.
pub fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    let pick = if depth == 0 {
        rng.gen_range(0..5)
    } else {
        rng.gen_range(0..7)
    };
    match pick {
        0 => Value::Null,
        1 => json!(rng.gen_bool(0.5)),
        2 => match rng.gen_range(0..4) {
            0 => json!(rng.gen::<i64>()),
            1 => json!(u64::MAX),
            2 => json!(rng.gen::<f64>() * 1e300),
            _ => json!(-1),
        },
        3 => Value::String(slug(rng)),
        4 => Value::String(BAD_NAMES.choose(rng).expect("non-empty").to_string()),
        5 => Value::Array(
            (0..rng.gen_range(0..4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.gen_range(0..4))
                .map(|_| (slug(rng), random_value(rng, depth - 1)))
                .collect(),
        ),
    }
}

/// A value of another JSON type than `value`.
fn other_type(value: &Value, rng: &mut StdRng) -> Value {
    loop {
        let candidate = random_value(rng, 1);
        let same = std::mem::discriminant(&candidate) == std::mem::discriminant(value);
        if !same {
            return candidate;
        }
    }
}
