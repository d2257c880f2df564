use std::time::Duration;

use serde_json::json;

use super::*;

fn log_in(dir: &tempfile::TempDir) -> (EventLog, PathBuf) {
    let path = dir.path().join("events.jsonl");
    (EventLog::open(&path).expect("open the log"), path)
}

#[tokio::test]
async fn numbers_events_from_one_and_continues_after_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, path) = log_in(&dir);
    let first = log
        .append(EventType::SessionStarted, None, json!({}))
        .await
        .expect("append");
    let second = log
        .append(EventType::TaskStarted, Some("task_1"), json!({"a": 1}))
        .await
        .expect("append");
    assert_eq!((first.seq, second.seq), (1, 2));
    drop(log);

    let log = EventLog::open(&path).expect("reopen");
    assert_eq!(log.last_seq(), 2);
    let third = log
        .append(EventType::TaskCompleted, Some("task_1"), json!({}))
        .await
        .expect("append");
    assert_eq!(third.seq, 3);
    let seqs: Vec<u64> = log.after(0).iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(log.after(2)[0].task_id.as_deref(), Some("task_1"));
}

#[tokio::test]
async fn cuts_a_torn_last_line_and_reuses_its_seq() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, path) = log_in(&dir);
    log.append(EventType::SessionStarted, None, json!({}))
        .await
        .expect("append");
    drop(log);
    let mut file = OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open for append");
    file.write_all(br#"{"seq":2,"timestamp":"#)
        .expect("write a torn line");
    drop(file);

    let log = EventLog::open(&path).expect("reopen");
    assert_eq!(log.last_seq(), 1);
    let next = log
        .append(EventType::TaskStarted, None, json!({}))
        .await
        .expect("append");
    assert_eq!(next.seq, 2);
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(text.lines().count(), 2);
    assert!(
        text.lines()
            .all(|l| serde_json::from_str::<AgentEvent>(l).is_ok()),
        "{text}"
    );
}

#[tokio::test]
async fn a_long_poll_returns_as_soon_as_an_event_arrives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = log_in(&dir);
    let shutdown = CancellationToken::new();
    let writer = log.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        writer
            .append(EventType::SessionStarted, None, json!({}))
            .await
            .expect("append");
    });
    let started = tokio::time::Instant::now();
    let events = log.wait_after(0, Duration::from_secs(20), &shutdown).await;
    assert_eq!(events.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_long_poll_answers_empty_when_the_wait_ends_or_the_service_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, _) = log_in(&dir);
    let shutdown = CancellationToken::new();
    assert!(log
        .wait_after(0, Duration::from_millis(20), &shutdown)
        .await
        .is_empty());
    shutdown.cancel();
    assert!(log
        .wait_after(0, Duration::from_secs(30), &shutdown)
        .await
        .is_empty());
}
