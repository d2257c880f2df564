//! Control-plane configuration, parsed once into typed values.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::identity::oidc::{OidcFile, OidcSettings};

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
    /// The URL clients use, e.g. `http://127.0.0.1:8080` (the default,
    /// from `listen`) or `https://evershell.acme.example`. Session cookies
    /// are checked against its origin and the OpenID Connect redirect URI
    /// lives under it.
    pub public_url: String,
    /// The multi-call `evershell` binary mounted into sandboxes.
    pub exe: PathBuf,
    /// Maximum request body, JSON or multipart (default 10 MiB): a larger
    /// body is answered `413 payload_too_large`.
    pub body_limit_bytes: usize,
    /// With `base_domain = "evershell.example.com"`, a session request to
    /// `acme.evershell.example.com` acts in org `acme` (unless it names
    /// another with `Evershell-Org`).
    pub base_domain: Option<String>,
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
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            base_domain: None,
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
    /// Org resolution by host name: `<slug>.<base_domain>`.
    #[serde(default)]
    pub base_domain: Option<String>,
    /// The URL browsers and clients reach the server at, when it is not
    /// `http://<listen>` (behind a TLS terminator, for instance).
    #[serde(default)]
    pub public_url: Option<String>,
    #[serde(default)]
    pub api: ApiFile,
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
    /// Merges the file into `config`, reading the root files and the
    /// client secret it names (from a file or the process environment).
    pub fn apply(self, config: &mut ServerConfig) -> anyhow::Result<()> {
        if let Some(url) = self.public_url {
            config.public_url = public_url(&url)?;
        }
        if let Some(domain) = self.base_domain {
            config.base_domain = Some(domain.trim_matches('.').to_ascii_lowercase());
        }
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
        if let Some(oidc) = self.auth.oidc {
            config.oidc = Some(oidc.resolve(|name| std::env::var(name).ok())?);
        }
        Ok(())
    }
}

/// `url` as a public URL: `http` or `https`, a host, no path, query or
/// fragment (routes live at the root); returned without a trailing slash.
fn public_url(url: &str) -> anyhow::Result<String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("public_url {url:?}: {e}"))?;
    anyhow::ensure!(
        matches!(parsed.scheme(), "http" | "https")
            && parsed.host().is_some()
            && parsed.path() == "/"
            && parsed.query().is_none()
            && parsed.fragment().is_none(),
        "public_url {url:?}: expected http(s)://host[:port] without a path"
    );
    Ok(url.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_are_origins() {
        assert_eq!(
            public_url("https://evershell.acme.example/").unwrap(),
            "https://evershell.acme.example"
        );
        assert_eq!(
            public_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        for bad in [
            "evershell.acme.example",
            "ftp://evershell.acme.example",
            "https://evershell.acme.example/console",
            "https://evershell.acme.example/?a=1",
        ] {
            assert!(public_url(bad).is_err(), "{bad}");
        }
    }
}
