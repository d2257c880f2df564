//! Operator configuration of the proxy: what it trusts upstream, how it
//! resolves names it must not look up in DNS, and how long a silent stream
//! may stay open.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use rustls::pki_types::CertificateDer;

/// How long a request or response body may go without a byte before the
/// proxy ends it and records `idle_timeout`: 10 minutes.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Configuration shared by every workspace the proxy serves.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Roots trusted for upstream TLS in addition to the webpki roots and
    /// the operating system's store.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Static resolution, keyed by `"host:port"` with the host as policy
    /// normalisation prints it (lower-case, IPv6 in brackets). Checked
    /// before DNS; the demo and the tests map `*.evershell.test` to
    /// loopback with it.
    pub resolve: HashMap<String, SocketAddr>,
    /// See [`DEFAULT_IDLE_TIMEOUT`]. A body that stays silent this long is
    /// ended with an error (never a silent truncation) and the audit row
    /// says `idle_timeout`.
    pub idle_timeout: Duration,
}

impl Default for ProxyConfig {
    fn default() -> ProxyConfig {
        ProxyConfig {
            extra_roots: Vec::new(),
            resolve: HashMap::new(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}
