//! A model call that fails ends the task `failed` with a reason naming the
//! status and the error code — the agent itself keeps serving.

mod support;

use evershell_testkit::model::ScriptStep;
use serde_json::json;
use support::{delivery, model, types, Agent};

#[tokio::test]
async fn a_401_fails_the_task_with_status_and_code_and_the_agent_takes_the_next_task() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = model(
        dir.path(),
        vec![ScriptStep::Text("hi".into())],
        Some("sk-test"),
    )
    .await;
    let agent = Agent::start(dir.path(), &model.ca_file).await;

    assert_eq!(
        agent
            .post("/tasks", &delivery("task_1", &model, "anthropic"))
            .await
            .0,
        202
    );
    let events = agent.until_task_completed(0).await;
    assert_eq!(
        types(&events),
        ["session_started", "task_started", "task_completed"]
    );
    let done = &events[2].detail;
    assert_eq!(done["status"], "failed");
    assert_eq!(
        done["reason"],
        "model_http_error: status 401, code authentication_error: invalid x-api-key"
    );
    assert_eq!(
        (done["iterations"].as_u64(), done["input_tokens"].as_u64()),
        (Some(0), Some(0))
    );

    assert_eq!(
        agent
            .post("/tasks", &delivery("task_2", &model, "openai"))
            .await
            .0,
        202
    );
    let events = agent.until_task_completed(3).await;
    let reason = events.last().expect("an end").detail["reason"]
        .as_str()
        .expect("reason")
        .to_owned();
    assert!(
        reason.starts_with("model_http_error: status 401, code invalid_api_key"),
        "{reason}"
    );
    agent.stop().await;
}

#[tokio::test]
async fn an_unreachable_model_fails_the_task_without_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = model(dir.path(), Vec::new(), None).await;
    let agent = Agent::start(dir.path(), &model.ca_file).await;

    // Port 9 on loopback: nothing listens there.
    let mut task = delivery("task_1", &model, "anthropic");
    task["model"]["base_url"] = json!("https://localhost:9");
    assert_eq!(agent.post("/tasks", &task).await.0, 202);
    let done = agent
        .until_task_completed(0)
        .await
        .pop()
        .expect("an end")
        .detail;
    assert_eq!(done["status"], "failed");
    assert!(
        done["reason"]
            .as_str()
            .expect("reason")
            .starts_with("model_unreachable: "),
        "{done}"
    );
    assert_eq!(agent.get("/healthz").await.0, 200);
    agent.stop().await;
}

#[tokio::test]
async fn refuses_deliveries_it_cannot_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = model(dir.path(), Vec::new(), None).await;
    let agent = Agent::start(dir.path(), &model.ca_file).await;

    let mut task = delivery("task_1", &model, "gemini");
    let (status, body) = agent.post("/tasks", &task).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("validation_error")),
        "{body}"
    );
    task = delivery("task_1", &model, "anthropic");
    task["unknown_field"] = json!(1);
    assert_eq!(agent.post("/tasks", &task).await.0, 400);
    let (_, page) = agent.get("/events?after=0").await;
    assert_eq!(page["events"], json!([]));
    agent.stop().await;
}
