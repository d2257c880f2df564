//! Allowed requests: they reach the policy host with the credential stamped,
//! come back unchanged, and leave exactly one complete row.

use crate::support::{World, CANARY};

fn echo(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("echo json ({e}): {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_reaches_the_upstream_with_the_credential_stamped_and_never_sees_it() {
    let world = World::start().await;
    let url = world.url("allowed.test", "/v1/messages?stream=false");
    let (code, stdout, stderr) = world
        .curl(
            "allowed.test",
            &[
                "--http1.1",
                "-H",
                "x-api-key: agent-supplied",
                "-H",
                "accept-encoding: gzip, br",
                &url,
            ],
        )
        .await;
    assert_eq!(code, 0, "{stderr}");

    let echo = echo(&stdout);
    assert_eq!(echo["method"], "GET");
    assert_eq!(echo["target"], "/v1/messages?stream=false");
    let seen = world.upstream.last_seen();
    let keys: Vec<_> = seen.headers.get_all("x-api-key").iter().collect();
    assert_eq!(
        keys,
        [CANARY],
        "the agent's value is replaced, not added to"
    );
    assert_eq!(seen.authority, format!("allowed.test:{}", world.https_port));
    assert_eq!(seen.headers["accept-encoding"], "gzip, br");
    assert!(!stdout.contains(CANARY) && !stderr.contains(CANARY));

    let row = world
        .audit
        .wait_for(|r| r.decision.as_deref() == Some("allow"))
        .await;
    assert_eq!(row.event_type, "policy_decision");
    assert_eq!(
        row.destination,
        Some(format!("allowed.test:{}", world.https_port))
    );
    assert_eq!(row.method.as_deref(), Some("GET"));
    assert_eq!(row.path.as_deref(), Some("/v1/messages"));
    assert_eq!(row.phase.as_deref(), Some("request_headers"));
    assert_eq!(row.policy_type.as_deref(), Some("http"));
    assert_eq!(row.capability_name.as_deref(), Some("echo"));
    assert_eq!(row.minted, Some(vec!["test-key".to_owned()]));
    assert_eq!(row.transforms_applied, Some(1));
    assert_eq!(row.status_code, Some(200));
    assert_eq!(row.bytes_out, Some(0));
    assert_eq!(row.bytes_in, Some(stdout.len() as i64));
    assert!(row.latency_ms.is_some());
    assert_eq!(row.user_id, "usr_01");
    assert_eq!(row.org_id, "org_01");
    assert_eq!(row.workspace_id.as_deref(), Some("ws_01"));
    assert_eq!(row.task_id.as_deref(), Some("task_01"));
    assert_eq!(row.agent_role.as_deref(), Some("tester"));
    assert_eq!(row.agent_provider.as_deref(), Some("anthropic-main"));

    let all = serde_json::to_string(&world.audit.rows()).expect("rows serialise");
    assert!(!all.contains(CANARY), "a row carries the credential value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_over_http2_is_served_over_http2_on_both_legs() {
    let world = World::start().await;
    let url = world.url("allowed.test", "/v1/models");
    let (code, stdout, stderr) = world.curl("allowed.test", &["--http2", &url]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("< HTTP/2 200"), "{stderr}");
    assert_eq!(echo(&stdout)["target"], "/v1/models");
    assert_eq!(world.upstream.last_seen().version, http::Version::HTTP_2);
    assert!(!stdout.contains(CANARY) && !stderr.contains(CANARY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_forwarded_is_the_canonical_path_the_policy_matched() {
    let world = World::start().await;
    let url = world.url("allowed.test", "/v1/a/../b//%70q?x=%2F");
    let (code, stdout, stderr) = world.curl("allowed.test", &["--path-as-is", &url]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(echo(&stdout)["target"], "/v1/b/pq?x=%2F");
    let row = world
        .audit
        .wait_for(|r| r.decision.as_deref() == Some("allow"))
        .await;
    assert_eq!(row.path.as_deref(), Some("/v1/b/pq"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_stream_through_and_are_counted() {
    let world = World::start().await;
    let url = world.url("allowed.test", "/v1/upload");
    // Over 1 MiB, so that curl sends `Expect: 100-continue` first.
    let file = world.ca_file.with_extension("upload");
    std::fs::write(&file, vec![b'x'; 2_000_000]).expect("upload file");
    let data = format!("@{}", file.display());
    let args = ["--http1.1", "-X", "POST", "--data-binary", &data, &url];
    let (code, stdout, stderr) = world.curl("allowed.test", &args).await;
    let _ = std::fs::remove_file(&file);

    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Expect: 100-continue"), "{stderr}");
    assert_eq!(echo(&stdout)["body_bytes"], 2_000_000);
    let allowed = |r: &evershell_core::AuditEvent| r.decision.as_deref() == Some("allow");
    let row = world.audit.wait_for(allowed).await;
    assert_eq!(row.bytes_out, Some(2_000_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_on_a_kept_alive_connection_gets_exactly_one_row() {
    let world = World::start().await;
    let first = world.url("allowed.test", "/v1/one");
    let second = world.url("allowed.test", "/v1/two");
    let denied = world.url("allowed.test", "/admin");
    let (code, _, stderr) = world
        .curl("allowed.test", &[&first, &second, &denied])
        .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("Re-using existing connection"), "{stderr}");

    world
        .audit
        .wait_for(|r| r.path.as_deref() == Some("/v1/two"))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let paths: Vec<_> = world
        .audit
        .rows()
        .into_iter()
        .filter_map(|r| r.path)
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(sorted, ["/admin", "/v1/one", "/v1/two"], "{paths:?}");
    assert_eq!(
        world.upstream.accepts(),
        1,
        "one pooled upstream connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_name_the_task_current_when_the_request_started() {
    let world = World::start().await;
    world.task.send_replace(None);
    let url = world.url("allowed.test", "/v1/idle");
    let (code, _, stderr) = world.curl("allowed.test", &[&url]).await;
    assert_eq!(code, 0, "{stderr}");
    let row = world
        .audit
        .wait_for(|r| r.decision.as_deref() == Some("allow"))
        .await;
    assert_eq!(row.task_id, None);
}
