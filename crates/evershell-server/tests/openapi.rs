//! `GET /v1/openapi.json`: served without credentials, and in step with
//! both the router and the route tables of docs/api.md.

mod common;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::Request;
use common::TestServer;
use evershell_server::api::openapi::document;
use serde_json::Value;

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `(METHOD, path)` of every operation of the document.
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            out.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_is_served_without_credentials() {
    let server = TestServer::start().await;
    let request = Request::get("/v1/openapi.json")
        .body(Body::empty())
        .expect("request builds");
    let reply = server.call(request).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.bytes)
    );
    assert!(reply.body["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1.")));
    assert_eq!(reply.body, document());
    server.shutdown().await;
}

/// Every operation of the document is answered by its handler (not the
/// `404` of an unknown path, nor a `405`), and every other method on its
/// paths is a `405`: the router serves exactly what the document says.
#[tokio::test(flavor = "multi_thread")]
async fn the_router_serves_every_documented_operation_and_nothing_else() {
    let server = TestServer::start().await;
    let document = document();
    let operations = operations(&document);
    let paths: BTreeSet<&String> = operations.iter().map(|(_, path)| path).collect();
    for path in paths {
        let uri = path.replace('{', "x-").replace('}', "");
        for method in METHODS {
            let request = Request::builder()
                .method(*method)
                .uri(&uri)
                .body(Body::empty())
                .expect("request builds");
            let reply = server.call(request).await;
            let route = format!("{method} {path}");
            if operations.contains(&(method.to_string(), path.clone())) {
                assert_ne!(reply.status, 405, "{route} is documented but refused");
                assert_ne!(
                    reply.body["error"]["code"], "not_found",
                    "{route} is documented but not routed"
                );
            } else {
                reply.assert_error(405, "method_not_allowed");
            }
        }
    }
    server.shutdown().await;
}

/// The rows of the Markdown table under `heading` in docs/api.md, as
/// `(METHOD, path)`. A row may list several methods (`GET, POST`) and
/// sibling paths (`/v1/providers/{id}/archive`, `/unarchive`).
fn doc_routes(markdown: &str, heading: &str) -> BTreeSet<(String, String)> {
    let start = markdown
        .find(heading)
        .unwrap_or_else(|| panic!("docs/api.md has no {heading:?}"));
    let mut routes = BTreeSet::new();
    let rows = markdown[start..]
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2);
    for row in rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (methods, paths) = (cells[1], cells[2]);
        let mut first: Option<String> = None;
        for path in paths.split(", ") {
            let path = path.trim_matches('`');
            let full = match &first {
                Some(base) if !path.starts_with("/v1") => {
                    let parent = base.rsplit_once('/').expect("paths have segments").0;
                    format!("{parent}{path}")
                }
                _ => path.to_string(),
            };
            first.get_or_insert(full.clone());
            for method in methods.split(", ") {
                routes.insert((method.to_string(), full.clone()));
            }
        }
    }
    assert!(!routes.is_empty(), "{heading}: no rows");
    routes
}

#[test]
fn docs_api_md_lists_every_route_and_only_serves_what_the_document_has() {
    let markdown =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"))
            .expect("docs/api.md is readable");
    let served = doc_routes(&markdown, "### Routes and scopes");
    let not_yet = doc_routes(&markdown, "### Routes not served yet");
    let documented = operations(&document());

    for route in &served {
        assert!(
            documented.contains(route),
            "docs/api.md lists {route:?} as served, but the document lacks it"
        );
    }
    for route in &not_yet {
        assert!(
            !documented.contains(route),
            "{route:?} is served now: move it from \"not served yet\" to the route table"
        );
    }
    for route in documented
        .iter()
        .filter(|(_, path)| path.starts_with("/v1/"))
    {
        assert!(
            served.contains(route),
            "{route:?} is served but missing from docs/api.md's route table"
        );
    }
}
