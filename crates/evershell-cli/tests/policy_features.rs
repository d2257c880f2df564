//! The capability language end to end, from inside a workspace: a CEL
//! predicate on headers, a transform that adds a secret the agent never
//! sees and removes a header, and a request budget.

mod common;

use evershell_cli::demo::{tool_results, DemoWorld, ECHO_HOST};
use serde_json::Value;

const CAPS: &str = r#"- name: echo
  type: http
  allow:
    - name: api
      domains: [echo.evershell.test]
      methods: [POST]
      paths: [/v1/**]
      match: request.headers["x-team"] == "blue"
  transforms:
    - name: tenant
      set_headers:
        X-Tenant-Id: 'secrets["tenant-id"]'
      remove_headers: [x-team]
  budgets:
    requests: {limit: 2, per: task}
- name: echo-basic
  type: http
  allow:
    - name: basic
      domains: [echo.evershell.test]
      methods: [GET]
      paths: [/basic/**]
  transforms:
    - name: login
      auth: echo-basic
"#;

const TENANT: &str = "tenant-5f0c2a9e-secret";

#[tokio::test(flavor = "multi_thread")]
async fn predicates_transforms_and_budgets_apply_to_agent_traffic() {
    let post = |team: &str| {
        format!(
            "curl -sS -o /dev/null -w '%{{http_code}}\\n' -X POST -H 'x-team: {team}' -H 'content-type: application/json' \
             -d '{{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}' \
             https://{ECHO_HOST}/v1/messages"
        )
    };
    let script = vec![
        common::bash(&format!(
            "{}; {}; {}; {}; curl -sS -o /dev/null https://{ECHO_HOST}/basic/x",
            post("red"),
            post("blue"),
            post("blue"),
            post("blue")
        )),
        evershell_testkit::model::ScriptStep::Text("done".into()),
    ];
    let world: DemoWorld = common::world(script, "policy", CAPS).await;
    let ctx = &world.server.ctx;
    evershell_server::admin::set_secret(
        &ctx.store,
        &ctx.master,
        "default",
        "tenant-id",
        TENANT,
        false,
    )
    .await
    .expect("secret stored");
    let basic = serde_json::from_value(serde_json::json!({
        "name": "echo-basic", "provider": "echo", "kind": "basic_auth", "password": "s3cret",
        "provider_config": {"username": "bot"},
    }))
    .expect("credential body");
    evershell_server::admin::create_credential(&ctx.store, &ctx.master, "default", basic)
        .await
        .expect("basic_auth credential stored");

    let (ws, task) = common::submit(&world, "policy", "exercise the policy").await;
    let done = common::wait_task(
        &world.client,
        &ws,
        &task,
        std::time::Duration::from_secs(60),
    )
    .await;
    assert_eq!(done["status"], "completed", "{done}");

    let codes: Vec<String> = tool_results(&world.model)[0]
        .lines()
        .take(4)
        .map(str::to_string)
        .collect();
    assert_eq!(
        codes,
        ["403", "200", "200", "403"],
        "red refused by match, two blue admitted, third over budget"
    );

    let all_seen = world.echo.requests();
    let basic = all_seen
        .iter()
        .find(|r| r.path == "/basic/x")
        .expect("the basic_auth request arrived");
    let authorization = basic
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.as_str());
    assert_eq!(
        authorization,
        Some("Basic Ym90OnMzY3JldA=="),
        "basic_auth stamped from the stored credential"
    );
    let seen: Vec<_> = all_seen
        .iter()
        .filter(|r| r.path == "/v1/messages")
        .collect();
    assert_eq!(seen.len(), 2, "only admitted requests reach the upstream");
    for request in &seen {
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("x-tenant-id"), Some(TENANT));
        assert_eq!(
            header("x-team"),
            None,
            "remove_headers dropped the agent's header"
        );
    }

    let rows = common::audit_rows(&world.client, &ws).await;
    let echo_rows: Vec<&Value> = rows
        .iter()
        .filter(|r| r["destination"] == ECHO_HOST)
        .collect();
    assert_eq!(echo_rows.len(), 5);
    assert!(echo_rows
        .iter()
        .any(|r| r["decision"] == "deny" && r["reason"] == "budget_exceeded:requests"));
    assert!(echo_rows
        .iter()
        .filter(|r| r["decision"] == "allow")
        .all(|r| r["transforms_applied"] == 1));
    assert!(
        !serde_json::to_string(&rows).unwrap().contains(TENANT),
        "the secret never reaches the audit log"
    );

    let budget: Value = world
        .client
        .get(&format!("/v1/workspaces/{ws}/budget"))
        .await
        .expect("budget");
    let counter = budget["counters"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["counter"] == "requests"))
        .cloned()
        .expect("the requests counter is reported");
    assert_eq!(counter["limit"], 2);
    assert_eq!(counter["per"], "task");
    world.shutdown().await;
}
