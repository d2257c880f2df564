//! `evershell admin …`: installation administration on the server host,
//! against its data directory.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::Output;

#[derive(clap::Subcommand)]
pub enum AdminCommand {
    /// Store a credential (its secret read from standard input).
    CreateCredential {
        /// Data directory of the installation.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Org slug.
        #[arg(long, default_value = "default")]
        org: String,
        /// Credential name (referenced by providers' credential_name).
        #[arg(long)]
        name: String,
        /// Upstream the credential is for: anthropic, openai, github, …
        #[arg(long)]
        provider: String,
        /// Credential kind.
        #[arg(long, default_value = "api_key")]
        kind: String,
    },
}

pub async fn run(out: Output, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    let AdminCommand::CreateCredential {
        data_dir,
        org,
        name,
        provider,
        kind,
    } = cmd;
    let data_dir = match data_dir {
        Some(dir) => dir,
        None => super::up::default_data_dir()?,
    };
    let mut secret = String::new();
    std::io::stdin().read_to_string(&mut secret)?;
    let body = serde_json::from_value(json!({
        "name": name, "provider": provider, "kind": kind, "api_key": secret.trim(),
    }))?;
    let admin = evershell_server::admin::Admin::open(&data_dir).await?;
    let credential = admin.create_credential(&org, body).await?;
    out.print(&serde_json::to_value(&credential)?, |c| {
        format!(
            "created credential {} ({}, {})",
            c["name"].as_str().unwrap_or_default(),
            c["id"].as_str().unwrap_or_default(),
            c["kind"].as_str().unwrap_or_default()
        )
    });
    Ok(ExitCode::SUCCESS)
}
