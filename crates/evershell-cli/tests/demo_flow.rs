//! The governed demo task, end to end: the agent in a real sandbox clones
//! over the proxy, pushes a branch to the real git http-backend, and is
//! denied a host its role does not allow; the audit log shows both.

mod common;

use evershell_cli::demo::{
    demo_script, BRANCH, DEMO_API_KEY, DEMO_CAPS, FORBIDDEN_HOST, GIT_HOST, ROLE,
};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn agent_pushes_the_fix_and_is_denied_the_forbidden_host() {
    let world = common::world(demo_script(), ROLE, DEMO_CAPS).await;
    let (ws, task) = common::submit(&world, ROLE, "Fix the typo and push a branch.").await;

    // Follow over SSE exactly as `evershell run --follow` does.
    let mut seen = Vec::new();
    let mut print = |row: &Value| seen.push(row.clone());
    let finished = evershell_cli::follow::follow(&world.client, &ws, &task, &mut print)
        .await
        .expect("follow");
    assert_eq!(
        finished["status"],
        "completed",
        "{finished}\n{:#?}",
        evershell_cli::demo::tool_results(&world.model)
    );
    let types: Vec<&str> = seen
        .iter()
        .filter_map(|r| r["event_type"].as_str())
        .collect();
    for expected in [
        "workspace_created",
        "task_submitted",
        "workspace_provisioned",
        "task_delivered",
        "task_started",
        "iteration_completed",
        "tool_executed",
        "task_completed",
    ] {
        assert!(
            types.contains(&expected),
            "live view lacks {expected}: {types:?}"
        );
    }

    let show = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(world.repo_path())
        .args(["show", &format!("refs/heads/{BRANCH}:README.md")])
        .output()
        .expect("git runs");
    assert!(show.status.success(), "branch {BRANCH} not pushed");
    assert!(String::from_utf8_lossy(&show.stdout).contains("autonomous coding agents"));

    let rows = common::audit_rows(&world.client, &ws).await;
    let decisions: Vec<&Value> = rows
        .iter()
        .filter(|r| r["event_type"] == "policy_decision")
        .collect();
    let push = decisions
        .iter()
        .find(|r| r["path"] == "/demo.git/git-receive-pack")
        .expect("the push was audited");
    assert_eq!(push["decision"], "allow");
    assert_eq!(push["destination"], GIT_HOST);
    assert_eq!(push["method"], "POST");
    assert_eq!(push["capability_name"], "demo-git");
    assert_eq!(push["task_id"], task.as_str());
    let http_deny = decisions
        .iter()
        .find(|r| r["destination"] == FORBIDDEN_HOST && r["method"] == "POST")
        .expect("the forbidden upload was audited");
    assert_eq!(http_deny["decision"], "deny");
    assert_eq!(http_deny["path"], "/upload");
    assert!(decisions.iter().any(|r| r["destination"] == FORBIDDEN_HOST
        && r["phase"] == "dns"
        && r["decision"] == "deny"));
    let model_calls = decisions
        .iter()
        .filter(|r| r["capability_name"] == "_provider")
        .count();
    assert!(
        model_calls >= 6,
        "every model call is a decision row: {model_calls}"
    );

    // The key was injected: the model server refuses requests without it.
    let requests = world.model.requests();
    assert!(requests.iter().all(|r| r
        .headers
        .iter()
        .any(|(k, v)| k == "x-api-key" && v == DEMO_API_KEY)));
    let everything = serde_json::to_string(&rows).expect("rows serialise");
    assert!(
        !everything.contains(DEMO_API_KEY),
        "the provider key leaked into the audit log"
    );

    let ws_doc: Value = world
        .client
        .get(&format!("/v1/workspaces/{ws}"))
        .await
        .expect("workspace");
    assert_eq!(ws_doc["status"], "idle");
    assert_eq!(ws_doc["task_count"], 1);
    assert!(ws_doc["policy_version"]
        .as_str()
        .is_some_and(|v| v.starts_with("sha256:")));
    world.shutdown().await;
}
