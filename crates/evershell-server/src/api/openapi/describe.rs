//! An operation's description, read off its handler's signature: each
//! argument type (an extractor) says what it reads from the request, and the
//! return type what the handler answers. A handler therefore cannot take a
//! body, or answer with a type, that its OpenAPI entry does not show; and a
//! handler taking an extractor that says nothing about itself does not
//! compile into the route table.

use std::future::Future;

use axum::extract::State;
use axum::response::sse::Sse;
use axum::Json;
use schemars::generate::{Contract, SchemaSettings};
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::api::extract::{ApiJson, ApiPath, ApiQuery};

/// Where the schemas of request types are first collected: their `$ref`s
/// are rewritten into `#/components/schemas` when the document is
/// assembled (see [`Schemas::finish`]).
const REQUEST_DEFS: &str = "/x-request-schemas";
const RESPONSE_DEFS: &str = "/components/schemas";

/// The schema generators of one document. A type is described as it
/// deserializes when it is read from a request (fields with defaults are
/// optional) and as it serializes when it is answered, so the two
/// directions use separate generators.
pub struct Schemas {
    requests: SchemaGenerator,
    responses: SchemaGenerator,
}

/// What one operation reads and answers.
#[derive(Default)]
pub struct Operation {
    /// The request body's alternatives: media type and schema.
    pub body: Vec<(&'static str, Value)>,
    /// Query and header parameters (OpenAPI parameter objects).
    pub parameters: Vec<Value>,
    /// The success answer.
    pub answer: Option<Answer>,
}

/// A success answer: its status, media type and body schema.
pub struct Answer {
    pub status: u16,
    pub media: &'static str,
    pub schema: Value,
    pub description: &'static str,
}

/// What a handler argument reads from the request. Extractors that read
/// nothing a client sends (state, the caller, path parameters, which come
/// from the path template) keep the empty default.
pub trait DescribeInput {
    fn describe(_op: &mut Operation, _schemas: &mut Schemas) {}
}

/// What a handler's return type answers.
pub trait DescribeOutput {
    fn describe(op: &mut Operation, schemas: &mut Schemas);
}

/// A handler function whose arguments and answer describe themselves.
pub trait Described<Args> {
    fn describe(schemas: &mut Schemas) -> Operation;
}

impl Default for Schemas {
    fn default() -> Schemas {
        let generator = |path: &'static str, contract: Contract| {
            SchemaSettings::draft2020_12()
                .with(|s| {
                    s.definitions_path = path.into();
                    s.meta_schema = None;
                    s.contract = contract;
                })
                .into_generator()
        };
        Schemas {
            requests: generator(REQUEST_DEFS, Contract::Deserialize),
            responses: generator(RESPONSE_DEFS, Contract::Serialize),
        }
    }
}

impl Schemas {
    /// The schema of `T` as a request carries it (a `$ref` for named types).
    pub fn request<T: JsonSchema>(&mut self) -> Value {
        self.requests.subschema_for::<T>().to_value()
    }

    /// The schema of `T` itself as a request carries it, never a `$ref`:
    /// for types whose properties become parameters or form parts.
    pub fn request_inline<T: JsonSchema>(&mut self) -> Value {
        T::json_schema(&mut self.requests).to_value()
    }

    /// The schema of `T` as a handler answers it.
    pub fn response<T: JsonSchema>(&mut self) -> Value {
        self.responses.subschema_for::<T>().to_value()
    }

    /// The `components.schemas` of the document, rewriting every request
    /// `$ref` in `document` (which holds the operations) into it. A type
    /// described in both directions keeps one entry when both agree;
    /// otherwise its request form is named `<Name>Input`.
    pub fn finish(mut self, document: &mut Value) -> Map<String, Value> {
        let mut components = self.responses.take_definitions(true);
        let requests = self.requests.take_definitions(true);
        let mut renames = Map::new();
        for (name, schema) in &requests {
            let target = match components.get(name) {
                Some(existing) if existing != schema => format!("{name}Input"),
                _ => name.clone(),
            };
            renames.insert(name.clone(), Value::String(target));
        }
        for (name, mut schema) in requests {
            rewrite_request_refs(&mut schema, &renames);
            let target = renames[&name].as_str().expect("renames are strings");
            components.insert(target.to_string(), schema);
        }
        rewrite_request_refs(document, &renames);
        components
    }
}

/// Points every `$ref` into the request definitions at the component the
/// definition became.
fn rewrite_request_refs(value: &mut Value, renames: &Map<String, Value>) {
    let prefix = format!("#{REQUEST_DEFS}/");
    match value {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get_mut("$ref") {
                if let Some(name) = reference.strip_prefix(&prefix) {
                    let target = renames.get(name).and_then(Value::as_str).unwrap_or(name);
                    *reference = format!("#{RESPONSE_DEFS}/{target}");
                }
            }
            object
                .values_mut()
                .for_each(|v| rewrite_request_refs(v, renames));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| rewrite_request_refs(v, renames)),
        _ => {}
    }
}

impl Operation {
    /// Adds a query parameter.
    pub fn query(&mut self, name: &str, required: bool, schema: Value, description: &str) {
        self.parameters.push(json!({
            "name": name, "in": "query", "required": required,
            "schema": schema, "description": description,
        }));
    }

    /// Adds a header parameter.
    pub fn header(&mut self, name: &str, schema: Value, description: &str) {
        self.parameters.push(json!({
            "name": name, "in": "header", "required": false,
            "schema": schema, "description": description,
        }));
    }

    /// Sets the success answer: `schema` in `media`, with `status`.
    pub fn answer(&mut self, status: u16, media: &'static str, schema: Value) {
        let description = match status {
            201 => "created",
            202 => "accepted",
            _ => "success",
        };
        self.answer = Some(Answer {
            status,
            media,
            schema,
            description,
        });
    }
}

macro_rules! described {
    ($($arg:ident),*) => {
        impl<F, Fut, $($arg,)*> Described<($($arg,)*)> for F
        where
            F: FnOnce($($arg),*) -> Fut,
            Fut: Future,
            Fut::Output: DescribeOutput,
            $($arg: DescribeInput,)*
        {
            fn describe(schemas: &mut Schemas) -> Operation {
                let mut op = Operation::default();
                $(<$arg as DescribeInput>::describe(&mut op, schemas);)*
                <Fut::Output as DescribeOutput>::describe(&mut op, schemas);
                op
            }
        }
    };
}

described!();
described!(A1);
described!(A1, A2);
described!(A1, A2, A3);
described!(A1, A2, A3, A4);
described!(A1, A2, A3, A4, A5);
described!(A1, A2, A3, A4, A5, A6);
described!(A1, A2, A3, A4, A5, A6, A7);
described!(A1, A2, A3, A4, A5, A6, A7, A8);

impl<S> DescribeInput for State<S> {}

/// Path parameters are described from the path template. (axum's own
/// `Path` has no description on purpose: its rejections are plain text,
/// so a handler taking it does not compile into the table.)
impl<T> DescribeInput for ApiPath<T> {}

impl DescribeInput for Caller {}

impl<T: JsonSchema> DescribeInput for ApiJson<T> {
    fn describe(op: &mut Operation, schemas: &mut Schemas) {
        op.body.push(("application/json", schemas.request::<T>()));
    }
}

/// Each property of the query type is one parameter.
impl<T: JsonSchema> DescribeInput for ApiQuery<T> {
    fn describe(op: &mut Operation, schemas: &mut Schemas) {
        let schema = schemas.request_inline::<T>();
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let properties = schema["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (name, mut property) in properties {
            let description = property
                .as_object_mut()
                .and_then(|p| p.remove("description"))
                .and_then(|d| d.as_str().map(str::to_string))
                .unwrap_or_default();
            op.query(
                &name,
                required.contains(&name.as_str()),
                property,
                &description,
            );
        }
    }
}

impl<T: JsonSchema> DescribeOutput for Json<T> {
    fn describe(op: &mut Operation, schemas: &mut Schemas) {
        op.answer(200, "application/json", schemas.response::<T>());
    }
}

/// Errors are the envelope every operation documents as its default answer.
impl<T: DescribeOutput> DescribeOutput for Result<T, ApiError> {
    fn describe(op: &mut Operation, schemas: &mut Schemas) {
        T::describe(op, schemas);
    }
}

impl<S> DescribeOutput for Sse<S> {
    fn describe(op: &mut Operation, _schemas: &mut Schemas) {
        op.answer(200, "text/event-stream", json!({ "type": "string" }));
    }
}

impl DescribeOutput for &'static str {
    fn describe(op: &mut Operation, _schemas: &mut Schemas) {
        op.answer(200, "text/plain", json!({ "type": "string" }));
    }
}
