//! Rules that judge the request body: the proxy reads the body (never more
//! than the rule's limit plus one byte before deciding), decides on it,
//! and forwards it whole; a refusal sends nothing upstream.

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;

use crate::support::{body_text, post_json, with_caps, World};

const CAPS: &str = r#"
- name: models
  type: http
  allow:
    - name: small-only
      domains: ["allowed.test:{https}"]
      methods: [POST]
      paths: [/v1/messages]
      match: 'request.body.model == "small"'
    - name: checked
      domains: ["allowed.test:{https}"]
      methods: [POST]
      paths: [/v1/upload]
      body:
        max_bytes: 64
        json_schema: { type: object, required: [name] }
"#;

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("json ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cel_match_on_the_body_admits_or_denies_on_what_the_body_says() {
    let world = World::start_with(with_caps(CAPS)).await;
    let host = format!("allowed.test:{}", world.https_port);
    let padding = "x".repeat(200_000);

    let small = serde_json::json!({"model": "small", "padding": padding});
    let response = world
        .send_h2("allowed.test", post_json(&host, "/v1/messages", &small))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        world.upstream.last_seen().body,
        small.to_string().as_bytes()
    );
    let row = world
        .audit
        .wait_for(|r| r.decision.as_deref() == Some("allow"))
        .await;
    assert_eq!(row.phase.as_deref(), Some("request_body"));
    assert_eq!(row.bytes_out, Some(small.to_string().len() as i64));

    let large = serde_json::json!({"model": "large"});
    let response = world
        .send_h1("allowed.test", post_json(&host, "/v1/messages", &large))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let error = &json(&body_text(response).await)["error"];
    assert_eq!(error["reason"], "match_not_satisfied");
    let row = world
        .audit
        .wait_for(|r| r.decision.as_deref() == Some("deny"))
        .await;
    assert_eq!(row.phase.as_deref(), Some("request_body"));
    assert_eq!(row.capability_name, None);
    assert_eq!(world.upstream.seen().len(), 1, "the denied body never left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_rules_limit_is_denied_before_anything_is_sent() {
    let world = World::start_with(with_caps(CAPS)).await;
    let url = world.url("allowed.test", "/v1/upload");
    let big = format!("{{\"name\":\"{}\"}}", "n".repeat(5_000));
    let args = ["--http1.1", "-X", "POST", "--data-binary", &big, &url];
    let (code, stdout, stderr) = world.curl("allowed.test", &args).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(json(&stdout)["error"]["reason"], "body_too_large");

    let row = world
        .audit
        .wait_for(|r| r.decision.as_deref() == Some("deny"))
        .await;
    assert_eq!(row.reason.as_deref(), Some("body_too_large"));
    assert_eq!(row.phase.as_deref(), Some("request_body"));
    assert_eq!(world.upstream.accepts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_schema_check_is_counted_and_an_invalid_body_refused() {
    let world = World::start_with(with_caps(CAPS)).await;
    let host = format!("allowed.test:{}", world.https_port);
    let valid = serde_json::json!({"name": "report"});
    let response = world
        .send_h1("allowed.test", post_json(&host, "/v1/upload", &valid))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let row = world
        .audit
        .wait_for(|r| r.decision.as_deref() == Some("allow"))
        .await;
    assert_eq!(row.validations_applied, Some(1));

    let request = http::Request::post("/v1/upload")
        .header("host", &host)
        .body(Full::new(Bytes::from_static(b"{\"title\":1}")))
        .expect("request");
    let response = world.send_h1("allowed.test", request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        json(&body_text(response).await)["error"]["reason"],
        "body_invalid"
    );
    let row = world
        .audit
        .wait_for(|r| r.decision.as_deref() == Some("deny"))
        .await;
    assert_eq!(row.validations_applied, Some(1));
}
