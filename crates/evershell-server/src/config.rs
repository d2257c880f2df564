//! Control-plane configuration, parsed once into typed values.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::identity::oidc::{OidcFile, OidcSettings};

/// Everything [`crate::start`] needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Holds the master key, workspace files and, by default, the database
    /// (`0700`).
    pub data_dir: PathBuf,
    /// The database: `sqlite://<path>` or `postgres://…` (a fleet's shared
    /// PostgreSQL). `None` (the default) is the SQLite file
    /// `evershell.db` in `data_dir`.
    pub database_url: Option<String>,
    pub listen: SocketAddr,
    /// The URL clients use, e.g. `http://127.0.0.1:8080`.
    pub public_url: String,
    /// The multi-call `evershell` binary mounted into sandboxes.
    pub exe: PathBuf,
    /// Maximum request body (default 10 MiB).
    pub body_limit_bytes: usize,
    pub proxy: ProxySettings,
    /// Sign-in through an OpenID Connect provider, when configured.
    pub oidc: Option<OidcSettings>,
}

/// Egress proxy settings an operator may give.
#[derive(Debug, Clone, Default)]
pub struct ProxySettings {
    /// Static resolution `host:port → address`, consulted before DNS. The
    /// demo and the tests map their `*.evershell.test` hosts to loopback
    /// servers with it.
    pub resolve: HashMap<String, SocketAddr>,
    /// Extra PEM roots trusted for upstream TLS, besides the public roots.
    pub extra_roots_pem: Vec<String>,
}

impl ServerConfig {
    /// Defaults for `data_dir` listening on `listen`.
    pub fn new(data_dir: PathBuf, listen: SocketAddr, exe: PathBuf) -> ServerConfig {
        ServerConfig {
            data_dir,
            database_url: None,
            public_url: format!("http://{listen}"),
            listen,
            exe,
            body_limit_bytes: 10 * 1024 * 1024,
            proxy: ProxySettings::default(),
            oidc: None,
        }
    }
}

/// The optional TOML file of `evershell up --config`. Unknown keys are
/// errors.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    #[serde(default)]
    pub proxy: ProxyFile,
    #[serde(default)]
    pub auth: AuthFile,
}

/// `[auth]`: how people sign in besides email and password.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthFile {
    /// `[auth.oidc]`, see [`OidcFile`].
    #[serde(default)]
    pub oidc: Option<OidcFile>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyFile {
    /// `"host:port" = "ip:port"`: static upstream resolution.
    #[serde(default)]
    pub resolve: HashMap<String, SocketAddr>,
    /// Files of extra PEM roots trusted for upstream TLS.
    #[serde(default)]
    pub extra_roots: Vec<PathBuf>,
}

impl ServerFile {
    /// Merges the file into `config`, reading the root files and the
    /// client secret it names (from a file or the process environment).
    pub fn apply(self, config: &mut ServerConfig) -> anyhow::Result<()> {
        config.proxy.resolve.extend(self.proxy.resolve);
        for path in self.proxy.extra_roots {
            config
                .proxy
                .extra_roots_pem
                .push(std::fs::read_to_string(path)?);
        }
        if let Some(oidc) = self.auth.oidc {
            config.oidc = Some(oidc.resolve(|name| std::env::var(name).ok())?);
        }
        Ok(())
    }
}
