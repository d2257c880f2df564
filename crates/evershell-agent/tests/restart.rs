//! The event log and the session survive an agent restart; `reset_session`
//! starts a fresh conversation; a task a restart interrupted is reported.

mod support;

use std::time::Duration;

use evershell_testkit::model::ScriptStep;
use serde_json::{json, Value};
use support::{bash, delivery, model, types, Agent};

#[tokio::test]
async fn events_and_session_continue_across_a_restart_and_reset_starts_afresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = vec![
        ScriptStep::Text("first answer".into()),
        ScriptStep::Text("second answer".into()),
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
    let first = agent.until_task_completed(0).await;
    assert_eq!(first.last().expect("an end").seq, 4);
    agent.stop().await;

    let agent = Agent::start(dir.path(), &model.ca_file).await;
    assert_eq!(
        agent
            .post("/tasks", &delivery("task_2", &model, "anthropic"))
            .await
            .0,
        202
    );
    let second = agent.until_task_completed(4).await;
    assert_eq!(
        types(&second),
        ["task_started", "iteration_completed", "task_completed"]
    );
    assert_eq!(second[0].seq, 5);
    assert_eq!(
        second[2].detail["result"], "second answer",
        "the conversation was resumed"
    );
    let (_, page) = agent.get("/events?after=0").await;
    let seqs: Vec<u64> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<u64>>());

    agent.stop().await;

    // The session is read from disk with the agent stopped: the end of a task
    // is logged before the session is written.
    let on_disk = read_session(dir.path());
    assert_eq!(on_disk["messages"].as_array().expect("messages").len(), 4);
    assert_eq!(on_disk["tasks"].as_array().expect("tasks").len(), 2);
    let old_id = on_disk["session_id"].as_str().expect("id").to_owned();

    let agent = Agent::start(dir.path(), &model.ca_file).await;
    let mut task = delivery("task_3", &model, "anthropic");
    task["reset_session"] = json!(true);
    assert_eq!(agent.post("/tasks", &task).await.0, 202);
    let third = agent.until_task_completed(7).await;
    assert_eq!(
        types(&third)[..3],
        ["session_reset", "session_started", "task_started"]
    );
    assert_eq!(third[0].detail["previous_session_id"], old_id.as_str());
    assert_eq!(
        third.last().expect("an end").detail["result"],
        "first answer"
    );
    let requests = model.server.requests();
    let last_call = &requests.last().expect("a call").body["messages"];
    assert_eq!(last_call.as_array().expect("messages").len(), 1);
    let (_, view) = agent.get("/session").await;
    assert_eq!(view["tasks"].as_array().expect("tasks").len(), 1);
    agent.stop().await;

    let on_disk = read_session(dir.path());
    assert_ne!(on_disk["session_id"].as_str(), Some(old_id.as_str()));
    assert_eq!(on_disk["session_id"], view["session_id"]);
    assert_eq!(on_disk["messages"].as_array().expect("messages").len(), 2);
}

#[tokio::test]
async fn a_logged_end_missing_from_the_session_is_repaired_without_a_second_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = model(dir.path(), vec![ScriptStep::Text("done".into())], None).await;
    let agent = Agent::start(dir.path(), &model.ca_file).await;
    assert_eq!(
        agent
            .post("/tasks", &delivery("task_1", &model, "anthropic"))
            .await
            .0,
        202
    );
    agent.until_task_completed(0).await;
    agent.stop().await;

    // As if the agent died after logging task_completed, before the session
    // write: the task is still current on disk.
    let mut session = read_session(dir.path());
    let record = session["tasks"]
        .as_array_mut()
        .expect("tasks")
        .pop()
        .expect("a task");
    session["current_task"] = record;
    let path = dir.path().join("state/session.json");
    std::fs::write(&path, session.to_string()).expect("write session.json");

    let agent = Agent::start(dir.path(), &model.ca_file).await;
    let (_, page) = agent.get("/events?after=4").await;
    assert_eq!(page["events"], json!([]), "no second task_completed");
    let (_, view) = agent.get("/session").await;
    assert_eq!(view["current_task"], Value::Null);
    assert_eq!(view["tasks"][0]["status"], "completed");
    agent.stop().await;
}

#[tokio::test]
async fn a_task_interrupted_by_a_stop_is_reported_failed_at_the_next_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The interrupted iteration never reached the session, so the next task
    // gets the same first step: it returns at once the second time.
    let step = bash("[ -f started ] && exit 0; sleep 60 & echo $! > pid; touch started; wait");
    let model = model(dir.path(), vec![step], None).await;
    let agent = Agent::start(dir.path(), &model.ca_file).await;
    assert_eq!(
        agent
            .post("/tasks", &delivery("task_1", &model, "anthropic"))
            .await
            .0,
        202
    );
    let started = agent.workdir.join("started");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !started.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tool never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = std::fs::read_to_string(agent.workdir.join("pid")).expect("pid file");
    agent.stop().await;
    assert_process_gone(pid.trim()).await;

    let agent = Agent::start(dir.path(), &model.ca_file).await;
    let (_, page) = agent.get("/events?after=2").await;
    let done = &page["events"][0];
    assert_eq!(
        (done["seq"].as_u64(), done["event_type"].as_str()),
        (Some(3), Some("task_completed"))
    );
    assert_eq!(
        (
            done["detail"]["status"].as_str(),
            done["detail"]["reason"].as_str()
        ),
        (Some("failed"), Some("agent_restarted"))
    );
    let (_, view) = agent.get("/session").await;
    assert_eq!(
        (
            view["current_task"].clone(),
            view["tasks"][0]["status"].clone()
        ),
        (Value::Null, json!("failed"))
    );
    assert_eq!(
        agent
            .post("/tasks", &delivery("task_2", &model, "anthropic"))
            .await
            .0,
        202
    );
    agent.until_task_completed(3).await;
    agent.stop().await;
}

fn read_session(root: &std::path::Path) -> Value {
    let bytes = std::fs::read(root.join("state/session.json")).expect("session.json");
    serde_json::from_slice(&bytes).expect("session json")
}

/// The process is gone or a zombie waiting for its reaper.
async fn assert_process_gone(pid: &str) {
    let stat = format!("/proc/{pid}/stat");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let alive = std::fs::read_to_string(&stat)
            .map(|s| {
                !s.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false);
        if !alive {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "tool process {pid} outlived the agent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
