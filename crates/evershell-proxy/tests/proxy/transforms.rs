//! Transforms: what the upstream receives is the request as the
//! capability's transforms rewrote it, with each credential stamped the way
//! its kind expects; a transform that cannot complete denies the request
//! and nothing leaves.

use http::StatusCode;

use crate::support::{body_text, post_json, with_caps, Options, TestCredential, World, CANARY};

const CAPS: &str = r#"
- name: rewrite
  type: http
  allow:
    - name: head
      domains: ["allowed.test:{https}"]
      methods: [GET]
      paths: [/v1/**]
    - name: body
      domains: ["allowed.test:{https}"]
      methods: [POST]
      paths: [/body/**]
  transforms:
    - name: tenant
      applies_to: [head]
      set_headers:
        X-Tenant-Id: 'secrets["tenant-id"]'
        X-Original-Path: 'request.path'
      remove_headers: [cookie]
      set_query: { api-version: '"2024-10-01"' }
      remove_query: [debug]
      rewrite_path: { from: "^/v1/", to: "/api/v1/" }
    - name: meta
      applies_to: [body]
      set_body: { "/metadata/tenant": 'secrets["tenant-id"]' }
- name: query-keyed
  type: http
  allow:
    - domains: ["other.test:{https}"]
      methods: [GET]
  transforms:
    - name: maps-key
      auth: maps-key
- name: basic
  type: http
  allow:
    - domains: ["nokey.test:{https}"]
      methods: [GET]
  transforms:
    - name: jira-login
      auth: jira
"#;

const QUERY_KEY: &str = "qk-secret-31337";

fn full_options(https: u16, http: u16) -> Options {
    let mut options = with_caps(CAPS)(https, http);
    options.secrets = vec![("tenant-id", "tenant-7")];
    options.credentials = vec![
        TestCredential {
            name: "maps-key",
            kind: "query_api_key",
            provider: "maps",
            secret: QUERY_KEY,
            provider_config: serde_json::json!({}),
        },
        TestCredential {
            name: "jira",
            kind: "basic_auth",
            provider: "jira",
            secret: CANARY,
            provider_config: serde_json::json!({"username": "bot"}),
        },
    ];
    options
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("json ({e}): {text}"))
}

fn allowed(row: &evershell_core::AuditEvent) -> bool {
    row.decision.as_deref() == Some("allow")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_query_and_path_transforms_shape_what_the_upstream_receives() {
    let world = World::start_with(full_options).await;
    let url = world.url("allowed.test", "/v1/items?debug=1&x=2");
    let args = [
        "-H",
        "cookie: session=agent",
        "-H",
        "x-tenant-id: forged",
        &url,
    ];
    let (code, stdout, stderr) = world.curl("allowed.test", &args).await;
    assert_eq!(code, 0, "{stderr}");

    let expected = "/api/v1/items?x=2&api-version=2024-10-01";
    assert_eq!(json(&stdout)["target"], expected);
    let seen = world.upstream.last_seen();
    assert_eq!(seen.target, expected);
    let tenants: Vec<_> = seen.headers.get_all("x-tenant-id").iter().collect();
    assert_eq!(tenants, ["tenant-7"], "the agent's value is replaced");
    assert_eq!(seen.headers["x-original-path"], "/v1/items");
    assert!(seen.headers.get("cookie").is_none());

    let row = world.audit.wait_for(allowed).await;
    assert_eq!(row.transforms_applied, Some(1));
    assert_eq!(
        row.path.as_deref(),
        Some("/v1/items"),
        "the row names the matched path"
    );
    let all = serde_json::to_string(&world.audit.rows()).expect("rows serialise");
    assert!(!all.contains("tenant-7"), "a row carries a secret value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_body_writes_into_the_json_body_and_its_length_follows() {
    let world = World::start_with(full_options).await;
    let host = format!("allowed.test:{}", world.https_port);
    let sent = serde_json::json!({"model": "m", "metadata": {"user": "u1"}});
    for http2 in [false, true] {
        let request = post_json(&host, "/body/create", &sent);
        let response = if http2 {
            world.send_h2("allowed.test", request).await
        } else {
            world.send_h1("allowed.test", request).await
        };
        assert_eq!(response.status(), StatusCode::OK);
        let echo = json(&body_text(response).await);
        assert_eq!(
            echo["body"],
            serde_json::json!({"model": "m", "metadata": {"user": "u1", "tenant": "tenant-7"}})
        );

        let seen = world.upstream.last_seen();
        let length: usize = seen.headers["content-length"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("a number");
        assert_eq!(length, seen.body.len(), "h2: {http2}");
    }
    let row = world.audit.wait_for(allowed).await;
    assert_eq!(
        row.bytes_out,
        Some(world.upstream.last_seen().body.len() as i64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_api_key_replaces_the_agents_parameter_in_the_query() {
    let world = World::start_with(full_options).await;
    let url = world.url("other.test", "/v1/geocode?key=agent-key&q=paris");
    let (code, _, stderr) = world.curl("other.test", &[&url]).await;
    assert_eq!(code, 0, "{stderr}");

    let seen = world.upstream.last_seen();
    assert_eq!(seen.target, format!("/v1/geocode?q=paris&key={QUERY_KEY}"));
    let row = world.audit.wait_for(allowed).await;
    assert_eq!(row.minted, Some(vec!["maps-key".to_owned()]));
    assert_eq!(row.path.as_deref(), Some("/v1/geocode"));
    let all = serde_json::to_string(&world.audit.rows()).expect("rows serialise");
    assert!(!all.contains(QUERY_KEY), "a row carries the key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_is_stamped_as_an_authorization_header() {
    let world = World::start_with(full_options).await;
    let url = world.url("nokey.test", "/rest/api/2/issue");
    let args = ["--http2", "-H", "authorization: Bearer agent", &url];
    let (code, stdout, stderr) = world.curl("nokey.test", &args).await;
    assert_eq!(code, 0, "{stderr}");

    use base64::Engine as _;
    let pair = format!("bot:{CANARY}");
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    );
    let seen = world.upstream.last_seen();
    let values: Vec<_> = seen.headers.get_all("authorization").iter().collect();
    assert_eq!(values, [expected.as_str()]);
    assert!(!stdout.contains(CANARY) && !stderr.contains(CANARY));
    let row = world.audit.wait_for(allowed).await;
    assert_eq!(row.minted, Some(vec!["jira".to_owned()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transform_that_cannot_complete_denies_and_names_itself() {
    // No secrets and no `jira` credential.
    let world = World::start_with(|https, http| {
        let mut options = full_options(https, http);
        options.secrets.clear();
        options.credentials.retain(|c| c.name != "jira");
        options
    })
    .await;

    let url = world.url("allowed.test", "/v1/items");
    let (code, stdout, stderr) = world.curl("allowed.test", &[&url]).await;
    assert_eq!(code, 0, "{stderr}");
    let error = &json(&stdout)["error"];
    assert_eq!(error["code"], "egress_denied");
    assert_eq!(error["reason"], "auth_unavailable");
    let row = world
        .audit
        .wait_for(|r| r.path.as_deref() == Some("/v1/items"))
        .await;
    assert_eq!(row.decision.as_deref(), Some("deny"));
    let failed = row.transforms_failed.expect("transforms failed");
    assert_eq!(failed["tenant"], "auth_unavailable");

    let url = world.url("nokey.test", "/rest");
    let (code, stdout, _) = world.curl("nokey.test", &[&url]).await;
    assert_eq!(code, 0);
    assert_eq!(json(&stdout)["error"]["reason"], "auth_unavailable");
    let row = world
        .audit
        .wait_for(|r| r.path.as_deref() == Some("/rest"))
        .await;
    assert_eq!(
        row.auth_failures.expect("auth failures")["jira"],
        "auth_unavailable"
    );
    assert_eq!(
        row.transforms_failed.expect("transforms failed")["jira-login"],
        "auth_unavailable"
    );
    assert_eq!(world.upstream.accepts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_transform_on_a_body_that_is_not_json_denies() {
    let world = World::start_with(full_options).await;
    let host = format!("allowed.test:{}", world.https_port);
    let request = http::Request::post("/body/create")
        .header("host", &host)
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"name=x",
        )))
        .expect("request");
    let response = world.send_h1("allowed.test", request).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        json(&body_text(response).await)["error"]["reason"],
        "transform_failed"
    );
    let row = world.audit.wait_for(|r| r.decision.is_some()).await;
    assert_eq!(
        row.transforms_failed.expect("failed")["meta"],
        "body_not_json"
    );
    assert_eq!(row.phase.as_deref(), Some("request_body"));
    assert_eq!(world.upstream.accepts(), 0);
}
