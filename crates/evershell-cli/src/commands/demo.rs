//! `evershell demo`: the governed demo task, end to end, on this machine.
//! Exits 0 only if the branch landed on the git server and the request to
//! the forbidden host was denied and audited.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::Output;
use crate::demo::{
    demo_script, DemoWorld, BRANCH, DEMO_API_KEY, DEMO_CAPS, FORBIDDEN_HOST, GIT_HOST, ROLE,
};

#[derive(clap::Args)]
pub struct DemoArgs {}

pub async fn run(_args: DemoArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("locating the evershell binary")?;
    println!("starting Evershell with a local model server and git server (TLS, test CA)…");
    let world = DemoWorld::start(demo_script(), exe).await?;
    world.configure(ROLE, DEMO_CAPS).await?;
    println!("platform at {} · role {ROLE:?} may fetch and push https://{GIT_HOST}/demo.git, nothing else\n", world.client.profile.url);

    let accepted = super::run::submit(
        &world.client,
        ROLE,
        "Fix the typo in README.md of the demo repository and push it on a branch.",
        &[],
    )
    .await?;
    let ws_id = accepted["workspace_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let task_id = accepted["task_id"].as_str().unwrap_or_default().to_string();
    let task =
        super::run::follow_and_print(&world.client, &ws_id, &task_id, Output { json: false })
            .await?;

    let verdict = verify(&world, &ws_id, &task).await;
    let transcript = crate::demo::tool_results(&world.model);
    world.shutdown().await;
    match verdict {
        Ok(()) => {
            println!(
                "\ndemo passed: the branch landed and the forbidden request was denied and audited"
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("\ndemo FAILED: {e:#}\n\nwhat the agent's tools returned:");
            for (i, result) in transcript.iter().enumerate() {
                println!("--- tool result {}\n{result}", i + 1);
            }
            Ok(ExitCode::from(crate::exit::TASK_FAILED))
        }
    }
}

async fn verify(world: &DemoWorld, ws_id: &str, task: &Value) -> anyhow::Result<()> {
    anyhow::ensure!(
        task["status"] == "completed",
        "task ended {}: {}",
        task["status"],
        task["reason"]
    );

    let repo = world.repo_path();
    let readme = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(&repo)
        .args(["show", &format!("refs/heads/{BRANCH}:README.md")])
        .output()?;
    anyhow::ensure!(
        readme.status.success(),
        "branch {BRANCH} is not on the git server"
    );
    let readme = String::from_utf8_lossy(&readme.stdout);
    anyhow::ensure!(
        readme.contains("autonomous") && !readme.contains("autonmous"),
        "the pushed README still has the typo"
    );
    println!("\ngit server: branch {BRANCH} holds the fixed README");

    let page: Value = world
        .client
        .get(&format!(
            "/v1/workspaces/{ws_id}/audit?order=asc&limit=1000&filter=event_type=policy_decision"
        ))
        .await?;
    let rows = page["events"].as_array().cloned().unwrap_or_default();
    println!(
        "\naudit log, policy decisions of {ws_id}:\n{}",
        super::audit::table(&rows)
    );

    let pushed = rows.iter().any(|r| {
        r["decision"] == "allow"
            && r["destination"] == GIT_HOST
            && r["path"] == "/demo.git/git-receive-pack"
    });
    anyhow::ensure!(pushed, "no allowed push row in the audit log");
    let denied = rows
        .iter()
        .filter(|r| r["decision"] == "deny" && r["destination"] == FORBIDDEN_HOST)
        .count();
    anyhow::ensure!(denied > 0, "no denied row for {FORBIDDEN_HOST}");
    let all: Value = world
        .client
        .get(&format!("/v1/workspaces/{ws_id}/audit?limit=10000"))
        .await?;
    anyhow::ensure!(
        !all.to_string().contains(DEMO_API_KEY),
        "the provider key appears in the audit log"
    );
    println!(
        "\nsummary: {} allowed, {} denied ({denied} for {FORBIDDEN_HOST}); provider key injected by the proxy, never in the sandbox or the audit log",
        rows.iter().filter(|r| r["decision"] == "allow").count(),
        rows.iter().filter(|r| r["decision"] == "deny").count(),
    );
    Ok(())
}
