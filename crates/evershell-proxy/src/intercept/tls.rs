//! TLS listeners: read the ClientHello before anything else, refuse the
//! connection when no rule could admit its server name (an `access_denied`
//! alert after the row is recorded), otherwise present a leaf for that name
//! and serve the protocol the agent negotiated.

use std::sync::Arc;
use std::time::Duration;

use evershell_core::{Phase, PolicyType};
use rustls::server::Acceptor;
use tokio::net::TcpStream;
use tokio_rustls::{LazyConfigAcceptor, StartHandshake};

use super::{serve, Listener, Workspace};
use crate::audit::Outcome;
use crate::classify;

/// How long the agent has to send its ClientHello, and then to finish the
/// handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection was refused before any request.
struct Refused {
    reason: &'static str,
    /// The server name, normalised when it could be.
    name: Option<String>,
}

pub(super) async fn connection(ws: Arc<Workspace>, stream: TcpStream, listener: Listener) {
    let acceptor = LazyConfigAcceptor::new(Acceptor::default(), stream);
    let start = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor).await {
        Ok(Ok(start)) => start,
        Ok(Err(error)) => return tracing::debug!(%error, "client hello unreadable"),
        Err(_) => return tracing::debug!("client hello timed out"),
    };

    let sni = start.client_hello().server_name().map(str::to_owned);
    let host = match admit(&ws, sni.as_deref(), listener) {
        Ok(host) => host,
        Err(refused) => return refuse(&ws, start, listener, refused).await,
    };

    let config = match ws.proxy.leaves.server_config(&host) {
        Ok(config) => config,
        Err(error) => return tracing::error!(%error, host, "leaf certificate not issued"),
    };
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, start.into_stream(config)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => return tracing::debug!(%error, host, "tls handshake failed"),
        Err(_) => return tracing::debug!(host, "tls handshake timed out"),
    };

    if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
        serve::http2(ws, listener, host, tls).await;
    } else {
        serve::http1(ws, listener, Some(host), tls).await;
    }
}

/// The normalised server name when some rule could admit it on this port.
fn admit(ws: &Workspace, sni: Option<&str>, listener: Listener) -> Result<String, Refused> {
    let Some(sni) = sni else {
        return Err(Refused {
            reason: "sni_missing",
            name: None,
        });
    };
    let host = match evershell_caps::normalize_host(sni) {
        Ok((host, _)) => host,
        Err(_) => {
            return Err(Refused {
                reason: "host_not_allowed",
                name: Some(sni.to_owned()),
            })
        }
    };
    if !ws.binding.policy.admits_host(&host, listener.port, true) {
        return Err(Refused {
            reason: "host_not_allowed",
            name: Some(host),
        });
    }
    Ok(host)
}

/// Records the refusal, then ends the handshake with an alert. The alert is
/// sent whether or not the row could be written: refusing is already the
/// closed outcome.
async fn refuse(
    ws: &Workspace,
    start: StartHandshake<TcpStream>,
    listener: Listener,
    refused: Refused,
) {
    let mut outcome = Outcome::deny(PolicyType::Http, Phase::RequestHeaders, refused.reason);
    outcome.task_id = ws.binding.current_task();
    outcome.destination = refused
        .name
        .as_deref()
        .map(|name| classify::destination(name, listener.port, true));
    tracing::debug!(
        reason = refused.reason,
        destination = ?outcome.destination,
        "connection refused"
    );

    let _ = ws.proxy.audit.record(&ws.binding, &outcome).await;
    let _ = start.into_stream(ws.proxy.leaves.refusing()).await;
}
