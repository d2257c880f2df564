//! The control plane's client of the agent service: JSON over HTTP/1.1 on
//! the Unix socket the runtime exposes outside the sandbox.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

/// Largest agent response the control plane reads.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AgentCallError {
    #[error("agent socket {0}: {1}")]
    Connect(String, #[source] std::io::Error),
    #[error("agent http: {0}")]
    Http(#[from] hyper::Error),
    #[error("agent response: {0}")]
    Body(String),
    #[error("agent call timed out")]
    Timeout,
    #[error("agent socket {path} is served by uid {found}, not the sandbox's {expected}")]
    WrongPeer {
        path: String,
        found: u32,
        expected: u32,
    },
}

/// One request to the agent; returns its status and body. The socket must
/// be served by the sandbox's uid `peer_uid`: the agent controls the
/// directory holding it and could otherwise point the control plane at
/// another socket of the host.
pub async fn call(
    socket: &Path,
    peer_uid: u32,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), AgentCallError> {
    tokio::time::timeout(timeout, call_inner(socket, peer_uid, method, path, body))
        .await
        .map_err(|_| AgentCallError::Timeout)?
}

async fn call_inner(
    socket: &Path,
    peer_uid: u32,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<(StatusCode, Bytes), AgentCallError> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| AgentCallError::Connect(socket.display().to_string(), e))?;
    let found = stream
        .peer_cred()
        .map_err(|e| AgentCallError::Connect(socket.display().to_string(), e))?
        .uid();
    if found != peer_uid {
        return Err(AgentCallError::WrongPeer {
            path: socket.display().to_string(),
            found,
            expected: peer_uid,
        });
    }
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "agent");
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("agent requests are well-formed");
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_RESPONSE)
        .collect()
        .await
        .map_err(|e| AgentCallError::Body(e.to_string()))?
        .to_bytes();
    Ok((status, body))
}
