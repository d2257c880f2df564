//! Cancellation ends a task at the iteration boundary: the running tool is
//! terminated, later tool calls of that iteration do not start, no further
//! model call is made, and the session stays usable.

mod support;

use std::time::Duration;

use evershell_testkit::model::ScriptStep;
use serde_json::json;
use support::{delivery, model, types, Agent};

#[tokio::test]
async fn cancel_terminates_the_running_tool_and_ends_the_task_after_its_iteration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = vec![
        ScriptStep::ToolCalls(vec![
            (
                "bash".into(),
                json!({"command": "touch started; while [ ! -f go ]; do sleep 0.05; done"}),
            ),
            ("bash".into(), json!({"command": "touch second"})),
        ]),
        ScriptStep::Text("after the cancel".into()),
    ];
    let model = model(dir.path(), script, None).await;
    let agent = Agent::start(dir.path(), &model.ca_file).await;
    assert_eq!(
        agent
            .post("/tasks", &delivery("task_1", &model, "anthropic"))
            .await
            .0,
        202
    );
    wait_for_file(&agent.workdir.join("started")).await;

    // While it runs: one task at a time, redelivery is idempotent.
    let (status, body) = agent
        .post("/tasks", &delivery("task_2", &model, "anthropic"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("workspace_busy"))
    );
    let (status, body) = agent
        .post("/tasks", &delivery("task_1", &model, "anthropic"))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("already_running"))
    );
    let (status, body) = agent.post("/tasks/task_2/cancel", &json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("task_not_found"))
    );

    let (status, _) = agent.post("/tasks/task_1/cancel", &json!({})).await;
    assert_eq!(status, 202);
    let events = agent.until_task_completed(0).await;

    assert_eq!(
        types(&events),
        [
            "session_started",
            "task_started",
            "tool_executed",
            "iteration_completed",
            "task_completed",
        ]
    );
    assert_eq!(
        events[2].detail["exit_code"],
        128 + 15,
        "SIGTERM ended the tool"
    );
    let done = &events[4].detail;
    assert_eq!(
        (done["status"].as_str(), done["reason"].as_str()),
        (Some("cancelled"), Some("cancel_requested"))
    );
    assert_eq!(done["iterations"], 1);
    assert!(
        !agent.workdir.join("second").exists(),
        "a tool started after the cancel"
    );
    assert_eq!(model.server.requests().len(), 1);

    // The next task continues a well-formed conversation.
    assert_eq!(
        agent
            .post("/tasks", &delivery("task_2", &model, "anthropic"))
            .await
            .0,
        202
    );
    let done = agent
        .until_task_completed(5)
        .await
        .pop()
        .expect("an end")
        .detail;
    assert_eq!(
        (done["status"].as_str(), done["result"].as_str()),
        (Some("completed"), Some("after the cancel"))
    );
    let messages = model.server.requests()[1].body["messages"].clone();
    let results = messages[2]["content"].as_array().expect("blocks").clone();
    assert_eq!(
        results.len(),
        3,
        "two tool results and the new task: {messages}"
    );
    assert!(results[0]["content"]
        .as_str()
        .expect("text")
        .contains("the task was cancelled"));
    assert_eq!(results[1]["content"], "not run: the task was cancelled");
    agent.stop().await;
}

async fn wait_for_file(path: &std::path::Path) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
