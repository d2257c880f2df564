//! TLS for loopback upstreams: a test CA and server configs signed by it.

use std::sync::Arc;

use evershell_proxy::ca::{CaError, CertificateAuthority};

/// A server config presenting a certificate for `names`, issued by `ca`,
/// offering ALPN `h2` and `http/1.1`.
pub fn server_config(
    ca: &CertificateAuthority,
    names: &[&str],
) -> Result<Arc<rustls::ServerConfig>, CaError> {
    let issued = ca.issue(names)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_single_cert(issued.chain, issued.key)
        .expect("a freshly issued certificate matches its key");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
