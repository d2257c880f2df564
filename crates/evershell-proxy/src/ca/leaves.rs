//! Leaf certificates: what the proxy presents to the agent for a server name
//! it admits, one per SNI, signed by the platform CA and kept in an LRU
//! cache so that a busy workspace does not pay a key generation per
//! connection.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use super::{CaError, CertificateAuthority};

/// How many server names keep their leaf.
const CAPACITY: usize = 1024;

/// Leaves are valid 30 days (see [`CertificateAuthority::issue`]); one is
/// replaced well before that so that no cached leaf ever expires in use.
const REISSUE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// ALPN protocols offered to the agent, preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Per-SNI TLS server configurations backed by the platform CA.
pub(crate) struct LeafCache {
    ca: CertificateAuthority,
    provider: Arc<CryptoProvider>,
    entries: Mutex<LruCache<String, Leaf>>,
    refusing: Arc<ServerConfig>,
}

struct Leaf {
    config: Arc<ServerConfig>,
    issued: Instant,
}

/// Resolves no certificate, so that rustls ends the handshake with an
/// `access_denied` alert (RFC 8446 §6.2).
#[derive(Debug)]
struct NoCertificate;

impl LeafCache {
    pub(crate) fn new(ca: CertificateAuthority, provider: Arc<CryptoProvider>) -> LeafCache {
        let refusing = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(NoCertificate));
        LeafCache {
            ca,
            provider,
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(CAPACITY).expect("capacity is not zero"),
            )),
            refusing: Arc::new(refusing),
        }
    }

    /// The server configuration presenting a leaf for `host` (a normalised
    /// server name), offering ALPN `h2` and `http/1.1`. Mints the leaf on a
    /// cache miss or when the cached one is old.
    pub(crate) fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, CaError> {
        if let Some(config) = self.cached(host) {
            return Ok(config);
        }

        // Minting happens outside the lock; two concurrent misses for one
        // name both mint and the later insert wins, which is harmless.
        let config = self.mint(host)?;
        let leaf = Leaf {
            config: config.clone(),
            issued: Instant::now(),
        };
        self.lock().put(host.to_owned(), leaf);
        Ok(config)
    }

    /// A configuration that refuses every handshake with an alert.
    pub(crate) fn refusing(&self) -> Arc<ServerConfig> {
        self.refusing.clone()
    }

    fn cached(&self, host: &str) -> Option<Arc<ServerConfig>> {
        let mut entries = self.lock();
        let leaf = entries.get(host)?;
        if leaf.issued.elapsed() > REISSUE_AFTER {
            entries.pop(host);
            return None;
        }
        Some(leaf.config.clone())
    }

    fn mint(&self, host: &str) -> Result<Arc<ServerConfig>, CaError> {
        let issued = self.ca.issue(&[host])?;
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(issued.chain, issued.key)?;
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        tracing::debug!(host, "leaf certificate minted");
        Ok(Arc::new(config))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Leaf>> {
        // A panic while holding the lock cannot leave the cache inconsistent
        // (every operation is a single LRU call), so a poisoned lock is
        // still usable.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ResolvesServerCert for NoCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        None
    }
}
