//! Requests the extractors refuse get the error envelope, like every other
//! error: regressions found by the fuzz test.

mod common;

use axum::body::Body;
use axum::http::Method;
use common::TestServer;

/// axum's own path extractor answered these in plain text.
#[tokio::test(flavor = "multi_thread")]
async fn a_path_parameter_that_is_not_utf8_is_a_validation_error_naming_it() {
    let server = TestServer::start().await;
    let reply = server
        .call(server.json(Method::PUT, "/v1/secrets/%FF%FE", r#"{"value":"v"}"#))
        .await;
    reply.assert_error(400, "validation_error");
    let fields = &reply.body["error"]["details"]["fields"];
    assert!(
        fields["name"].as_str().is_some_and(|m| m.contains("UTF-8")),
        "{}",
        reply.body
    );

    let request = server
        .request(Method::GET, "/v1/workspaces/ws_%C3%28/tasks/task_1")
        .body(Body::empty())
        .expect("request builds");
    let reply = server.call(request).await;
    reply.assert_error(400, "validation_error");
    assert!(
        reply.body["error"]["details"]["fields"]["id"].is_string(),
        "{}",
        reply.body
    );
    server.shutdown().await;
}
