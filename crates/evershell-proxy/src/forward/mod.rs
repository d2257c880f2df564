//! Forwarding: sending an allowed request to the *policy host* (never the
//! address the agent dialled) at the listener's logical port, over h2 or
//! HTTP/1.1 as the upstream negotiates, and handing back its response
//! unbuffered.

mod connector;
mod headers;
mod pool;
mod stream;

use std::error::Error as _;
use std::sync::Arc;

use http::{request, Request, Response, Uri, Version};
use hyper::body::Incoming;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};

use crate::body::ProxyBody;
use crate::config::ProxyConfig;
use crate::refusal::Denial;

pub(crate) use headers::strip_response;
pub(crate) use pool::PoolKey;

use connector::{ConnectError, Connector};
use pool::Pools;

/// Where an allowed request goes.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub key: PoolKey,
    /// Path and query exactly as the policy decided them.
    pub path_and_query: String,
}

/// The proxy's way to upstreams: verified TLS and pooled connections.
pub(crate) struct Upstreams {
    pools: Pools,
}

impl Upstreams {
    pub(crate) fn new(config: &ProxyConfig, provider: Arc<CryptoProvider>) -> Upstreams {
        let mut tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots(config))
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let connector = Connector::new(config.resolve.clone(), Arc::new(tls));
        Upstreams {
            pools: Pools::new(connector),
        }
    }

    /// Sends the request made of `parts` and `body` to `target` and returns
    /// the upstream's response head with its body still streaming.
    pub(crate) async fn send(
        &self,
        target: &Target,
        parts: request::Parts,
        body: ProxyBody,
    ) -> Result<Response<Incoming>, Denial> {
        let mut request = Request::from_parts(parts, body);
        *request.uri_mut() = uri(target)?;
        // The client picks the version the upstream negotiated; HTTP/1.1 is
        // what it expects to be told.
        *request.version_mut() = Version::HTTP_11;
        headers::strip_request(request.headers_mut());

        let client = self.pools.client(&target.key);
        client.request(request).await.map_err(|error| {
            let denial = denial(&error);
            tracing::debug!(error = %error_chain(&error), ?denial, "upstream request failed");
            denial
        })
    }
}

/// `scheme://host[:port]` of the policy host, then the decided target.
fn uri(target: &Target) -> Result<Uri, Denial> {
    let key = &target.key;
    let (scheme, default) = if key.tls {
        ("https", 443)
    } else {
        ("http", 80)
    };
    let authority = if key.port == default {
        key.host.clone()
    } else {
        format!("{}:{}", key.host, key.port)
    };
    let text = format!("{scheme}://{authority}{}", target.path_and_query);
    text.parse().map_err(|_| Denial::Request {
        reason: "invalid_path",
    })
}

fn denial(error: &hyper_util::client::legacy::Error) -> Denial {
    let mut source = error.source();
    while let Some(current) = source {
        if let Some(connect) = current.downcast_ref::<ConnectError>() {
            return connect.denial();
        }
        source = current.source();
    }
    let detail = if error.is_connect() {
        "upstream_connection_failed"
    } else {
        "upstream_closed_before_response"
    };
    Denial::UpstreamUnavailable { detail }
}

/// The error and its sources on one line, for the log.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(current) = source {
        text.push_str(": ");
        text.push_str(&current.to_string());
        source = current.source();
    }
    text
}

/// webpki roots, the OS store, then the operator's extra roots.
fn roots(config: &ProxyConfig) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());

    let native = rustls_native_certs::load_native_certs();
    if !native.errors.is_empty() {
        tracing::warn!(
            errors = native.errors.len(),
            "some OS trust roots could not be loaded"
        );
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "OS trust roots loaded");

    for root in &config.extra_roots {
        if let Err(error) = roots.add(root.clone()) {
            tracing::warn!(%error, "operator trust root rejected");
        }
    }
    roots
}
