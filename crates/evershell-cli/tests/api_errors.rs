//! Bad input gets the documented error envelope, with the documented code
//! and status, and a request id that matches the `x-request-id` header.

#[macro_use]
mod common;

use evershell_cli::demo::DEMO_CAPS;
use serde_json::{json, Value};

async fn raw(client: &reqwest::Client, req: reqwest::RequestBuilder) -> (u16, String, Value) {
    let _ = client;
    let response = req.send().await.expect("api reachable");
    let status = response.status().as_u16();
    let header = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, header, body)
}

fn assert_envelope(status: u16, header: &str, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    let error = &body["error"];
    assert_eq!(error["code"], want_code, "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(error["request_id"].as_str(), Some(header), "{body}");
}

async fn bad_requests_get_the_documented_envelope(engine: common::Engine) {
    let world = common::world_on(engine, Vec::new(), "known", DEMO_CAPS).await;
    let http = world.client.http().clone();
    let url = |p: &str| world.client.url(p);
    let key = world.client.profile.api_key.clone();

    // Unknown role.
    let req = http
        .post(url("/v1/tasks"))
        .bearer_auth(&key)
        .json(&json!({"role_name": "nope", "description": "x"}));
    let (s, h, b) = raw(&http, req).await;
    assert_envelope(s, &h, &b, 404, "role_not_found");

    // Invalid caps YAML: the field path and the line and column.
    let caps = "- name: gitlab\n  type: http\n  allow:\n    - name: read\n      domains: [gitlab.com]\n      methods: [get]\n";
    let req = http
        .post(url("/v1/agent-roles"))
        .bearer_auth(&key)
        .json(&json!({"name": "bad-caps", "provider_id": "demo-anthropic", "capabilities": caps}));
    let (s, h, b) = raw(&http, req).await;
    assert_envelope(s, &h, &b, 400, "validation_error");
    let message = b["error"]["details"]["fields"]["capabilities[0].allow[0].methods[0]"]
        .as_str()
        .unwrap_or_default();
    assert!(message.starts_with("line 6, col "), "{b}");
    assert!(message.contains("GET"), "{b}");

    // A YAML syntax error names its position too.
    let req = http
        .post(url("/v1/agent-roles"))
        .bearer_auth(&key)
        .json(&json!({"name": "bad-yaml", "provider_id": "demo-anthropic", "capabilities": "- name: [unclosed\n"}));
    let (s, h, b) = raw(&http, req).await;
    assert_envelope(s, &h, &b, 400, "validation_error");
    assert!(b.to_string().contains("line "), "{b}");

    // Bad and missing keys.
    let req = http
        .get(url("/v1/workspaces"))
        .bearer_auth("sk_live_not_a_key");
    let (s, h, b) = raw(&http, req).await;
    assert_envelope(s, &h, &b, 401, "unauthenticated");
    let (s, h, b) = raw(&http, http.get(url("/v1/workspaces"))).await;
    assert_envelope(s, &h, &b, 401, "unauthenticated");

    // A key without the scope: read_only cannot write roles or credentials.
    let ctx = &world.server.ctx;
    let secret = evershell_server::api::auth::new_key_secret();
    let org_id = ctx.store.org_id_by_slug("default").await.unwrap().unwrap();
    ctx.store
        .insert_api_key(evershell_store::NewApiKey {
            org_id: &org_id,
            label: "viewer",
            prefix: &evershell_server::api::auth::key_prefix(&secret),
            secret_hash: &evershell_server::api::auth::hash_key(&ctx.pepper, &secret),
            permission_set: "read_only",
            created_by: "system",
            expires_at: None,
        })
        .await
        .unwrap();
    let req = http
        .post(url("/v1/agent-roles"))
        .bearer_auth(&secret)
        .json(&json!({"name": "x", "provider_id": "demo-anthropic"}));
    let (s, h, b) = raw(&http, req).await;
    assert_envelope(s, &h, &b, 403, "permission_denied");
    let req = http
        .post(url("/v1/tasks"))
        .bearer_auth(&secret)
        .json(&json!({"role_name": "known", "description": "x"}));
    let (s, h, b) = raw(&http, req).await;
    assert_envelope(s, &h, &b, 403, "permission_denied");
    // Even full_access keys cannot create credentials (keys never hold auth:write).
    let req = http
        .post(url("/v1/credentials"))
        .bearer_auth(&key)
        .json(&json!({"name": "x", "provider": "openai", "kind": "api_key", "api_key": "k"}));
    let (s, h, b) = raw(&http, req).await;
    assert_envelope(s, &h, &b, 403, "permission_denied");

    // Malformed JSON, unknown fields and wrong types.
    let req = http
        .post(url("/v1/agent-roles"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{not json");
    let (s, h, b) = raw(&http, req).await;
    assert_envelope(s, &h, &b, 400, "validation_error");
    let req = http
        .post(url("/v1/agent-roles"))
        .bearer_auth(&key)
        .json(&json!({"name": "y", "provider_id": "demo-anthropic", "colour": "red"}));
    let (s, h, b) = raw(&http, req).await;
    assert_envelope(s, &h, &b, 400, "validation_error");
    assert!(b.to_string().contains("colour"), "{b}");
    let req = http
        .post(url("/v1/agent-roles"))
        .bearer_auth(&key)
        .json(&json!({"name": 7, "provider_id": "demo-anthropic"}));
    let (s, h, b) = raw(&http, req).await;
    assert_envelope(s, &h, &b, 400, "validation_error");

    // Unknown workspace, unknown route, bad cursor and filter column.
    let (s, h, b) = raw(
        &http,
        http.get(url("/v1/workspaces/ws_nope")).bearer_auth(&key),
    )
    .await;
    assert_envelope(s, &h, &b, 404, "workspace_not_found");
    let (s, h, b) = raw(&http, http.get(url("/v1/nothing-here")).bearer_auth(&key)).await;
    assert_envelope(s, &h, &b, 404, "not_found");
    let (s, h, b) = raw(&http, http.delete(url("/v1/providers")).bearer_auth(&key)).await;
    assert_envelope(s, &h, &b, 405, "method_not_allowed");
    let (ws, _task) = common::submit(&world, "known", "nothing to do").await;
    let (s, h, b) = raw(
        &http,
        http.get(url(&format!("/v1/workspaces/{ws}/audit?cursor=%25%25")))
            .bearer_auth(&key),
    )
    .await;
    assert_envelope(s, &h, &b, 400, "invalid_cursor");
    let (s, h, b) = raw(
        &http,
        http.get(url(&format!("/v1/workspaces/{ws}/audit?filter=secret%3D1")))
            .bearer_auth(&key),
    )
    .await;
    assert_envelope(s, &h, &b, 400, "validation_error");
    assert!(
        b.to_string().contains("decision"),
        "the allowed columns are named: {b}"
    );

    // Another org's workspace does not exist for this caller.
    let other_org = ctx.store.ensure_org("other", "Other").await.unwrap();
    let other = evershell_server::api::auth::new_key_secret();
    ctx.store
        .insert_api_key(evershell_store::NewApiKey {
            org_id: &other_org,
            label: "other",
            prefix: &evershell_server::api::auth::key_prefix(&other),
            secret_hash: &evershell_server::api::auth::hash_key(&ctx.pepper, &other),
            permission_set: "full_access",
            created_by: "system",
            expires_at: None,
        })
        .await
        .unwrap();
    let (s, h, b) = raw(
        &http,
        http.get(url(&format!("/v1/workspaces/{ws}")))
            .bearer_auth(&other),
    )
    .await;
    assert_envelope(s, &h, &b, 404, "workspace_not_found");
    let (s, h, b) = raw(
        &http,
        http.get(url(&format!("/v1/workspaces/{ws}/audit")))
            .bearer_auth(&other),
    )
    .await;
    assert_envelope(s, &h, &b, 404, "workspace_not_found");
    let list: Value = http
        .get(url("/v1/workspaces"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]), "another org's workspaces are invisible");
    world.shutdown().await;
}

on_both_engines!(bad_requests_get_the_documented_envelope,);
