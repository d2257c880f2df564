use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::*;

fn context(dir: &tempfile::TempDir, limit: usize) -> ToolContext {
    ToolContext {
        workdir: dir.path().to_path_buf(),
        bash_timeout: Duration::from_secs(30),
        output_limit: limit,
    }
}

async fn bash(ctx: &ToolContext, input: serde_json::Value) -> ToolOutcome {
    execute(ctx, "bash", &input, &CancellationToken::new()).await
}

#[tokio::test]
async fn bash_reports_interleaved_output_and_the_exit_code_in_the_workdir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(&dir, 4096);
    let outcome = bash(
        &ctx,
        json!({"command": "echo out; echo err >&2; pwd; exit 3"}),
    )
    .await;
    let pwd = dir.path().display().to_string();
    assert_eq!(outcome.exit_code, 3);
    assert_eq!(outcome.content, format!("out\nerr\n{pwd}\n[exit code: 3]"));
    assert!(!outcome.is_error);
}

#[tokio::test]
async fn bash_truncates_long_output_with_a_marker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(&dir, 100);
    let outcome = bash(
        &ctx,
        json!({"command": "head -c 100000 /dev/zero | tr '\\0' a; echo; echo END"}),
    )
    .await;
    assert_eq!(outcome.exit_code, 0);
    assert!(
        outcome.content.starts_with(&"a".repeat(50)),
        "{}",
        outcome.content
    );
    assert!(outcome.content.contains("bytes of output truncated"));
    assert!(
        outcome.content.ends_with("END\n[exit code: 0]"),
        "{}",
        outcome.content
    );
    assert!(outcome.content.len() < 300);
}

#[tokio::test]
async fn bash_terminates_the_process_group_when_the_timeout_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(&dir, 4096);
    let started = tokio::time::Instant::now();
    let outcome = bash(
        &ctx,
        json!({"command": "sleep 30 & echo started; wait", "timeout_seconds": 1}),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(outcome.exit_code, 128 + 15);
    assert!(outcome.is_error);
    assert!(
        outcome.content.starts_with("started\n[timed out after 1 s"),
        "{}",
        outcome.content
    );
}

#[tokio::test]
async fn bash_does_not_wait_for_background_processes_holding_the_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(&dir, 4096);
    let started = tokio::time::Instant::now();
    let outcome = bash(&ctx, json!({"command": "sleep 5 & echo done"})).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(outcome.content, "done\n[exit code: 0]");
}

#[tokio::test]
async fn cancelling_kills_a_command_that_ignores_sigterm_after_the_grace_period() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(&dir, 4096);
    let cancel = CancellationToken::new();
    let marker = dir.path().join("ready");
    let command = format!(
        "trap '' TERM; touch {}; while true; do sleep 0.1; done",
        marker.display()
    );
    let trigger = cancel.clone();
    tokio::spawn(async move {
        while !marker.exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        trigger.cancel();
    });
    let started = tokio::time::Instant::now();
    let outcome = execute(&ctx, "bash", &json!({"command": command}), &cancel).await;
    let took = started.elapsed();
    assert!(
        took >= KILL_GRACE && took < KILL_GRACE + Duration::from_secs(3),
        "took {took:?}"
    );
    assert_eq!(outcome.exit_code, 128 + 9);
    assert!(
        outcome.content.contains("the task was cancelled"),
        "{}",
        outcome.content
    );
}

#[tokio::test]
async fn file_tools_write_edit_read_and_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(&dir, 4096);
    let cancel = CancellationToken::new();
    let run = |name: &'static str, input: serde_json::Value| {
        let (ctx, cancel) = (ctx.clone(), cancel.clone());
        async move { execute(&ctx, name, &input, &cancel).await }
    };
    let wrote = run(
        "write_file",
        json!({"path": "src/a.txt", "content": "one two two"}),
    )
    .await;
    assert_eq!(wrote.content, "wrote 11 bytes to src/a.txt");
    let ambiguous = run(
        "edit_file",
        json!({"path": "src/a.txt", "old": "two", "new": "2"}),
    )
    .await;
    assert!(ambiguous.is_error && ambiguous.content.contains("more than once"));
    let edited = run(
        "edit_file",
        json!({"path": "src/a.txt", "old": "one", "new": "1"}),
    )
    .await;
    assert_eq!((edited.exit_code, edited.is_error), (0, false));
    let read = run("read_file", json!({"path": "src/a.txt"})).await;
    assert_eq!(read.content, "1 two two");
    let listed = run("list_files", json!({"path": "."})).await;
    assert_eq!(listed.content, "src/");
    let listed = run("list_files", json!({"path": "src"})).await;
    assert_eq!(listed.content, "a.txt (9 bytes)");
}

#[tokio::test]
async fn bad_calls_are_results_for_the_model_not_failures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(&dir, 4096);
    let cancel = CancellationToken::new();
    let unknown = execute(&ctx, "browse", &json!({}), &cancel).await;
    assert!(unknown.is_error && unknown.content.starts_with("unknown tool \"browse\""));
    let invalid = execute(&ctx, "bash", &json!("{not json"), &cancel).await;
    assert!(invalid.is_error && invalid.content.contains("not valid JSON"));
    let missing = execute(&ctx, "read_file", &json!({"path": "nope"}), &cancel).await;
    assert_eq!(missing.exit_code, 1);
    assert!(
        missing.content.starts_with("nope: No such file"),
        "{}",
        missing.content
    );
    std::fs::write(dir.path().join("bin"), [0u8, 1, 2]).expect("write");
    let binary = execute(&ctx, "read_file", &json!({"path": "bin"}), &cancel).await;
    assert!(binary.content.contains("binary file (3 bytes)"));
}
