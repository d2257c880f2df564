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
        /// Credential kind: api_key, query_api_key or basic_auth.
        #[arg(long, default_value = "api_key")]
        kind: String,
        /// A provider_config entry KEY=VALUE (repeatable), e.g.
        /// username=bot for basic_auth or param=key for query_api_key.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
    },
    /// Store an org secret (its value read from standard input), referenced
    /// by transforms as secrets["NAME"].
    SetSecret {
        /// Data directory of the installation.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Org slug.
        #[arg(long, default_value = "default")]
        org: String,
        name: String,
        /// Replace the value if the secret exists.
        #[arg(long)]
        replace: bool,
    },
}

fn data_dir_or_default(dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match dir {
        Some(dir) => Ok(dir),
        None => super::up::default_data_dir(),
    }
}

fn read_stdin() -> anyhow::Result<String> {
    let mut value = String::new();
    std::io::stdin().read_to_string(&mut value)?;
    Ok(value.trim_end_matches(['\r', '\n']).to_string())
}

pub async fn run(out: Output, cmd: AdminCommand) -> anyhow::Result<ExitCode> {
    let (data_dir, org, name, provider, kind, config) = match cmd {
        AdminCommand::CreateCredential {
            data_dir,
            org,
            name,
            provider,
            kind,
            config,
        } => (data_dir, org, name, provider, kind, config),
        AdminCommand::SetSecret {
            data_dir,
            org,
            name,
            replace,
        } => {
            let value = read_stdin()?;
            let admin =
                evershell_server::admin::Admin::open(&data_dir_or_default(data_dir)?).await?;
            evershell_server::admin::set_secret(
                &admin.store,
                &admin.master,
                &org,
                &name,
                &value,
                replace,
            )
            .await?;
            out.print(&json!({ "name": name, "status": "stored" }), |_| {
                format!("stored secret {name}")
            });
            return Ok(ExitCode::SUCCESS);
        }
    };
    let data_dir = data_dir_or_default(data_dir)?;
    let secret = read_stdin()?;
    let mut provider_config = serde_json::Map::new();
    for entry in config {
        let (key, value) = entry
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--config takes KEY=VALUE, got {entry:?}"))?;
        provider_config.insert(key.to_string(), value.into());
    }
    // basic_auth keeps its secret as `password`, the other kinds as `api_key`.
    let field = if kind == "basic_auth" {
        "password"
    } else {
        "api_key"
    };
    let body = serde_json::from_value(json!({
        "name": name, "provider": provider, "kind": kind, field: secret,
        "provider_config": provider_config,
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
