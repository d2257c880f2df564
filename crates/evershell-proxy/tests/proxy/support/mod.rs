//! Test doubles and a loopback world: an in-memory audit sink and credential
//! source, TLS and plain upstreams that echo what they received (never the
//! value of a credential) or stream slowly, and a proxy serving one
//! workspace on 127.0.0.1 with logical ports equal to the real ones.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use evershell_core::net::EgressListeners;
use evershell_proxy::ca::CertificateAuthority;
use evershell_proxy::{Proxy, ProxyConfig, ServeHandle, WorkspaceBinding};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::client::TlsStream;

mod doubles;
mod upstream;

pub use doubles::{
    MemoryAudit, MemoryBudgets, MemoryCredentials, MemorySecrets, TestCredential, CANARY,
};
pub use upstream::Upstream;

/// How a test wants its world.
pub struct Options {
    pub caps_yaml: String,
    pub credentials: Vec<TestCredential>,
    pub secrets: Vec<(&'static str, &'static str)>,
    pub budget_store: Option<Arc<MemoryBudgets>>,
    pub idle_timeout: Duration,
}

/// One workspace served by a proxy, with everything around it.
pub struct World {
    pub proxy: Arc<Proxy>,
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
        credentials: vec![TestCredential::api_key("test-key", "anthropic", CANARY)],
        secrets: Vec::new(),
        budget_store: None,
        idle_timeout: Duration::from_secs(600),
    }
}

/// A world whose role has `caps_yaml` (with `{https}` replaced by the TLS
/// port) and otherwise [`default_options`].
pub fn with_caps(caps_yaml: &'static str) -> impl FnOnce(u16, u16) -> Options {
    move |https, http| {
        let mut options = default_options(https, http);
        options.caps_yaml = caps_yaml.replace("{https}", &https.to_string());
        options
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
        let credentials = MemoryCredentials::new(&options.credentials);
        let mut builder = Proxy::builder(config, platform, audit.clone(), Arc::new(credentials))
            .secrets(Arc::new(MemorySecrets::new(&options.secrets)));
        if let Some(store) = options.budget_store.clone() {
            builder = builder.budget_store(store);
        }
        let proxy = builder.build();

        let caps = evershell_caps::parse(&options.caps_yaml).expect("test caps parse");
        let (task, task_rx) = watch::channel(Some("task_01".to_owned()));
        let binding = Arc::new(WorkspaceBinding {
            workspace_id: "ws_01".into(),
            org_id: "org_01".into(),
            user_id: "usr_01".into(),
            role_name: "tester".into(),
            provider_name: "anthropic-main".into(),
            environment: "development".into(),
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
            proxy,
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

    /// A sender of requests multiplexed on one new HTTP/2 connection.
    pub async fn h2_sender(
        &self,
        sni: &str,
    ) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
        let tls = self.connect(Some(sni), &[b"h2"]).await.expect("tls");
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .expect("handshake");
        tokio::spawn(connection);
        sender
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

/// A POST of `body` as JSON to `path` with `Host: host`.
pub fn post_json(host: &str, path: &str, body: &serde_json::Value) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", host)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request")
}

/// A GET of `path` with `Host: host`.
pub fn get(host: &str, path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", host)
        .body(Full::new(Bytes::new()))
        .expect("request")
}

fn write_ca_file(pem: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let path =
        std::env::temp_dir().join(format!("evershell-proxy-ca-{}-{n}.pem", std::process::id()));
    std::fs::write(&path, pem).expect("write ca file");
    path
}
