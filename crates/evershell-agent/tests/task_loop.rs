//! A task runs to its end through the model ⇄ tool loop, with both providers.

mod support;

use evershell_testkit::model::ScriptStep;
use serde_json::json;
use support::{bash, delivery, model, types, Agent};

#[tokio::test]
async fn runs_bash_edit_and_read_then_completes_with_events_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = vec![
        bash("printf 'hello world\\n' > notes.txt"),
        ScriptStep::ToolCalls(vec![(
            "edit_file".into(),
            json!({"path": "notes.txt", "old": "world", "new": "evershell"}),
        )]),
        ScriptStep::ToolCalls(vec![("read_file".into(), json!({"path": "notes.txt"}))]),
        ScriptStep::Text("The notes say hello.".into()),
    ];
    let model = model(dir.path(), script, None).await;
    let agent = Agent::start(dir.path(), &model.ca_file).await;

    let (status, body) = agent
        .post("/tasks", &delivery("task_1", &model, "anthropic"))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("started")),
        "{body}"
    );
    let events = agent.until_task_completed(0).await;

    assert_eq!(
        std::fs::read_to_string(agent.workdir.join("notes.txt")).expect("file"),
        "hello evershell\n"
    );
    assert_eq!(
        types(&events),
        [
            "session_started",
            "task_started",
            "tool_executed",
            "iteration_completed",
            "tool_executed",
            "iteration_completed",
            "tool_executed",
            "iteration_completed",
            "iteration_completed",
            "task_completed",
        ]
    );
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<u64>>());
    assert!(events
        .iter()
        .all(|e| e.task_id.as_deref() == Some("task_1")));

    // Tool events carry what ran and how it ended, never what it printed.
    let tool = &events[2].detail;
    assert_eq!(tool.as_object().expect("object").len(), 4, "{tool}");
    assert_eq!(
        (tool["tool"].as_str(), tool["exit_code"].as_i64()),
        (Some("bash"), Some(0))
    );
    let all = serde_json::to_string(&events[..9]).expect("serialise");
    assert!(
        !all.contains("hello"),
        "event details leaked tool output: {all}"
    );

    let iterations: Vec<_> = events
        .iter()
        .filter(|e| e.event_type == "iteration_completed")
        .collect();
    assert_eq!(iterations[0].detail["tools"], json!(["bash"]));
    assert_eq!(iterations[3].detail["stop_reason"], "end_turn");
    let sum = |key: &str| {
        iterations
            .iter()
            .map(|e| e.detail[key].as_u64().expect("count"))
            .sum::<u64>()
    };
    let done = &events[9].detail;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["result"], "The notes say hello.");
    assert_eq!(done["iterations"], 4);
    assert_eq!(done["input_tokens"].as_u64(), Some(sum("input_tokens")));
    assert_eq!(done["output_tokens"].as_u64(), Some(sum("output_tokens")));
    assert!(sum("input_tokens") > 0);

    // What reached the model: no credential, the read result in the last call.
    let requests = model.server.requests();
    assert_eq!(requests.len(), 4);
    let first = &requests[0];
    assert_eq!(first.path, "/v1/messages");
    assert!(first
        .headers
        .iter()
        .all(|(k, _)| k != "x-api-key" && k != "authorization"));
    assert!(first
        .headers
        .contains(&("anthropic-version".into(), "2023-06-01".into())));
    assert_eq!(first.body["stream"], true);
    assert!(first.body["system"]
        .as_str()
        .expect("system")
        .contains("A test workspace."));
    assert!(first.body.get("thinking").is_none());
    let last_turn = requests[3].body["messages"]
        .as_array()
        .expect("messages")
        .last()
        .cloned();
    assert_eq!(
        last_turn.expect("a turn")["content"][0]["content"],
        "hello evershell\n"
    );

    let (_, session) = agent.get("/session").await;
    assert_eq!(
        (
            session["iterations"].as_u64(),
            session["tasks"][0]["status"].as_str()
        ),
        (Some(4), Some("completed"))
    );
    agent.stop().await;
}

#[tokio::test]
async fn speaks_openai_chat_completions_with_reasoning_effort() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = vec![
        bash("echo from-openai > o.txt"),
        ScriptStep::Text("ok".into()),
    ];
    let model = model(dir.path(), script, None).await;
    let agent = Agent::start(dir.path(), &model.ca_file).await;

    let mut task = delivery("task_oa", &model, "openai");
    task["thinking_effort"] = json!("medium");
    assert_eq!(agent.post("/tasks", &task).await.0, 202);
    let events = agent.until_task_completed(0).await;

    let done = &events.last().expect("an end").detail;
    assert_eq!(
        (done["status"].as_str(), done["iterations"].as_u64()),
        (Some("completed"), Some(2))
    );
    assert!(done["output_tokens"].as_u64().expect("tokens") > 0);
    assert_eq!(
        std::fs::read_to_string(agent.workdir.join("o.txt")).expect("file"),
        "from-openai\n"
    );

    let requests = model.server.requests();
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].body["reasoning_effort"], "medium");
    assert_eq!(requests[0].body["stream_options"]["include_usage"], true);
    let second = requests[1].body["messages"].as_array().expect("messages");
    let tool = second
        .iter()
        .find(|m| m["role"] == "tool")
        .expect("a tool result");
    assert_eq!(tool["tool_call_id"], "call_scripted_0_0");
    assert!(tool["content"]
        .as_str()
        .expect("text")
        .ends_with("[exit code: 0]"));
    agent.stop().await;
}

#[tokio::test]
async fn fails_with_max_continuations_when_the_model_keeps_calling_tools() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = model(
        dir.path(),
        vec![bash("true"), bash("true"), bash("true")],
        None,
    )
    .await;
    let agent = Agent::start(dir.path(), &model.ca_file).await;

    let mut task = delivery("task_max", &model, "anthropic");
    task["max_continuations"] = json!(2);
    task["thinking_effort"] = json!("low");
    assert_eq!(agent.post("/tasks", &task).await.0, 202);
    let done = agent
        .until_task_completed(0)
        .await
        .pop()
        .expect("an end")
        .detail;

    assert_eq!(
        (done["status"].as_str(), done["reason"].as_str()),
        (Some("failed"), Some("max_continuations"))
    );
    assert_eq!(done["iterations"], 2);
    let requests = model.server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body["thinking"]["budget_tokens"], 2048);
    agent.stop().await;
}
