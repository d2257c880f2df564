//! Refused requests: a JSON body the agent can read, its row recorded before
//! the response leaves, and nothing sent upstream.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;

use crate::support::{body_text, get, World, CANARY};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("json body ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_path_gets_a_json_403_whose_row_is_recorded_before_it_is_sent() {
    let world = World::start().await;
    let host = format!("allowed.test:{}", world.https_port);
    world.audit.set_gate(false);

    let mut request = Box::pin(world.send_h1("allowed.test", get(&host, "/admin/users?page=2")));
    let early = tokio::time::timeout(Duration::from_millis(300), &mut request).await;
    assert!(
        early.is_err(),
        "the response left before its row was recorded"
    );
    assert!(world.audit.rows().is_empty());
    world.audit.set_gate(true);
    let response = request.await;

    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["x-evershell-decision"], "deny");
    let body = json(&body_text(response).await);
    let error = &body["error"];
    assert_eq!(error["code"], "egress_denied");
    assert_eq!(error["reason"], "path_not_allowed");
    assert_eq!(error["host"], host);
    assert_eq!(error["method"], "GET");
    assert_eq!(error["path"], "/admin/users");

    let rows = world.audit.rows();
    let [row] = rows.as_slice() else {
        panic!("exactly one row expected: {rows:#?}");
    };
    assert_eq!(row.decision.as_deref(), Some("deny"));
    assert_eq!(row.reason.as_deref(), Some("path_not_allowed"));
    assert_eq!(row.path.as_deref(), Some("/admin/users"));
    assert_eq!(
        row.detail.as_ref().expect("detail")["request_id"],
        error["request_id"]
    );
    assert_eq!(world.upstream.accepts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_audit_store_is_down_requests_get_503_and_nothing_leaves() {
    let world = World::start().await;
    let host = format!("allowed.test:{}", world.https_port);
    world.audit.set_failing(true);

    // A deny whose row cannot be written is answered 503, not 403.
    let response = world.send_h1("allowed.test", get(&host, "/admin")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        json(&body_text(response).await)["error"]["code"],
        "audit_unavailable"
    );

    // From then on even allowed requests stay inside.
    let response = world
        .send_h2("allowed.test", get(&host, "/v1/models"))
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(world.upstream.accepts(), 0);

    // The refusal's row is the probe: once the store is back, traffic flows.
    world.audit.set_failing(false);
    let probe = world
        .send_h1("allowed.test", get(&host, "/v1/models"))
        .await;
    assert_eq!(probe.status(), StatusCode::SERVICE_UNAVAILABLE);
    let response = world
        .send_h1("allowed.test", get(&host, "/v1/models"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_other_than_the_tls_server_name_is_refused() {
    let world = World::start().await;
    let other = format!("other.test:{}", world.https_port);

    let response = world.send_h1("allowed.test", get(&other, "/v1/x")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        json(&body_text(response).await)["error"]["reason"],
        "sni_host_mismatch"
    );

    let authority = format!("https://{other}/v1/x");
    let request = Request::get(authority)
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = world.send_h2("allowed.test", request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let url = world.url("allowed.test", "/v1/x");
    let header = format!("Host: {other}");
    let (code, stdout, _) = world.curl("allowed.test", &["-H", &header, &url]).await;
    assert_eq!(code, 0);
    assert!(stdout.contains("sni_host_mismatch"), "{stdout}");

    let wrong_port = format!("allowed.test:{}", world.https_port.wrapping_add(1));
    let response = world
        .send_h1("allowed.test", get(&wrong_port, "/v1/x"))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(world.upstream.accepts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absolute_form_target_naming_another_host_is_refused() {
    let world = World::start().await;
    let port = world.https_port;
    let raw =
        format!("GET https://other.test:{port}/v1/x HTTP/1.1\r\nHost: allowed.test:{port}\r\n\r\n");
    let answer = world.raw_h1(raw.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("sni_host_mismatch"), "{answer}");
    assert_eq!(world.upstream.accepts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_and_protocol_upgrades_are_refused_rather_than_passed_through() {
    let world = World::start().await;
    let port = world.https_port;
    let connect = format!("CONNECT other.test:{port} HTTP/1.1\r\nHost: other.test:{port}\r\n\r\n");
    let answer = world.raw_h1(connect.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("connect_unsupported"), "{answer}");

    let upgrade = format!(
        "GET /v1/socket HTTP/1.1\r\nHost: allowed.test:{port}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n\r\n"
    );
    let answer = world.raw_h1(upgrade.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("upgrade_unsupported"), "{answer}");
    assert_eq!(world.upstream.accepts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_that_cannot_be_resolved_denies_the_request() {
    let world = World::start().await;
    let host = format!("nokey.test:{}", world.https_port);
    let response = world.send_h1("nokey.test", get(&host, "/")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        json(&body_text(response).await)["error"]["reason"],
        "auth_unavailable"
    );

    let row = world
        .audit
        .wait_for(|r| r.reason.as_deref() == Some("auth_unavailable"))
        .await;
    assert_eq!(row.decision.as_deref(), Some("deny"));
    let failures = row.auth_failures.expect("auth failures");
    assert_eq!(failures["absent-key"], "auth_unavailable");
    assert_eq!(
        row.transforms_failed.expect("transforms failed")["broken"],
        "auth_unavailable"
    );
    assert_eq!(world.upstream.accepts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_certificate_nobody_trusts_gets_a_502_naming_the_reason() {
    let world = World::start().await;
    let host = format!("untrusted.test:{}", world.https_port);
    let response = world.send_h1("untrusted.test", get(&host, "/")).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let text = body_text(response).await;
    let error = &json(&text)["error"];
    assert_eq!(error["code"], "upstream_tls_failed");
    assert_eq!(error["reason"], "certificate_unknown_issuer");
    assert!(!text.contains(CANARY));

    let row = world
        .audit
        .wait_for(|r| r.reason.as_deref() == Some("upstream_tls_failed"))
        .await;
    assert_eq!(row.destination, Some(host));
}
