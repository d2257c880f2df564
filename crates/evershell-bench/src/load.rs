//! A load run: `concurrency` clients send one route's request back to back,
//! each over its own HTTP/1.1 keep-alive connection, through a warm-up and
//! then a measured window.
//!
//! Each client waits for the whole response before sending the next request
//! (a closed loop, like `wrk`): the server sees at most `concurrency`
//! requests in flight, and the rate measured is what it sustains at that
//! depth. A request counts when its response ends inside the window; what
//! ends during the warm-up or after the window is discarded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::runtime::Handle;
use tokio::time::Instant;

/// Responses larger than this are a failure of the route, not load.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// How long a client pauses after a transport failure before reconnecting,
/// so that a dead server yields a count of errors rather than a busy loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// Error samples keep this many characters of the response body.
const SAMPLE_CHARS: usize = 240;

/// One route under load: the request every client sends, and the status
/// that counts as success (anything else is an error).
pub struct Target {
    pub addr: SocketAddr,
    pub method: Method,
    pub path: String,
    /// The `Authorization` header value, if the route needs one.
    pub authorization: Option<HeaderValue>,
    pub body: RequestBody,
    pub expect: StatusCode,
}

/// What a request carries.
pub enum RequestBody {
    Empty,
    /// A new agent role per request, named `<prefix><n>` with `n` from a
    /// counter shared by every client and phase, so names never repeat.
    NewRole {
        prefix: String,
        provider_id: String,
        capabilities: String,
        next: AtomicU64,
    },
}

/// How long and how hard to load a route.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    pub concurrency: usize,
    pub warmup: Duration,
    pub measure: Duration,
}

/// What the clients saw inside the measured window.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Every request that ended inside the window, answered or not.
    pub latencies: Vec<Duration>,
    /// Requests that did not end with the expected status, by kind
    /// (`status 409`, `transport`).
    pub errors: BTreeMap<String, ErrorTally>,
}

/// How often one kind of error occurred, with the first one seen.
#[derive(Debug, Clone)]
pub struct ErrorTally {
    pub count: u64,
    pub sample: String,
}

impl Target {
    fn request(&self) -> Request<Full<Bytes>> {
        let body = match &self.body {
            RequestBody::Empty => Bytes::new(),
            RequestBody::NewRole {
                prefix,
                provider_id,
                capabilities,
                next,
            } => {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let role = json!({
                    "name": format!("{prefix}{n}"),
                    "provider_id": provider_id,
                    "capabilities": capabilities,
                });
                Bytes::from(role.to_string())
            }
        };
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header(HOST, self.addr.to_string());
        if let Some(authorization) = &self.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        if !body.is_empty() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        builder
            .body(Full::new(body))
            .expect("a path that parsed once and fixed headers make a valid request")
    }
}

impl Outcome {
    /// Requests that ended with an error, of every kind.
    pub fn error_count(&self) -> u64 {
        self.errors.values().map(|e| e.count).sum()
    }

    fn record_error(&mut self, kind: String, sample: impl FnOnce() -> String) {
        self.errors
            .entry(kind)
            .and_modify(|e| e.count += 1)
            .or_insert_with(|| ErrorTally {
                count: 1,
                sample: sample().chars().take(SAMPLE_CHARS).collect(),
            });
    }

    fn merge(&mut self, other: Outcome) {
        self.latencies.extend(other.latencies);
        for (kind, tally) in other.errors {
            self.errors
                .entry(kind)
                .and_modify(|e| e.count += tally.count)
                .or_insert(tally);
        }
    }
}

/// Loads `target` with `phases.concurrency` clients spawned on `clients`
/// (a runtime of their own, or the server's), and gathers what they saw.
pub async fn run(target: Arc<Target>, phases: Phases, clients: &Handle) -> anyhow::Result<Outcome> {
    let start = Instant::now() + phases.warmup;
    let end = start + phases.measure;
    let handles: Vec<_> = (0..phases.concurrency)
        .map(|_| clients.spawn(client(target.clone(), start, end)))
        .collect();

    let mut outcome = Outcome::default();
    for handle in handles {
        outcome.merge(handle.await?);
    }
    Ok(outcome)
}

/// One client: sends requests back to back until `end`, and keeps what
/// ended in `[start, end]`.
async fn client(target: Arc<Target>, start: Instant, end: Instant) -> Outcome {
    let mut outcome = Outcome::default();
    let mut connection = None;
    loop {
        let sent = Instant::now();
        if sent >= end {
            return outcome;
        }
        let result = exchange(&target, &mut connection).await;
        let ended = Instant::now();

        // A failed connection is dropped; the next request opens another.
        let failed = result.is_err();
        if failed {
            connection = None;
        }
        if (start..=end).contains(&ended) {
            outcome.latencies.push(ended - sent);
            match result {
                Ok((status, _)) if status == target.expect => {}
                Ok((status, body)) => outcome
                    .record_error(format!("status {}", status.as_u16()), || {
                        String::from_utf8_lossy(&body).into_owned()
                    }),
                Err(e) => outcome.record_error("transport".to_string(), || format!("{e:#}")),
            }
        }
        if failed {
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }
}

/// Sends one request on `connection` (opening it first if there is none)
/// and reads the whole response.
async fn exchange(
    target: &Target,
    connection: &mut Option<SendRequest<Full<Bytes>>>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let sender = match connection {
        Some(sender) => sender,
        None => connection.insert(connect(target.addr).await?),
    };
    sender.ready().await?;
    let response = sender.send_request(target.request()).await?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!(e))?
        .to_bytes();
    Ok((status, body))
}

async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    // Small requests and answers: do not let Nagle hold them back.
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection task runs beside its client, on the same runtime; it
    // ends when the client drops `sender` or the server closes.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests;
