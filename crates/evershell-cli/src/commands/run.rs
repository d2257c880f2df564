//! `evershell run ROLE "description" [--file F]... [--follow]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{json, Value};

use super::Output;
use crate::client::{load_profile, Client};
use crate::{exit, follow};

#[derive(clap::Args)]
pub struct RunArgs {
    /// Agent role name or id.
    role: String,
    /// What the agent should do.
    description: String,
    /// Files to upload to /data/uploads/<task_id>/ (repeatable).
    #[arg(long = "file")]
    files: Vec<PathBuf>,
    /// Stream the task live until it ends.
    #[arg(long)]
    follow: bool,
}

pub async fn run(profile: &str, out: Output, args: RunArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(load_profile(profile)?);
    let accepted = submit(&client, &args.role, &args.description, &args.files).await?;
    let ws_id = accepted["workspace_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let task_id = accepted["task_id"].as_str().unwrap_or_default().to_string();
    if !args.follow {
        out.print(&accepted, |_| {
            format!("submitted task {task_id} in workspace {ws_id}")
        });
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("submitted task {task_id} in workspace {ws_id}");
    let task = follow_and_print(&client, &ws_id, &task_id, out).await?;
    Ok(task_exit_code(&task))
}

/// `POST /v1/tasks`, as JSON or, with files, as multipart.
pub async fn submit(
    client: &Client,
    role: &str,
    description: &str,
    files: &[PathBuf],
) -> anyhow::Result<Value> {
    if files.is_empty() {
        return client
            .post(
                "/v1/tasks",
                &json!({ "role_name": role, "description": description }),
            )
            .await;
    }
    let mut form = reqwest::multipart::Form::new()
        .text("role_name", role.to_string())
        .text("description", description.to_string());
    for path in files {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name),
        );
    }
    client
        .send(
            client
                .request(reqwest::Method::POST, "/v1/tasks")
                .multipart(form),
        )
        .await
}

/// Follows a task, printing the live view (or rows as JSON lines).
pub async fn follow_and_print(
    client: &Client,
    ws_id: &str,
    task_id: &str,
    out: Output,
) -> anyhow::Result<Value> {
    let started = std::time::Instant::now();
    let mut print = |row: &Value| {
        if out.json {
            println!("{row}");
        } else if let Some(line) = follow::describe(row) {
            println!("[{:>6.1}s] {line}", started.elapsed().as_secs_f64());
        }
    };
    let task = follow::follow(client, ws_id, task_id, &mut print).await?;
    if !out.json {
        println!(
            "task {} {} after {:.1}s · {} iterations · {} tokens in / {} out",
            task_id,
            task["status"].as_str().unwrap_or("?"),
            task["duration_seconds"].as_f64().unwrap_or(0.0),
            task["iterations"],
            task["input_tokens"],
            task["output_tokens"]
        );
    }
    Ok(task)
}

pub fn task_exit_code(task: &Value) -> ExitCode {
    match task["status"].as_str() {
        Some("completed") => ExitCode::SUCCESS,
        _ => ExitCode::from(exit::TASK_FAILED),
    }
}
