//! Interception: the workspace's listeners. A *listener* is a socket opened
//! inside the workspace's network namespace; which one accepted a connection
//! is the connection's identity (workspace, logical port, TLS or not), and
//! nothing inside the sandbox can forge it.

mod plain;
mod serve;
mod tls;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use evershell_core::net::EgressListeners;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::binding::WorkspaceBinding;
use crate::budget::WorkspaceBudgets;
use crate::classify::framing::Verdicts;
use crate::dns;
use crate::proxy::Proxy;

/// Pause after a failed `accept` (descriptor exhaustion), so that the loop
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Keeps a workspace's egress served; dropping it ends every task the
/// workspace started.
#[derive(Debug)]
pub struct ServeHandle {
    cancel: CancellationToken,
}

/// A workspace being served: the proxy, its binding, its budgets, and the
/// scope that bounds its tasks.
pub(crate) struct Workspace {
    pub proxy: Arc<Proxy>,
    pub binding: Arc<WorkspaceBinding>,
    pub budgets: Arc<WorkspaceBudgets>,
    pub dns_audit: dns::AuditLimiter,
    /// Bodies being read ahead for a decision at once; bounds the memory a
    /// workspace can pin in the proxy by opening many connections and
    /// stalling mid-body.
    pub read_ahead: Arc<tokio::sync::Semaphore>,
    cancel: CancellationToken,
}

/// What the agent dialled: the logical port, and whether the proxy
/// terminates TLS there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listener {
    pub tls: bool,
    pub port: u16,
}

/// One accepted connection, as each of its requests sees it.
pub(crate) struct Conn {
    pub ws: Arc<Workspace>,
    pub listener: Listener,
    /// The normalised TLS server name; `None` on plain HTTP.
    pub sni: Option<String>,
    /// Framing verdicts of an HTTP/1 connection; `None` on HTTP/2.
    pub framing: Option<Verdicts>,
}

/// Spawns futures inside a workspace's scope; hyper uses it for HTTP/2
/// streams.
#[derive(Clone)]
pub(crate) struct ScopedExecutor {
    cancel: CancellationToken,
}

/// Starts serving `listeners` for the workspace of `binding`.
pub(crate) fn serve(
    proxy: Arc<Proxy>,
    binding: Arc<WorkspaceBinding>,
    budgets: Arc<WorkspaceBudgets>,
    listeners: EgressListeners,
) -> ServeHandle {
    let cancel = CancellationToken::new();
    let span = tracing::info_span!("workspace", workspace_id = %binding.workspace_id);
    let ws = Arc::new(Workspace {
        proxy,
        binding,
        budgets,
        dns_audit: dns::AuditLimiter::default(),
        read_ahead: Arc::new(tokio::sync::Semaphore::new(
            crate::authorize::READ_AHEAD_SLOTS,
        )),
        cancel: cancel.clone(),
    });

    for (listener, port) in listeners.https {
        let listener_info = Listener { tls: true, port };
        spawn_accept(&ws, listener, listener_info, &span);
    }
    for (listener, port) in listeners.http {
        let listener_info = Listener { tls: false, port };
        spawn_accept(&ws, listener, listener_info, &span);
    }
    for socket in listeners.dns_udp {
        match nonblocking_udp(socket) {
            Ok(socket) => ws.spawn(dns::serve_udp(ws.clone(), socket).instrument(span.clone())),
            Err(error) => tracing::error!(%error, "dns udp listener unusable"),
        }
    }
    for listener in listeners.dns_tcp {
        match nonblocking_tcp(listener) {
            Ok(listener) => ws.spawn(dns::serve_tcp(ws.clone(), listener).instrument(span.clone())),
            Err(error) => tracing::error!(%error, "dns tcp listener unusable"),
        }
    }
    ws.spawn(dns::flush_summaries(ws.clone()).instrument(span.clone()));
    tracing::info!(parent: &span, "workspace egress served");

    ServeHandle { cancel }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Workspace {
    /// Runs `future` until it ends or the workspace stops being served.
    pub(crate) fn spawn<F>(&self, future: F)
    where
        F: Future + Send + 'static,
        F::Output: Send,
    {
        tokio::spawn(self.cancel.clone().run_until_cancelled_owned(future));
    }

    pub(crate) fn executor(&self) -> ScopedExecutor {
        ScopedExecutor {
            cancel: self.cancel.clone(),
        }
    }
}

impl<F> hyper::rt::Executor<F> for ScopedExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(self.cancel.clone().run_until_cancelled_owned(future));
    }
}

fn spawn_accept(
    ws: &Arc<Workspace>,
    listener: std::net::TcpListener,
    info: Listener,
    span: &tracing::Span,
) {
    let listener = match nonblocking_tcp(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, port = info.port, "egress listener unusable");
            return;
        }
    };
    let span = tracing::debug_span!(parent: span, "listener", port = info.port, tls = info.tls);
    ws.spawn(accept_loop(ws.clone(), listener, info).instrument(span));
}

async fn accept_loop(ws: Arc<Workspace>, listener: TcpListener, info: Listener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = connection(ws.clone(), stream, info);
        ws.spawn(connection.in_current_span());
    }
}

async fn connection(ws: Arc<Workspace>, stream: TcpStream, info: Listener) {
    if info.tls {
        tls::connection(ws, stream, info).await;
    } else {
        plain::connection(ws, stream, info).await;
    }
}

fn nonblocking_tcp(listener: std::net::TcpListener) -> io::Result<TcpListener> {
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

fn nonblocking_udp(socket: std::net::UdpSocket) -> io::Result<tokio::net::UdpSocket> {
    socket.set_nonblocking(true)?;
    tokio::net::UdpSocket::from_std(socket)
}
