//! Connecting to an upstream: resolve the policy host (the operator's static
//! map first, then DNS), open TCP, and for `https` verify the upstream's
//! certificate against the webpki roots, the OS store and the operator's
//! extra roots, offering ALPN `h2` and `http/1.1`.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::{CertificateError, ClientConfig};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::stream::UpstreamStream;
use crate::refusal::Denial;

/// How long resolving, connecting and the TLS handshake may take together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens upstream connections for the client pools. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Connector {
    inner: Arc<Inner>,
}

struct Inner {
    resolve: HashMap<String, SocketAddr>,
    tls: TlsConnector,
}

/// Why an upstream connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("upstream {host}: cannot be resolved")]
    Resolve {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("upstream {host}: resolves to no usable address")]
    NoAddress { host: String },
    #[error("upstream {host}: connection failed")]
    Connect {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("upstream {host}: not a valid tls server name")]
    InvalidName { host: String },
    #[error("upstream {host}: tls handshake failed")]
    Tls {
        host: String,
        #[source]
        source: io::Error,
    },
    #[error("upstream {host}: no connection within {CONNECT_TIMEOUT:?}")]
    Timeout { host: String },
    #[error("upstream uri {0} has no host")]
    NoHost(Uri),
}

impl Connector {
    /// `resolve` keys are `"host:port"`, lower-case.
    pub(crate) fn new(resolve: HashMap<String, SocketAddr>, tls: Arc<ClientConfig>) -> Connector {
        let resolve = resolve
            .into_iter()
            .map(|(key, addr)| (key.to_ascii_lowercase(), addr))
            .collect();
        Connector {
            inner: Arc::new(Inner {
                resolve,
                tls: TlsConnector::from(tls),
            }),
        }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<UpstreamStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| ConnectError::NoHost(uri.clone()))?;
            let host = host.to_owned();
            match tokio::time::timeout(CONNECT_TIMEOUT, inner.connect(&uri, &host)).await {
                Ok(result) => result.map(TokioIo::new),
                Err(_) => Err(ConnectError::Timeout { host }),
            }
        })
    }
}

impl Inner {
    async fn connect(&self, uri: &Uri, host: &str) -> Result<UpstreamStream, ConnectError> {
        let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let addrs = self.resolve(host, port).await?;
        let tcp = connect_any(host, &addrs).await?;
        // Small writes (headers, SSE-sized frames) must not wait for acks.
        let _ = tcp.set_nodelay(true);
        if !tls {
            return Ok(UpstreamStream::Plain(tcp));
        }

        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name =
            ServerName::try_from(bare.to_owned()).map_err(|_| ConnectError::InvalidName {
                host: host.to_owned(),
            })?;
        let stream = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|source| ConnectError::Tls {
                host: host.to_owned(),
                source,
            })?;
        Ok(UpstreamStream::Tls(Box::new(stream)))
    }

    /// The operator's static entry for `host:port`, an IP literal as is, or
    /// DNS. Addresses DNS returns on loopback, link-local (cloud metadata),
    /// unspecified or multicast ranges are dropped: a public name must not
    /// lead into the proxy host.
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ConnectError> {
        if let Some(addr) = self.resolve.get(&format!("{host}:{port}")) {
            return Ok(vec![*addr]);
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }

        let found = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|source| ConnectError::Resolve {
                host: host.to_owned(),
                source,
            })?;
        let usable: Vec<_> = found.filter(|addr| routable(addr.ip())).collect();
        if usable.is_empty() {
            return Err(ConnectError::NoAddress {
                host: host.to_owned(),
            });
        }
        Ok(usable)
    }
}

impl ConnectError {
    /// What the agent is told and the row says.
    pub(crate) fn denial(&self) -> Denial {
        let detail = match self {
            ConnectError::Tls { source, .. } => {
                return Denial::UpstreamTls {
                    detail: tls_failure(source),
                }
            }
            ConnectError::Resolve { .. } => "upstream_not_resolved",
            ConnectError::NoAddress { .. } => "upstream_no_usable_address",
            ConnectError::Connect { .. } => "upstream_connection_failed",
            ConnectError::InvalidName { .. } => "upstream_invalid_name",
            ConnectError::Timeout { .. } => "upstream_connect_timeout",
            ConnectError::NoHost(_) => "upstream_invalid_name",
        };
        Denial::UpstreamUnavailable { detail }
    }
}

async fn connect_any(host: &str, addrs: &[SocketAddr]) -> Result<TcpStream, ConnectError> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(error) => last = error,
        }
    }
    Err(ConnectError::Connect {
        host: host.to_owned(),
        source: last,
    })
}

fn routable(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.is_multicast())
        }
        IpAddr::V6(v6) => {
            let link_local = (v6.segments()[0] & 0xffc0) == 0xfe80;
            // fd00:ec2::254 is the metadata service on IPv6-only instances.
            let metadata = v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || link_local
                || metadata)
        }
    }
}

/// A short, stable name for a TLS failure, safe to show the agent.
fn tls_failure(error: &io::Error) -> &'static str {
    let Some(rustls_error) = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    else {
        return "handshake_failed";
    };
    match rustls_error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => "certificate_unknown_issuer",
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "certificate_expired"
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "certificate_name_mismatch"
            }
            _ => "certificate_invalid",
        },
        rustls::Error::AlertReceived(_) => "handshake_alert_received",
        rustls::Error::NoApplicationProtocol => "no_common_application_protocol",
        _ => "handshake_failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_link_local_and_metadata_addresses_are_not_routable() {
        for ip in [
            "127.0.0.1",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "0.0.0.0",
        ] {
            assert!(!routable(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "10.1.2.3",
            "2606:4700::1",
            "::ffff:93.184.216.34",
        ] {
            assert!(routable(ip.parse().expect("ip")), "{ip}");
        }
        assert!(!routable("::ffff:127.0.0.1".parse().expect("ip")));
    }
}
