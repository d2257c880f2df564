//! Test doubles and a loopback world: an in-memory audit sink and credential
//! source, TLS and plain upstreams that echo what they received (never the
//! value of a credential) or stream slowly, and a proxy serving one
//! workspace on 127.0.0.1 with logical ports equal to the real ones.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use evershell_core::audit::AuditError;
use evershell_core::net::EgressListeners;
use evershell_core::{AuditEvent, AuditSink};
use evershell_proxy::ca::CertificateAuthority;
use evershell_proxy::{
    CredentialError, CredentialSource, Proxy, ProxyConfig, ResolvedCredential, ServeHandle,
    WorkspaceBinding,
};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::client::TlsStream;

/// The API key the credential source hands out; must never reach the agent.
pub const CANARY: &str = "sk-canary-9f8e7d6c5b4a";

/// Rows kept in memory. `record` waits while the gate is closed and fails
/// while `failing` is set.
pub struct MemoryAudit {
    rows: Mutex<Vec<AuditEvent>>,
    failing: AtomicBool,
    gate: watch::Sender<bool>,
}

/// Credentials by name; a name that is absent is `NotFound`.
pub struct MemoryCredentials {
    entries: HashMap<String, (String, String)>,
}

/// What an upstream saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub authority: String,
    pub headers: http::HeaderMap,
    pub version: http::Version,
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

/// How a test wants its world.
pub struct Options {
    pub caps_yaml: String,
    pub credentials: Vec<(&'static str, &'static str, &'static str)>,
    pub idle_timeout: Duration,
}

/// One workspace served by a proxy, with everything around it.
pub struct World {
    pub audit: Arc<MemoryAudit>,
    pub upstream: Upstream,
    pub https_port: u16,
    pub http_port: u16,
    pub dns_udp: SocketAddr,
    pub dns_tcp: SocketAddr,
    pub ca_file: PathBuf,
    pub platform_ca: rustls::pki_types::CertificateDer<'static>,
    pub task: watch::Sender<Option<String>>,
    pub handle: Option<ServeHandle>,
}

/// A role whose caps name the real ports, with the one credential `test-key`.
pub fn default_options(https_port: u16, http_port: u16) -> Options {
    Options {
        caps_yaml: format!(
            "- name: echo
  type: http
  allow:
    - name: read
      domains: [\"allowed.test:{https_port}\", \"other.test:{https_port}\"]
      methods: [GET, POST]
      paths: [/v1/**, /events, /stall]
    - name: untrusted
      domains: [\"untrusted.test:{https_port}\"]
      methods: [GET]
    - name: plain
      domains: [\"plain.test:{http_port}\"]
      methods: [GET]
      allow_insecure: true
    - name: tls-only
      domains: [\"secure.test:{http_port}\"]
      methods: [GET]
  transforms:
    - name: key
      applies_to: [read]
      auth: test-key
- name: missing
  type: http
  allow:
    - domains: [\"nokey.test:{https_port}\"]
      methods: [GET]
  transforms:
    - name: broken
      auth: absent-key
"
        ),
        credentials: vec![("test-key", "anthropic", CANARY)],
        idle_timeout: Duration::from_secs(600),
    }
}

impl MemoryAudit {
    pub fn new() -> Arc<MemoryAudit> {
        Arc::new(MemoryAudit {
            rows: Mutex::new(Vec::new()),
            failing: AtomicBool::new(false),
            gate: watch::Sender::new(true),
        })
    }

    pub fn rows(&self) -> Vec<AuditEvent> {
        self.rows.lock().expect("rows lock").clone()
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub fn set_gate(&self, open: bool) {
        self.gate.send_replace(open);
    }

    /// Waits (up to 5 s) for a row matching `predicate`.
    pub async fn wait_for(&self, predicate: impl Fn(&AuditEvent) -> bool) -> AuditEvent {
        for _ in 0..500 {
            if let Some(row) = self.rows().into_iter().find(|r| predicate(r)) {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no matching audit row; rows: {:#?}", self.rows());
    }
}

impl AuditSink for MemoryAudit {
    fn record(
        &self,
        event: AuditEvent,
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + '_>> {
        Box::pin(async move {
            let mut gate = self.gate.subscribe();
            let _ = gate.wait_for(|open| *open).await;
            if self.failing.load(Ordering::SeqCst) {
                return Err(AuditError("store down".into()));
            }
            self.rows.lock().expect("rows lock").push(event);
            Ok(())
        })
    }
}

impl CredentialSource for MemoryCredentials {
    fn resolve<'a>(
        &'a self,
        _org_id: &'a str,
        name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<ResolvedCredential, CredentialError>> + Send + 'a>>
    {
        Box::pin(async move {
            let (provider, secret) = self.entries.get(name).ok_or(CredentialError::NotFound {
                name: name.to_owned(),
            })?;
            Ok(ResolvedCredential {
                kind: "api_key".into(),
                provider: provider.clone(),
                secret: zeroize::Zeroizing::new(secret.clone()),
            })
        })
    }
}

impl World {
    /// A world with [`default_options`].
    pub async fn start() -> World {
        World::start_with(default_options).await
    }

    pub async fn start_with(options: impl FnOnce(u16, u16) -> Options) -> World {
        let https = std::net::TcpListener::bind("127.0.0.1:0").expect("bind https");
        let http = std::net::TcpListener::bind("127.0.0.1:0").expect("bind http");
        let dns_udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind dns udp");
        let dns_tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind dns tcp");
        let https_port = https.local_addr().expect("addr").port();
        let http_port = http.local_addr().expect("addr").port();
        let options = options(https_port, http_port);

        let upstream_ca = CertificateAuthority::generate("upstream test ca").expect("ca");
        let upstream = Upstream::start(&upstream_ca).await;
        let platform = CertificateAuthority::generate("platform test ca").expect("ca");
        let platform_ca = platform.cert_der().expect("der");
        let ca_file = write_ca_file(platform.cert_pem());

        let resolve = HashMap::from([
            (format!("allowed.test:{https_port}"), upstream.tls_addr),
            (format!("other.test:{https_port}"), upstream.tls_addr),
            (format!("nokey.test:{https_port}"), upstream.tls_addr),
            (
                format!("untrusted.test:{https_port}"),
                upstream.untrusted_addr,
            ),
            (format!("plain.test:{http_port}"), upstream.plain_addr),
        ]);
        let config = ProxyConfig {
            extra_roots: vec![upstream_ca.cert_der().expect("der")],
            resolve,
            idle_timeout: options.idle_timeout,
        };
        let audit = MemoryAudit::new();
        let credentials = MemoryCredentials {
            entries: options
                .credentials
                .iter()
                .map(|(name, provider, secret)| {
                    (name.to_string(), (provider.to_string(), secret.to_string()))
                })
                .collect(),
        };
        let proxy = Proxy::new(config, platform, audit.clone(), Arc::new(credentials));

        let caps = evershell_caps::parse(&options.caps_yaml).expect("test caps parse");
        let (task, task_rx) = watch::channel(Some("task_01".to_owned()));
        let binding = Arc::new(WorkspaceBinding {
            workspace_id: "ws_01".into(),
            org_id: "org_01".into(),
            user_id: "usr_01".into(),
            role_name: "tester".into(),
            provider_name: "anthropic-main".into(),
            policy: Arc::new(evershell_caps::Policy::compile(Vec::new(), caps)),
            task_id: task_rx,
        });
        let listeners = EgressListeners {
            https: vec![(https, https_port)],
            http: vec![(http, http_port)],
            dns_udp: vec![dns_udp.try_clone().expect("clone")],
            dns_tcp: vec![dns_tcp.try_clone().expect("clone")],
        };
        let handle = proxy.serve(binding, listeners);

        World {
            audit,
            upstream,
            https_port,
            http_port,
            dns_udp: dns_udp.local_addr().expect("addr"),
            dns_tcp: dns_tcp.local_addr().expect("addr"),
            ca_file,
            platform_ca,
            task,
            handle: Some(handle),
        }
    }

    /// `https://host:port` of the TLS listener.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.https_port)
    }

    /// Runs curl trusting only the platform CA, with `host` resolved to the
    /// proxy. Returns (exit code, stdout, stderr).
    pub async fn curl(&self, host: &str, args: &[&str]) -> (i32, String, String) {
        let resolve = format!("{host}:{}:127.0.0.1", self.https_port);
        let output = tokio::process::Command::new("curl")
            .args(["-sS", "-v", "--max-time", "10", "--noproxy", "*"])
            .arg("--cacert")
            .arg(&self.ca_file)
            .args(["--resolve", &resolve])
            .args(args)
            .env_clear()
            .output()
            .await
            .expect("curl runs");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    /// A TLS connection to the proxy presenting `sni` (none when `None`),
    /// offering `alpn`.
    pub async fn connect(
        &self,
        sni: Option<&str>,
        alpn: &[&[u8]],
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.platform_ca.clone()).expect("root");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config.enable_sni = sni.is_some();
        let name = ServerName::try_from(sni.unwrap_or("allowed.test").to_owned()).expect("name");
        let tcp = TcpStream::connect(("127.0.0.1", self.https_port)).await?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
    }

    /// Sends `request` over HTTP/1.1 on a new TLS connection with `sni`.
    pub async fn send_h1(&self, sni: &str, request: Request<Full<Bytes>>) -> Response<Incoming> {
        let tls = self.connect(Some(sni), &[b"http/1.1"]).await.expect("tls");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        sender.send_request(request).await.expect("response")
    }

    /// Sends `request` over HTTP/2 on a new TLS connection with `sni`.
    pub async fn send_h2(&self, sni: &str, request: Request<Full<Bytes>>) -> Response<Incoming> {
        let tls = self.connect(Some(sni), &[b"h2"]).await.expect("tls");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .expect("handshake");
        tokio::spawn(connection);
        sender.send_request(request).await.expect("response")
    }

    /// Writes `bytes` on a new HTTP/1.1 TLS connection and returns what the
    /// proxy answered until it closed (or 3 s passed).
    pub async fn raw_h1(&self, bytes: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tls = self
            .connect(Some("allowed.test"), &[b"http/1.1"])
            .await
            .expect("tls");
        tls.write_all(bytes).await.expect("write");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), tls.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// Ends the workspace's serving.
    pub fn stop(&mut self) {
        self.handle.take();
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

/// The body of `response`, whole.
pub async fn body_text(response: Response<Incoming>) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A GET of `path` with `Host: host`.
pub fn get(host: &str, path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", host)
        .body(Full::new(Bytes::new()))
        .expect("request")
}

impl Upstream {
    async fn start(ca: &CertificateAuthority) -> Upstream {
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
    let record = Seen {
        method: request.method().to_string(),
        target: request
            .uri()
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        authority: authority.clone(),
        headers: request.headers().clone(),
        version: request.version(),
    };
    seen.lock().expect("seen lock").push(record.clone());

    match request.uri().path() {
        "/events" => Ok(events()),
        "/stall" => Ok(stall()),
        _ => {
            let body = request
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().len())
                .unwrap_or(0);
            // Header names only: an echo of values would hand the agent the
            // credential, which is the upstream's business, not the proxy's.
            let names: Vec<&str> = record.headers.keys().map(|k| k.as_str()).collect();
            let echo = serde_json::json!({
                "method": record.method,
                "target": record.target,
                "authority": authority,
                "header_names": names,
                "body_bytes": body,
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

fn write_ca_file(pem: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let path =
        std::env::temp_dir().join(format!("evershell-proxy-ca-{}-{n}.pem", std::process::id()));
    std::fs::write(&path, pem).expect("write ca file");
    path
}
