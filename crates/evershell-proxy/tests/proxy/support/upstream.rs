//! Loopback upstreams: TLS (trusted and untrusted) and plain HTTP servers
//! that record what they saw and echo it back (header names only, never a
//! credential's value), stream server-sent events slowly, answer like a
//! model provider (usage in SSE or JSON), answer late, or stall.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use evershell_proxy::ca::CertificateAuthority;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// What an upstream saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub authority: String,
    pub headers: http::HeaderMap,
    pub version: http::Version,
    pub body: Bytes,
}

/// Loopback upstreams sharing one record of what they saw.
#[derive(Clone)]
pub struct Upstream {
    pub tls_addr: SocketAddr,
    pub plain_addr: SocketAddr,
    /// Served with a certificate from a CA the proxy does not trust.
    pub untrusted_addr: SocketAddr,
    pub accepts: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    pub async fn start(ca: &CertificateAuthority) -> Upstream {
        let names = ["allowed.test", "other.test", "nokey.test", "untrusted.test"];
        let trusted = upstream_tls(ca, &names);
        let stranger = CertificateAuthority::generate("stranger ca").expect("ca");
        let untrusted = upstream_tls(&stranger, &names);

        let accepts = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let tls_addr = serve(Some(trusted), accepts.clone(), seen.clone()).await;
        let untrusted_addr = serve(Some(untrusted), accepts.clone(), seen.clone()).await;
        let plain_addr = serve(None, accepts.clone(), seen.clone()).await;
        Upstream {
            tls_addr,
            plain_addr,
            untrusted_addr,
            accepts,
            seen,
        }
    }

    pub fn accepts(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen lock").clone()
    }

    pub fn last_seen(&self) -> Seen {
        self.seen
            .lock()
            .expect("seen lock")
            .last()
            .cloned()
            .expect("a request reached the upstream")
    }
}

fn upstream_tls(ca: &CertificateAuthority, names: &[&str]) -> Arc<rustls::ServerConfig> {
    let issued = ca.issue(names).expect("issue");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(issued.chain, issued.key)
        .expect("cert");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

async fn serve(
    tls: Option<Arc<rustls::ServerConfig>>,
    accepts: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind upstream");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            accepts.fetch_add(1, Ordering::SeqCst);
            let (tls, seen) = (tls.clone(), seen.clone());
            tokio::spawn(async move {
                let service = service_fn(move |request| respond(request, seen.clone()));
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                match tls {
                    Some(config) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(config);
                        let Ok(stream) = acceptor.accept(stream).await else {
                            return;
                        };
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                }
            });
        }
    });
    addr
}

type UpstreamBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn respond(
    request: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
) -> Result<Response<UpstreamBody>, Infallible> {
    let authority = request
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| {
            request
                .headers()
                .get("host")
                .and_then(|h| h.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let path = request.uri().path().to_owned();
    let mut record = Seen {
        method: request.method().to_string(),
        target: request
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        authority: authority.clone(),
        headers: request.headers().clone(),
        version: request.version(),
        body: Bytes::new(),
    };
    if path != "/stall" && path != "/events" {
        record.body = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
    }
    seen.lock().expect("seen lock").push(record.clone());

    match path.as_str() {
        "/events" => Ok(events()),
        "/stall" => Ok(stall()),
        "/v1/sse-usage" => Ok(anthropic_stream()),
        "/v1/chat/completions" => Ok(json_response(serde_json::json!({
            "id": "chatcmpl-1",
            "choices": [{"message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46},
        }))),
        _ => {
            if path == "/v1/slow" {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            // Header names only: an echo of values would hand the agent the
            // credential, which is the upstream's business, not the proxy's.
            let names: Vec<&str> = record.headers.keys().map(|k| k.as_str()).collect();
            let json_body: Option<serde_json::Value> = serde_json::from_slice(&record.body).ok();
            let echo = serde_json::json!({
                "method": record.method,
                "target": record.target,
                "authority": authority,
                "header_names": names,
                "body_bytes": record.body.len(),
                "body": json_body,
            });
            let mut response = Response::new(Full::new(Bytes::from(echo.to_string())).boxed());
            response
                .headers_mut()
                .insert("content-type", "application/json".parse().expect("value"));
            response
                .headers_mut()
                .insert("x-upstream", "echo".parse().expect("value"));
            Ok(response)
        }
    }
}

/// Three server-sent events, 300 ms apart, then the end of the stream.
fn events() -> Response<UpstreamBody> {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    tokio::spawn(async move {
        for n in 0..3 {
            let frame = Frame::data(Bytes::from(format!("event: tick\ndata: {n}\n\n")));
            if tx.send(Ok(frame)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut response = Response::new(StreamBody::new(receiver_stream(rx)).boxed());
    response
        .headers_mut()
        .insert("content-type", "text/event-stream".parse().expect("value"));
    response
}

/// An Anthropic-style message stream, its events split across frames in
/// awkward places: 25 input tokens, 15 output tokens.
fn anthropic_stream() -> Response<UpstreamBody> {
    let events = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",",
        "\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hi\"}}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    tokio::spawn(async move {
        for piece in events.as_bytes().chunks(37) {
            let frame = Frame::data(Bytes::copy_from_slice(piece));
            if tx.send(Ok(frame)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let mut response = Response::new(StreamBody::new(receiver_stream(rx)).boxed());
    response
        .headers_mut()
        .insert("content-type", "text/event-stream".parse().expect("value"));
    response
}

fn json_response(value: serde_json::Value) -> Response<UpstreamBody> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())).boxed());
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().expect("value"));
    response
}

/// Headers, one byte of body, then silence.
fn stall() -> Response<UpstreamBody> {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
    tokio::spawn(async move {
        let _ = tx.send(Ok(Frame::data(Bytes::from_static(b":")))).await;
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(tx);
    });
    let mut response = Response::new(StreamBody::new(receiver_stream(rx)).boxed());
    *response.status_mut() = StatusCode::OK;
    response
}

/// An mpsc receiver as a `Stream`.
fn receiver_stream<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
