//! Serving HTTP on an accepted connection: HTTP/2 when the agent negotiated
//! it, otherwise HTTP/1.1 behind the framing guard. Every request goes to the
//! pipeline; a request hyper refuses itself (unparseable head) still gets
//! its row.

use std::sync::Arc;
use std::time::Duration;

use evershell_core::{Phase, PolicyType};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Conn, Listener, Workspace};
use crate::audit::Outcome;
use crate::classify::{self, framing};
use crate::pipeline;

/// How long an HTTP/1 connection may take to deliver a request head,
/// idle keep-alive time included (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// hyper's own limit on an HTTP/1 head, above the guard's 64 KiB so that
/// the guard's refusal (audited, JSON) is what the agent normally sees.
const H1_MAX_HEAD_BYTES: usize = 4 * framing::MAX_HEAD_BYTES;

/// The header list size advertised over HTTP/2; the pipeline refuses
/// sections over 64 KiB, so this only bounds memory.
const H2_MAX_HEADER_LIST_BYTES: u32 = 4 * framing::MAX_HEAD_BYTES as u32;

pub(super) async fn http1<IO>(ws: Arc<Workspace>, listener: Listener, sni: Option<String>, io: IO)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let verdicts = framing::Verdicts::default();
    let conn = Arc::new(Conn {
        ws: ws.clone(),
        listener,
        sni,
        framing: Some(verdicts.clone()),
    });
    let io = TokioIo::new(framing::FramingGuard::new(io, verdicts));
    let service_conn = conn.clone();
    let service = service_fn(move |request| pipeline::handle(service_conn.clone(), request));

    let result = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_header_size(H1_MAX_HEAD_BYTES)
        .serve_connection(io, service)
        .await;
    if let Err(error) = result {
        tracing::debug!(%error, "http/1 connection ended with an error");
        if error.is_parse() || error.is_parse_too_large() {
            record_unparsed(&conn).await;
        }
    }
}

pub(super) async fn http2<IO>(ws: Arc<Workspace>, listener: Listener, sni: String, io: IO)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = Arc::new(Conn {
        ws: ws.clone(),
        listener,
        sni: Some(sni),
        framing: None,
    });
    let service = service_fn(move |request| pipeline::handle(conn.clone(), request));

    let result = http2::Builder::new(ws.executor())
        .timer(TokioTimer::new())
        .max_header_list_size(H2_MAX_HEADER_LIST_BYTES)
        .serve_connection(TokioIo::new(io), service)
        .await;
    if let Err(error) = result {
        tracing::debug!(%error, "http/2 connection ended with an error");
    }
}

/// The row of a request hyper answered itself (400/431) because its head
/// could not be parsed; nothing about it is known beyond the connection.
async fn record_unparsed(conn: &Conn) {
    let ws = &conn.ws;
    let mut outcome = Outcome::deny(PolicyType::Http, Phase::RequestHeaders, "bad_request");
    outcome.task_id = ws.binding.current_task();
    outcome.destination = conn
        .sni
        .as_deref()
        .map(|host| classify::destination(host, conn.listener.port, conn.listener.tls));
    let _ = ws.proxy.audit.record(&ws.binding, &outcome).await;
}
