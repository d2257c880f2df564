//! `evershell admin …`: installation administration on the server host,
//! against its data directory.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::Output;

#[derive(clap::Args)]
pub struct AdminArgs {
    /// The installation's database when it is not the data directory's
    /// SQLite file: `postgres://…` (as given to `evershell up`).
    #[arg(long, global = true, env = "EVERSHELL_DATABASE_URL")]
    database_url: Option<String>,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(clap::Subcommand)]
pub enum AdminCommand {
    /// Create an org and its first owner. An owner without an account gets
    /// one, with a generated password printed once.
    CreateOrg {
        /// Data directory of the installation.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Org slug: ^[a-z][a-z0-9-]{1,38}$.
        slug: String,
        /// Email of the first owner.
        #[arg(long)]
        owner: String,
    },
    /// Set an org's billing posture: `suspended` refuses create-class
    /// routes with 423 billing_inactive; reads and wind-down keep working.
    SetPosture {
        /// Data directory of the installation.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Org slug.
        slug: String,
        #[arg(value_parser = ["active", "suspended"])]
        posture: String,
    },
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
    /// Create a user who signs in with a password (read from standard
    /// input) and make them a member of an org.
    CreateUser {
        /// Data directory of the installation.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        email: String,
        /// Org slug.
        #[arg(long, default_value = "default")]
        org: String,
        /// Member role: owner, operator or member.
        #[arg(long, value_parser = ["owner", "operator", "member"])]
        role: String,
    },
    /// Add a session signing key and make it current (older keys keep
    /// verifying the tokens they signed until those expire).
    RotateSessionKey {
        /// Data directory of the installation.
        #[arg(long)]
        data_dir: Option<PathBuf>,
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

/// Passwords are not kept in memory longer than needed.
fn zeroize_string(value: String) -> zeroize::Zeroizing<String> {
    zeroize::Zeroizing::new(value)
}

fn read_stdin() -> anyhow::Result<String> {
    let mut value = String::new();
    std::io::stdin().read_to_string(&mut value)?;
    Ok(value.trim_end_matches(['\r', '\n']).to_string())
}

pub async fn run(out: Output, args: AdminArgs) -> anyhow::Result<ExitCode> {
    let url = args.database_url;
    let open = |dir: Option<PathBuf>| {
        let url = url.clone();
        async move {
            evershell_server::admin::Admin::open_at(&data_dir_or_default(dir)?, url.as_deref())
                .await
        }
    };
    let (data_dir, org, name, provider, kind, config) = match args.command {
        AdminCommand::CreateOrg {
            data_dir,
            slug,
            owner,
        } => {
            let admin = open(data_dir).await?;
            let org = evershell_server::admin::create_org(&admin.store, &slug, &owner).await?;
            let password = org.owner_password.as_ref().map(|p| p.as_str().to_string());
            out.print(
                &json!({
                    "org_id": org.org_id, "slug": slug, "owner_user_id": org.owner_user_id,
                    "owner_email": owner, "owner_password": password,
                }),
                |_| match &password {
                    Some(p) => format!(
                        "created org {slug} ({}); owner {owner} signs in with the generated \
                         password {p} (printed only now)",
                        org.org_id
                    ),
                    None => format!(
                        "created org {slug} ({}); {owner} (an existing account) is its owner",
                        org.org_id
                    ),
                },
            );
            return Ok(ExitCode::SUCCESS);
        }
        AdminCommand::SetPosture {
            data_dir,
            slug,
            posture,
        } => {
            let admin = open(data_dir).await?;
            evershell_server::admin::set_posture(&admin.store, &slug, &posture).await?;
            out.print(&json!({ "slug": slug, "posture": posture }), |_| {
                format!("org {slug} is now {posture}")
            });
            return Ok(ExitCode::SUCCESS);
        }
        AdminCommand::CreateCredential {
            data_dir,
            org,
            name,
            provider,
            kind,
            config,
        } => (data_dir, org, name, provider, kind, config),
        AdminCommand::CreateUser {
            data_dir,
            email,
            org,
            role,
        } => {
            let password = zeroize_string(read_stdin()?);
            let admin = open(data_dir).await?;
            let user_id =
                evershell_server::admin::create_user(&admin.store, &org, &email, &role, &password)
                    .await?;
            out.print(
                &json!({ "user_id": user_id, "email": email, "org": org, "role": role }),
                |_| format!("created user {email} ({user_id}) as {role} of org {org}"),
            );
            return Ok(ExitCode::SUCCESS);
        }
        AdminCommand::RotateSessionKey { data_dir } => {
            let admin = open(data_dir).await?;
            let kid =
                evershell_server::admin::rotate_session_key(&admin.store, admin.master.clone())
                    .await?;
            out.print(&json!({ "kid": kid, "status": "current" }), |_| {
                format!("session signing key {kid} is now current")
            });
            return Ok(ExitCode::SUCCESS);
        }
        AdminCommand::SetSecret {
            data_dir,
            org,
            name,
            replace,
        } => {
            let value = read_stdin()?;
            let admin = open(data_dir).await?;
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
    let admin = open(data_dir).await?;
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
