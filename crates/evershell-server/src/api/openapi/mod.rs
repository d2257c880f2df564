//! The OpenAPI 3.1 document of the API, served at `GET /v1/openapi.json`.
//! It is generated from the route table: one operation per row, whose
//! security and `x-evershell-scopes` come from the row's access rule and
//! whose parameters, body and answer come from the types of the row's
//! handler ([`describe`]). Every operation's default answer is the error
//! envelope.

pub mod describe;

use std::borrow::Cow;
use std::sync::LazyLock;

use axum::Json;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::error::ErrorEnvelope;
use super::routes::{table, Access, RouteSpec};
use describe::{Operation, Schemas};

/// The document, as served.
#[derive(Serialize)]
#[serde(transparent)]
pub struct OpenApiDocument(Value);

/// `GET /v1/openapi.json`.
pub async fn serve() -> Json<&'static OpenApiDocument> {
    static DOCUMENT: LazyLock<OpenApiDocument> = LazyLock::new(|| OpenApiDocument(document()));
    Json(&DOCUMENT)
}

/// The OpenAPI document of every route in the table.
pub fn document() -> Value {
    let mut schemas = Schemas::default();
    let mut paths = Map::new();
    for spec in table() {
        let operation = operation(spec, spec.endpoint.describe(&mut schemas));
        let item = paths
            .entry(spec.path)
            .or_insert_with(|| Value::Object(Map::new()));
        item[spec.method.as_str().to_ascii_lowercase()] = operation;
    }
    let error = schemas.response::<ErrorEnvelope>();
    let mut document = json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Evershell API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The control plane of Evershell: providers, agent roles, \
                credentials, secrets, workspaces, tasks, budgets and the audit log.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key (`sk_live_…`) or a session token (`eyJ…`).",
                },
                "api_key": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "api_key",
                    "description": "An API key, on server-sent event streams only.",
                },
            },
            "responses": {
                "Error": {
                    "description": "the error envelope; `code` fixes the status",
                    "content": { "application/json": { "schema": error } },
                },
            },
        },
    });
    let components = schemas.finish(&mut document);
    document["components"]["schemas"] = Value::Object(components);
    document
}

/// The operation object of one table row.
fn operation(spec: &RouteSpec, op: Operation) -> Value {
    let mut parameters = path_parameters(spec.path);
    parameters.extend(op.parameters);
    let mut responses = Map::new();
    if let Some(answer) = op.answer {
        responses.insert(
            answer.status.to_string(),
            json!({
                "description": answer.description,
                "content": { answer.media: { "schema": answer.schema } },
            }),
        );
    }
    responses.insert(
        "default".to_string(),
        json!({ "$ref": "#/components/responses/Error" }),
    );
    let mut operation = json!({
        "operationId": operation_id(spec.endpoint.name),
        "tags": [tag(spec.path)],
        "security": security(spec),
        "x-evershell-scopes": scopes(spec.access),
        "responses": responses,
    });
    if !parameters.is_empty() {
        operation["parameters"] = Value::Array(parameters);
    }
    if !op.body.is_empty() {
        let content: Map<String, Value> = op
            .body
            .into_iter()
            .map(|(media, schema)| (media.to_string(), json!({ "schema": schema })))
            .collect();
        operation["requestBody"] = json!({ "required": true, "content": content });
    }
    operation
}

/// `{name}` segments of a path template, all strings.
fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({
                "name": name, "in": "path", "required": true,
                "schema": { "type": "string" },
            })
        })
        .collect()
}

/// The handler's module and name: `providers_create`.
fn operation_id(handler: &str) -> String {
    let mut segments = handler.rsplit("::");
    let name = segments.next().unwrap_or(handler);
    match segments.next() {
        Some(module) => format!("{module}_{name}"),
        None => name.to_string(),
    }
}

/// The resource a path is about: its first segment after `/v1`.
fn tag(path: &str) -> &str {
    let rest = path
        .strip_prefix("/v1/")
        .unwrap_or(path.trim_start_matches('/'));
    rest.split('/').next().unwrap_or(rest)
}

/// Public routes need nothing; the others a bearer token, or on event
/// streams also `?api_key=`.
fn security(spec: &RouteSpec) -> Value {
    match spec.access {
        Access::Public => json!([]),
        _ if spec.sse => json!([{ "bearer": [] }, { "api_key": [] }]),
        _ => json!([{ "bearer": [] }]),
    }
}

/// The scopes a route accepts, as groups: the caller needs one scope of
/// every group. No group means any signed-in caller (or, with empty
/// `security`, anyone).
fn scopes(access: Access) -> Value {
    let group = |scopes: &[evershell_core::Scope]| -> Vec<&str> {
        scopes.iter().map(|s| s.as_str()).collect()
    };
    match access {
        Access::Public | Access::SignedIn => json!([]),
        Access::AnyOf(scopes) => json!([group(scopes)]),
        Access::AllOf(groups) => json!(groups.iter().map(|g| group(g)).collect::<Vec<_>>()),
    }
}

impl JsonSchema for OpenApiDocument {
    fn schema_name() -> Cow<'static, str> {
        "OpenApiDocument".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "description": "an OpenAPI 3.1 document",
            "required": ["openapi", "info", "paths"],
        })
    }
}

#[cfg(test)]
mod tests;
