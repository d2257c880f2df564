//! `evershell ws …`: workspaces.

use std::process::ExitCode;

use serde_json::Value;

use super::Output;
use crate::client::{load_profile, Client};

#[derive(clap::Subcommand)]
pub enum WsCommand {
    /// List workspaces.
    List {
        /// Include archived workspaces.
        #[arg(long)]
        all: bool,
    },
    /// Show one workspace and its tasks.
    Get { workspace: String },
}

pub async fn run(profile: &str, out: Output, cmd: WsCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(load_profile(profile)?);
    match cmd {
        WsCommand::List { all } => {
            let list: Value = client
                .get(&format!("/v1/workspaces?include_archived={all}"))
                .await?;
            out.print(&list, |list| {
                let mut text = format!(
                    "{:<32} {:<13} {:>5}  {}",
                    "ID", "STATUS", "TASKS", "CREATED"
                );
                for ws in list.as_array().into_iter().flatten() {
                    text.push_str(&format!(
                        "\n{:<32} {:<13} {:>5}  {}",
                        ws["id"].as_str().unwrap_or_default(),
                        ws["status"].as_str().unwrap_or_default(),
                        ws["task_count"],
                        ws["created_at"].as_str().unwrap_or_default()
                    ));
                }
                text
            });
        }
        WsCommand::Get { workspace } => {
            let ws: Value = client.get(&format!("/v1/workspaces/{workspace}")).await?;
            let tasks: Value = client
                .get(&format!("/v1/workspaces/{workspace}/tasks"))
                .await?;
            let both = serde_json::json!({ "workspace": ws, "tasks": tasks });
            out.print(&both, |_| human_workspace(&ws, &tasks));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn human_workspace(ws: &Value, tasks: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let mut text = format!(
        "workspace {}\n  status          {}\n  role            {}\n  environment     {}\n  policy_version  {}\n  tasks finished  {}\n  created         {}",
        s(&ws["id"]), s(&ws["status"]), s(&ws["role_id"]), s(&ws["environment"]),
        s(&ws["policy_version"]), ws["task_count"], s(&ws["created_at"])
    );
    if let Some(reason) = ws["reason"].as_str() {
        text.push_str(&format!("\n  reason          {reason}"));
    }
    text.push_str("\ntasks (newest first):");
    for task in tasks.as_array().into_iter().flatten() {
        text.push_str(&format!(
            "\n  {} {:<10} {}{}",
            s(&task["id"]),
            s(&task["status"]),
            s(&task["description"]).chars().take(60).collect::<String>(),
            task["reason"]
                .as_str()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
    }
    text
}
