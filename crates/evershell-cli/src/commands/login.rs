//! `evershell login`: signs in with an email and password (`--email`), or
//! checks an API key against `GET /v1/me/session`, and stores the session
//! token or the key in the credentials file.

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
    #[arg(long, conflicts_with = "email")]
    api_key: Option<String>,
    /// Sign in as this user with a password instead of storing an API key.
    #[arg(long)]
    email: Option<String>,
    /// Read the password from standard input instead of prompting.
    #[arg(long, requires = "email")]
    password_stdin: bool,
}

pub async fn run(profile_name: &str, args: LoginArgs) -> anyhow::Result<ExitCode> {
    if let Some(email) = args.email.clone() {
        return sign_in(profile_name, args, &email).await;
    }
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
        token: None,
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

/// `--email`: `POST /auth/sign-in`, then the token goes in the profile (in
/// place of any API key, so that the session is what the client sends).
async fn sign_in(profile_name: &str, args: LoginArgs, email: &str) -> anyhow::Result<ExitCode> {
    if !args.password_stdin {
        eprintln!("password for {email}, then press Enter and Ctrl-D:");
    }
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);
    let session = sign_in_request(&args.url, email, password, &args.slug).await?;
    let profile = Profile {
        url: args.url,
        slug: args.slug,
        api_key: String::new(),
        token: Some(session.token),
    };
    let path = save_profile(profile_name, &profile)?;
    println!(
        "signed in as {email} to org {} at {} until {} (saved in {})",
        profile.slug,
        profile.url,
        session.expires_at,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A session token and its expiry (RFC 3339).
#[derive(Debug, serde::Deserialize)]
pub struct SessionToken {
    pub token: String,
    pub expires_at: String,
}

/// `POST {url}/auth/sign-in` for org `slug`.
pub async fn sign_in_request(
    url: &str,
    email: &str,
    password: &str,
    slug: &str,
) -> anyhow::Result<SessionToken> {
    let body = serde_json::json!({ "email": email, "password": password, "org": slug });
    let response = reqwest::Client::new()
        .post(format!("{}/auth/sign-in", url.trim_end_matches('/')))
        .json(&body)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the Evershell API: {e}"))?;
    crate::client::decode(response).await
}
