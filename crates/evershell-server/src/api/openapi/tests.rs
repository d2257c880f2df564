use std::collections::BTreeSet;

use super::*;

fn operations(document: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths is an object") {
        for (method, op) in item.as_object().expect("path items are objects") {
            out.push((method.to_ascii_uppercase(), path.clone(), op));
        }
    }
    out
}

/// Every `$ref` string in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(r)) = object.get("$ref") {
                out.push(r);
            }
            object.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_1_with_info_paths_and_components() {
    let document = document();
    let version = document["openapi"].as_str().expect("openapi is a string");
    assert!(version.starts_with("3.1."), "{version}");
    assert_eq!(document["info"]["title"], "Evershell API");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(document["paths"]
        .as_object()
        .is_some_and(|paths| !paths.is_empty()));
    let components = &document["components"];
    for schema in [
        "ErrorEnvelope",
        "Provider",
        "AgentRole",
        "Submission",
        "Task",
    ] {
        assert!(components["schemas"][schema].is_object(), "{schema}");
    }
    assert_eq!(components["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert_eq!(components["securitySchemes"]["api_key"]["in"], "query");
}

#[test]
fn every_table_row_is_one_operation_with_its_access_rule() {
    let document = document();
    let operations = operations(&document);
    assert_eq!(operations.len(), table().len(), "one operation per row");
    for spec in table() {
        let op = &document["paths"][spec.path][spec.method.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{} {} is missing", spec.method, spec.path);
        let security = op["security"].as_array().expect("security is a list");
        let scopes = op["x-evershell-scopes"]
            .as_array()
            .expect("scopes are a list");
        match spec.access {
            Access::Public => assert!(security.is_empty() && scopes.is_empty()),
            Access::SignedIn => {
                assert_eq!(security[0], json!({ "bearer": [] }));
                assert!(scopes.is_empty());
            }
            Access::AnyOf(any) => {
                assert_eq!(scopes.len(), 1);
                assert_eq!(scopes[0].as_array().map(Vec::len), Some(any.len()));
            }
            Access::AllOf(groups) => assert_eq!(scopes.len(), groups.len()),
        }
        assert_eq!(
            security.contains(&json!({ "api_key": [] })),
            spec.sse,
            "{} {}: ?api_key= only on event streams",
            spec.method,
            spec.path
        );
    }
}

#[test]
fn every_operation_describes_its_answer_its_body_and_its_path_parameters() {
    let document = document();
    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(&document) {
        let route = format!("{method} {path}");
        let id = op["operationId"].as_str().expect("operations have ids");
        assert!(ids.insert(id.to_string()), "{route}: duplicate id {id}");

        let responses = op["responses"].as_object().expect("responses");
        let success: Vec<_> = responses
            .iter()
            .filter(|(status, _)| status.starts_with('2'))
            .collect();
        assert_eq!(success.len(), 1, "{route}: one success answer");
        let content = success[0].1["content"].as_object().expect("content");
        assert!(
            content.values().all(|media| !media["schema"].is_null()),
            "{route}: answer without a schema"
        );
        assert_eq!(
            responses["default"]["$ref"], "#/components/responses/Error",
            "{route}: errors are the envelope"
        );

        if let Some(body) = op.get("requestBody") {
            let content = body["content"].as_object().expect("body content");
            assert!(!content.is_empty(), "{route}");
            assert!(content.values().all(|media| media["schema"].is_object()));
        }

        let declared: Vec<&str> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        let templated: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        assert_eq!(declared, templated, "{route}: path parameters");
    }
}

#[test]
fn every_reference_resolves_to_a_component() {
    let document = document();
    let mut found = Vec::new();
    refs(&document, &mut found);
    assert!(!found.is_empty());
    for reference in found {
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{reference} is not local"));
        assert!(
            document.pointer(pointer).is_some(),
            "{reference} does not resolve"
        );
    }
}

#[test]
fn request_bodies_are_the_types_the_handlers_deserialize() {
    let document = document();
    let body = |method: &str, path: &str| {
        document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
            ["$ref"]
            .clone()
    };
    assert_eq!(
        body("post", "/v1/providers"),
        "#/components/schemas/CreateProvider"
    );
    assert_eq!(
        body("put", "/v1/secrets/{name}"),
        "#/components/schemas/ReplaceSecret"
    );
    assert_eq!(
        body("post", "/v1/workspaces/{id}/tasks"),
        "#/components/schemas/Submission"
    );
    let multipart = &document["paths"]["/v1/tasks"]["post"]["requestBody"]["content"]
        ["multipart/form-data"]["schema"];
    assert!(multipart["properties"]["file"].is_object());
    assert!(multipart["properties"]["description"].is_object());
    assert!(document["paths"]["/v1/providers/{id}/archive"]["post"]["requestBody"].is_null());

    // A field with a default is optional in a request; an answer always
    // carries it.
    let schemas = &document["components"]["schemas"];
    let required = |schema: &str| schemas[schema]["required"].clone();
    assert!(!required("CreateRole")
        .as_array()
        .expect("required")
        .contains(&json!("resources")));
    assert!(required("AgentRole")
        .as_array()
        .expect("required")
        .contains(&json!("resources")));
}

#[test]
fn a_type_described_differently_in_each_direction_gets_two_components() {
    let document = document();
    let schemas = &document["components"]["schemas"];
    // `Resources` is read in a role creation (every field optional) and
    // answered in a role (every field present).
    assert_eq!(
        document["components"]["schemas"]["CreateRole"]["properties"]["resources"]["$ref"],
        "#/components/schemas/ResourcesInput"
    );
    assert!(schemas["Resources"]["required"].is_array());
    assert!(schemas["ResourcesInput"]["required"].is_null());
}

#[test]
fn operation_ids_name_the_handler_module_and_function() {
    assert_eq!(
        operation_id("evershell_server::api::handlers::providers::create"),
        "providers_create"
    );
    assert_eq!(operation_id("healthz"), "healthz");
}
