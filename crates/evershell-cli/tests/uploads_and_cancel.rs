//! Multipart submissions put their files in the workspace, and
//! `task/cancel` stops a running task while the sandbox keeps running.

mod common;

use std::time::Duration;

use evershell_cli::demo::{tool_results, DEMO_CAPS};
use evershell_testkit::model::ScriptStep;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn uploaded_files_reach_the_agent_and_cancel_stops_the_task() {
    let script = vec![
        common::bash("cat /data/uploads/*/notes.txt; ls /data/uploads/*/; stat -c %U /data/uploads/*/notes.txt"),
        // The agent replaces its uploads directory with a link to a host
        // directory before a follow-up arrives.
        common::bash("rm -rf /data/uploads && ln -s /etc /data/uploads && sleep 60"),
        ScriptStep::Text("done".into()),
    ];
    let world = common::world(script, "uploader", DEMO_CAPS).await;
    let form = reqwest::multipart::Form::new()
        .text("role_name", "uploader")
        .text("description", "read the notes")
        .text("metadata", "{\"ticket\": \"EV-1\"}")
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"hello from the operator".to_vec())
                .file_name("../../notes.txt"),
        );
    let accepted: Value = world
        .client
        .send(
            world
                .client
                .request(reqwest::Method::POST, "/v1/tasks")
                .multipart(form),
        )
        .await
        .expect("multipart task accepted");
    assert_eq!(accepted["status"], "submitted");
    let ws = accepted["workspace_id"].as_str().unwrap();
    let task = accepted["task_id"].as_str().unwrap();

    // Cancelling before anything runs is refused once the task is queued
    // only; wait until the agent is in its second tool call (`sleep`).
    for _ in 0..400 {
        if tool_results(&world.model).len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cancelled: Value = world
        .client
        .post(&format!("/v1/workspaces/{ws}/task/cancel"), &json!({}))
        .await
        .expect("cancel");
    assert_eq!(cancelled["task_id"], task);
    let done = common::wait_task(&world.client, ws, task, Duration::from_secs(30)).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(done["metadata"]["ticket"], "EV-1");
    assert_eq!(done["uploads"], json!(["notes.txt"]));

    let results = tool_results(&world.model);
    assert!(
        results[0].contains("hello from the operator"),
        "{results:?}"
    );
    assert!(
        results[0].contains("agent"),
        "the upload belongs to the agent user: {results:?}"
    );

    // Nothing runs now: a second cancel is a conflict, and the workspace
    // stays up for more work.
    let http = world.client.http();
    let again = http
        .post(
            world
                .client
                .url(&format!("/v1/workspaces/{ws}/task/cancel")),
        )
        .bearer_auth(&world.client.profile.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 409);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_state");
    let w: Value = world
        .client
        .get(&format!("/v1/workspaces/{ws}"))
        .await
        .unwrap();
    assert_eq!(w["status"], "idle");
    // A follow-up with a file is refused, nothing is written through the
    // link, and no task is queued.
    let form = reqwest::multipart::Form::new()
        .text("description", "more notes")
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("planted.txt"),
        );
    let refused = world
        .client
        .request(reqwest::Method::POST, &format!("/v1/workspaces/{ws}/tasks"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 409);
    let tasks: Value = world
        .client
        .get(&format!("/v1/workspaces/{ws}/tasks"))
        .await
        .unwrap();
    assert_eq!(tasks.as_array().map(Vec::len), Some(1), "{tasks}");
    let runtime_root = world.dir.path().join("data/workspaces");
    assert!(!std::path::Path::new("/etc/planted.txt").exists());
    assert!(runtime_root.exists());
    let rows = common::audit_rows(&world.client, ws).await;
    assert!(rows
        .iter()
        .any(|r| r["event_type"] == "task_cancel_requested"));
    world.shutdown().await;
}
