//! Control-plane configuration, parsed once into typed values.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Default maximum request body: 10 MiB.
pub const DEFAULT_BODY_LIMIT_BYTES: usize = 10 * 1024 * 1024;
/// The smallest body limit accepted, so that every JSON request of the API
/// (a sign-in, a secret of a few bytes) still fits.
pub const MIN_BODY_LIMIT_BYTES: usize = 1024;

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
    /// Maximum request body, JSON or multipart (default 10 MiB): a larger
    /// body is answered `413 payload_too_large`.
    pub body_limit_bytes: usize,
    pub proxy: ProxySettings,
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
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            proxy: ProxySettings::default(),
        }
    }
}

/// The optional TOML file of `evershell up --config`. Unknown keys are
/// errors.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerFile {
    #[serde(default)]
    pub api: ApiFile,
    #[serde(default)]
    pub proxy: ProxyFile,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiFile {
    /// Maximum request body in bytes (default 10 MiB, at least 1024).
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
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

impl ServerConfig {
    /// Sets the request body limit, refusing one below
    /// [`MIN_BODY_LIMIT_BYTES`].
    pub fn set_body_limit(&mut self, bytes: usize) -> std::io::Result<()> {
        if bytes < MIN_BODY_LIMIT_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("max_body_bytes: {bytes} is below the minimum of {MIN_BODY_LIMIT_BYTES}"),
            ));
        }
        self.body_limit_bytes = bytes;
        Ok(())
    }
}

impl ServerFile {
    /// Merges the file into `config`, reading the root files it names.
    pub fn apply(self, config: &mut ServerConfig) -> std::io::Result<()> {
        if let Some(bytes) = self.api.max_body_bytes {
            config.set_body_limit(bytes)?;
        }
        config.proxy.resolve.extend(self.proxy.resolve);
        for path in self.proxy.extra_roots {
            config
                .proxy
                .extra_roots_pem
                .push(std::fs::read_to_string(path)?);
        }
        Ok(())
    }
}
