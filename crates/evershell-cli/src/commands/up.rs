//! `evershell up`: the control plane, the egress proxy and the local
//! sandbox runtime on this machine, with embedded defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use evershell_server::{ServerConfig, ServerFile};

use crate::client::{save_profile, Profile};

#[derive(clap::Args)]
pub struct UpArgs {
    /// Data directory (database, master key, workspaces).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address of the API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Optional TOML file: public URL, API, proxy and sign-in settings (see
    /// docs/configuration.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Database URL: `sqlite://<path>` or `postgres://user@host/db` (shared
    /// by the replicas of a fleet). Default: `evershell.db` in the data
    /// directory.
    #[arg(long)]
    database_url: Option<String>,
    /// Maximum API request body in bytes (default 10 MiB, at least 1024);
    /// overrides `[api] max_body_bytes` of the configuration file.
    #[arg(long)]
    max_body_bytes: Option<usize>,
}

pub fn default_data_dir() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(PathBuf::from(home).join(".local/share/evershell"))
}

pub async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    let exe = std::env::current_exe().context("locating the evershell binary")?;
    let mut config = ServerConfig::new(data_dir, args.listen, exe);
    config.database_url = args.database_url;
    if let Some(path) = &args.config {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: ServerFile =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        file.apply(&mut config)
            .with_context(|| format!("applying {}", path.display()))?;
    }
    if let Some(bytes) = args.max_body_bytes {
        config.set_body_limit(bytes).context("--max-body-bytes")?;
    }
    let server = evershell_server::start(config).await?;
    let url = format!("http://{}", server.addr);
    if let Some(api_key) = &server.bootstrap.api_key {
        let profile = Profile {
            url: url.clone(),
            slug: server.bootstrap.org_slug.clone(),
            api_key: api_key.clone(),
            token: None,
        };
        let path = save_profile("default", &profile)?;
        eprintln!(
            "first start: org {:?} created; its owner API key is in {}",
            profile.slug,
            path.display()
        );
    }
    eprintln!("evershell is up at {url} (Ctrl-C to stop)");
    tokio::signal::ctrl_c().await?;
    eprintln!("stopping…");
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServerConfig {
        let dir = PathBuf::from("/nonexistent");
        ServerConfig::new(dir.clone(), "127.0.0.1:0".parse().expect("address"), dir)
    }

    #[test]
    fn the_configuration_file_sets_the_body_limit() {
        let file: ServerFile = toml::from_str("[api]\nmax_body_bytes = 65536\n").expect("parses");
        let mut config = config();
        file.apply(&mut config).expect("applies");
        assert_eq!(config.body_limit_bytes, 65536);
    }

    #[test]
    fn unknown_api_keys_and_tiny_limits_are_refused() {
        let error = toml::from_str::<ServerFile>("[api]\nmax_body = 1\n").expect_err("unknown");
        assert!(error.to_string().contains("max_body_bytes"), "{error}");
        let file: ServerFile = toml::from_str("[api]\nmax_body_bytes = 10\n").expect("parses");
        let error = file.apply(&mut config()).expect_err("too small");
        assert!(error.to_string().contains("minimum of 1024"), "{error}");
    }
}
