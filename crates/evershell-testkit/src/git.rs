//! Git smart-HTTP server: a stand-in for an internet git host, serving bare
//! repositories under one directory over HTTPS. Each request runs the real
//! `git http-backend` CGI, so clone, fetch and push behave exactly as
//! against a production host (protocol v0 and v2, gzip request bodies).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

/// Largest CGI header block accepted from `git http-backend`.
const MAX_CGI_HEADER_BYTES: usize = 64 * 1024;

type ResponseBody = BoxBody<Bytes, io::Error>;

/// A running git server. Dropping it stops accepting connections.
#[derive(Debug)]
pub struct GitServer {
    addr: SocketAddr,
    accept_loop: JoinHandle<()>,
}

/// What every request handler needs.
struct Ctx {
    repos_root: PathBuf,
    backend: PathBuf,
}

/// Response body streaming the CGI's stdout after its header block. Owns
/// the child, which is killed if the client goes away first.
struct CgiBody {
    stdout: BufReader<ChildStdout>,
    _child: Child,
}

impl GitServer {
    /// Binds `addr` and serves the bare repositories under `repos_root`
    /// over TLS with `tls` (HTTP/1.1, or h2 when ALPN selects it). A
    /// repository `<repos_root>/<name>` is at `https://<host>/<name>`.
    /// Fails if the port cannot be bound or `git http-backend` is missing.
    pub async fn start(
        repos_root: PathBuf,
        tls: Arc<rustls::ServerConfig>,
        addr: SocketAddr,
    ) -> io::Result<GitServer> {
        let backend = find_http_backend().await?;
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let ctx = Arc::new(Ctx {
            repos_root,
            backend,
        });
        let accept_loop = tokio::spawn(accept_loop(listener, TlsAcceptor::from(tls), ctx));
        Ok(GitServer { addr, accept_loop })
    }

    /// The bound address (with the actual port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Same as the free function [`init_repo`].
    pub fn init_repo(
        repos_root: impl AsRef<Path>,
        name: &str,
        files: &[(&str, &str)],
    ) -> io::Result<()> {
        init_repo(repos_root, name, files)
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// Creates the bare repository `<repos_root>/<name>` holding one commit on
/// `main` with `files` (relative path, contents), and enables pushes over
/// HTTP (`http.receivepack`). Blocking: runs `git` a few times. Host and
/// user git configuration are ignored, so the result is the same anywhere.
pub fn init_repo(
    repos_root: impl AsRef<Path>,
    name: &str,
    files: &[(&str, &str)],
) -> io::Result<()> {
    let bare = repos_root.as_ref().join(name);
    let work = repos_root.as_ref().join(format!(".{name}.init"));
    let result = populate(&bare, &work, files);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn populate(bare: &Path, work: &Path, files: &[(&str, &str)]) -> io::Result<()> {
    git(None, &["init", "-q", "--bare", "-b", "main"], Some(bare))?;
    git(Some(bare), &["config", "http.receivepack", "true"], None)?;

    git(None, &["init", "-q", "-b", "main"], Some(work))?;
    for (path, contents) in files {
        let file = work.join(path);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(file, contents)?;
    }
    git(Some(work), &["add", "-A"], None)?;
    git(
        Some(work),
        &["commit", "-q", "--allow-empty", "-m", "initial commit"],
        None,
    )?;
    let target = bare
        .to_str()
        .ok_or_else(|| io::Error::other("repo path is not utf-8"))?;
    git(Some(work), &["push", "-q", target, "main"], None)
}

/// Runs `git -C <dir> <args> [<path>]` with a fixed identity and without
/// system or global configuration.
fn git(dir: Option<&Path>, args: &[&str], path: Option<&Path>) -> io::Result<()> {
    let mut cmd = std::process::Command::new("git");
    if let Some(dir) = dir {
        cmd.arg("-C").arg(dir);
    }
    cmd.args(args);
    if let Some(path) = path {
        cmd.arg(path);
    }
    let out = cmd
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Evershell Test")
        .env("GIT_AUTHOR_EMAIL", "test@evershell.invalid")
        .env("GIT_COMMITTER_NAME", "Evershell Test")
        .env("GIT_COMMITTER_EMAIL", "test@evershell.invalid")
        .stdin(Stdio::null())
        .output()?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(io::Error::other(format!(
        "git {}: {}",
        args.join(" "),
        stderr.trim()
    )))
}

/// `<git --exec-path>/git-http-backend`.
async fn find_http_backend() -> io::Result<PathBuf> {
    let out = Command::new("git").arg("--exec-path").output().await?;
    if !out.status.success() {
        return Err(io::Error::other("git --exec-path failed"));
    }
    let exec_path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let backend = Path::new(&exec_path).join("git-http-backend");
    if backend.is_file() {
        Ok(backend)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            "git-http-backend not found",
        ))
    }
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, ctx: Arc<Ctx>) {
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(error = %e, "git server accept failed");
                continue;
            }
        };
        let (acceptor, ctx) = (acceptor.clone(), ctx.clone());
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(e) => {
                    debug!(%remote, error = %e, "git server tls handshake failed");
                    return;
                }
            };
            let service = service_fn(move |req| handle(ctx.clone(), remote, req));
            let served = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
            if let Err(e) = served {
                debug!(%remote, error = %e, "git server connection ended with an error");
            }
        });
    }
}

async fn handle(
    ctx: Arc<Ctx>,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    let path = req.uri().path().to_owned();
    if path.split('/').any(|segment| segment == "..") {
        return Ok(plain(StatusCode::BAD_REQUEST, "bad path"));
    }
    match run_cgi(&ctx, remote, req).await {
        Ok(response) => Ok(response),
        Err(e) => {
            warn!(%path, error = %e, "git http-backend failed");
            Ok(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "git backend failed",
            ))
        }
    }
}

/// Starts the CGI, feeds it the request body, and answers with its output.
async fn run_cgi(
    ctx: &Ctx,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> io::Result<Response<ResponseBody>> {
    let (parts, body) = req.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());

    let mut cmd = Command::new(&ctx.backend);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("GIT_PROJECT_ROOT", &ctx.repos_root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", parts.uri.path())
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("REMOTE_ADDR", remote.ip().to_string());
    let cgi_headers = [
        ("CONTENT_TYPE", header("content-type")),
        ("CONTENT_LENGTH", header("content-length")),
        ("HTTP_CONTENT_ENCODING", header("content-encoding")),
        ("GIT_PROTOCOL", header("git-protocol")),
    ];
    for (name, value) in cgi_headers {
        if let Some(value) = value {
            cmd.env(name, value);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;

    let stdin = child.stdin.take().expect("stdin is piped");
    tokio::spawn(feed_body(body, stdin));
    let stderr = child.stderr.take().expect("stderr is piped");
    tokio::spawn(log_stderr(stderr));

    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let (status, headers) = read_cgi_headers(&mut stdout).await?;
    let mut response = Response::new(
        CgiBody {
            stdout,
            _child: child,
        }
        .boxed(),
    );
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// Streams the request body into the CGI's stdin, then closes it. A CGI
/// that stops reading early ends the copy; its answer says why.
async fn feed_body(mut body: Incoming, mut stdin: ChildStdin) {
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return };
        if let Ok(data) = frame.into_data() {
            if stdin.write_all(&data).await.is_err() {
                return;
            }
        }
    }
}

async fn log_stderr(mut stderr: tokio::process::ChildStderr) {
    let mut text = String::new();
    if stderr.read_to_string(&mut text).await.is_ok() && !text.trim().is_empty() {
        debug!(stderr = %text.trim(), "git http-backend diagnostics");
    }
}

/// Parses the CGI header block (RFC 3875 section 6.2): `Status:` gives the
/// response status (200 without it), every other line is a header.
async fn read_cgi_headers(
    stdout: &mut BufReader<ChildStdout>,
) -> io::Result<(StatusCode, HeaderMap)> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    let mut consumed = 0;
    loop {
        let mut line = String::new();
        let n = stdout.read_line(&mut line).await?;
        consumed += n;
        if n == 0 || consumed > MAX_CGI_HEADER_BYTES {
            return Err(invalid("cgi header block truncated or too long"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok((status, headers));
        }

        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("cgi header line"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or_default();
            status = StatusCode::from_bytes(code.as_bytes()).map_err(|_| invalid("cgi status"))?;
        } else {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid("header"))?;
            let value = HeaderValue::from_str(value).map_err(|_| invalid("header value"))?;
            headers.append(name, value);
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<ResponseBody> {
    let body = Full::new(Bytes::from_static(text.as_bytes())).map_err(|e| match e {});
    let mut response = Response::new(body.boxed());
    *response.status_mut() = status;
    response
}

impl Body for CgiBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let mut chunk = [0u8; 16 * 1024];
        let mut buf = ReadBuf::new(&mut chunk);
        ready!(Pin::new(&mut self.stdout).poll_read(cx, &mut buf))?;
        if buf.filled().is_empty() {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(buf.filled())))))
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::process::Output;

    use evershell_proxy::ca::CertificateAuthority;

    use super::*;

    const HOST: &str = "git.evershell.test";

    /// Runs `git <args>` in `dir`, isolated from host configuration. The
    /// environment's `GIT_SSL_CAINFO` would override `http.sslCAInfo`.
    async fn git_in(dir: &Path, args: &[&str]) -> Output {
        let out = Command::new("git")
            .current_dir(dir)
            .args(args)
            .env_remove("GIT_SSL_CAINFO")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .await
            .expect("run git");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "git {args:?} failed: {stderr}");
        out
    }

    #[tokio::test]
    async fn clones_and_accepts_a_pushed_branch_over_https() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let repos = tmp.path().join("repos");
        let files = [("README.md", "hello\n"), ("src/lib.rs", "pub fn f() {}\n")];
        init_repo(&repos, "demo.git", &files).expect("init repo");

        let ca = CertificateAuthority::generate("Evershell Git Test CA").expect("ca");
        let ca_file = tmp.path().join("ca.pem");
        std::fs::write(&ca_file, ca.cert_pem()).expect("write ca");
        let tls = crate::tls::server_config(&ca, &[HOST]).expect("tls config");
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let server = GitServer::start(repos.clone(), tls, loopback)
            .await
            .expect("start");

        let port = server.addr().port();
        let ca_opt = format!("http.sslCAInfo={}", ca_file.display());
        let resolve = format!("http.curloptResolve={HOST}:{port}:127.0.0.1");
        let url = format!("https://{HOST}:{port}/demo.git");
        let opts = ["-c", &ca_opt, "-c", &resolve];
        git_in(
            tmp.path(),
            &[&opts[..], &["clone", "-q", &url, "clone"]].concat(),
        )
        .await;
        let clone = tmp.path().join("clone");
        let readme = std::fs::read_to_string(clone.join("README.md")).expect("readme");
        assert_eq!(readme, "hello\n");

        std::fs::write(clone.join("NEW.md"), "pushed\n").expect("write");
        git_in(&clone, &["checkout", "-q", "-b", "feature"]).await;
        git_in(&clone, &["add", "NEW.md"]).await;
        let who = ["-c", "user.name=T", "-c", "user.email=t@evershell.invalid"];
        git_in(
            &clone,
            &[&who[..], &["commit", "-q", "-m", "add NEW.md"]].concat(),
        )
        .await;
        git_in(
            &clone,
            &[&opts[..], &["push", "-q", "origin", "feature"]].concat(),
        )
        .await;

        let local = git_in(&clone, &["rev-parse", "HEAD"]).await.stdout;
        let bare = repos.join("demo.git");
        let remote = git_in(&bare, &["rev-parse", "refs/heads/feature"])
            .await
            .stdout;
        assert_eq!(remote, local, "the pushed branch points at the new commit");
    }
}
