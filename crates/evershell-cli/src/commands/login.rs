//! `evershell login`: checks an API key against `GET /v1/me/session` and
//! stores it in the credentials file.

use std::io::Read;
use std::process::ExitCode;

use serde_json::Value;

use crate::client::{save_profile, Client, Profile};

#[derive(clap::Args)]
pub struct LoginArgs {
    /// API base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Org slug.
    #[arg(long, default_value = "default")]
    slug: String,
    /// Read the API key from standard input.
    #[arg(long)]
    api_key_stdin: bool,
    /// The API key (lands in shell history; prefer --api-key-stdin).
    #[arg(long)]
    api_key: Option<String>,
}

pub async fn run(profile_name: &str, args: LoginArgs) -> anyhow::Result<ExitCode> {
    let api_key = match (args.api_key, args.api_key_stdin) {
        (Some(key), _) => {
            eprintln!(
                "warning: --api-key puts the key in your shell history; prefer --api-key-stdin"
            );
            key
        }
        (None, _) => {
            if !args.api_key_stdin {
                eprintln!("paste the API key, then press Enter and Ctrl-D:");
            }
            let mut key = String::new();
            std::io::stdin().read_to_string(&mut key)?;
            key.trim().to_string()
        }
    };
    let profile = Profile {
        url: args.url,
        slug: args.slug,
        api_key,
    };
    let client = Client::new(profile.clone());
    let session: Value = client.get("/v1/me/session").await?;
    if session["org_slug"].as_str() != Some(profile.slug.as_str()) {
        anyhow::bail!(
            "the key belongs to org {:?}, not {:?}",
            session["org_slug"],
            profile.slug
        );
    }
    let path = save_profile(profile_name, &profile)?;
    println!(
        "logged in to org {} at {} (saved in {})",
        profile.slug,
        profile.url,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
