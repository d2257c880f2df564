//! The OIDC test harness: the provider (tests/oidc/provider.mjs under
//! node), Evershell configured for it, and a browser played by a reqwest
//! client with a cookie jar that follows redirects one hop at a time.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evershell_server::{RunningServer, ServerConfig, ServerFile};
use reqwest::cookie::Jar;
use reqwest::header::{LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode, Url};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

pub const CLIENT_ID: &str = "evershell";
pub const CLIENT_SECRET: &str = "evershell-test-client-secret";
pub const PASSWORD: &str = "correct horse battery staple";
/// Provider accounts: login, password, subject, email, email_verified.
pub const ACCOUNTS: &[(&str, &str, &str, Option<bool>)] = &[
    ("olive", "sub-olive", "Olive@Acme.test", Some(true)),
    (
        "olive-twin",
        "sub-olive-twin",
        "olive@acme.test",
        Some(true),
    ),
    (
        "mallory",
        "sub-mallory",
        "mallory@elsewhere.test",
        Some(true),
    ),
    ("uma", "sub-uma", "uma@acme.test", Some(false)),
];

/// The node process of the provider; killed (by pid) when dropped, so a
/// failing test does not leave it behind.
pub struct Provider {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    pub issuer: String,
    stderr: PathBuf,
}

impl Drop for Provider {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.stderr).unwrap_or_default();
            eprintln!("provider stderr:\n{log}");
        }
        let _ = self.child.start_kill();
    }
}

/// The provider and Evershell configured for it, in one temporary
/// directory.
pub struct World {
    pub server: RunningServer,
    pub provider: Provider,
    pub url: String,
    _dir: tempfile::TempDir,
}

fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// Installs the provider's locked packages once per test binary; a fresh
/// machine needs the npm registry for it.
fn install_provider_packages() {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _once = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = provider_dir();
    if dir.join("node_modules/oidc-provider/package.json").exists() {
        return;
    }
    let out = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run npm (Node.js and npm are required): {e}"));
    assert!(
        out.status.success(),
        "`npm ci` in {} failed; the OIDC tests need the npm registry once:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Provider {
    pub async fn start(log_dir: &Path) -> Provider {
        install_provider_packages();
        let stderr = log_dir.join("provider.log");
        let mut child = tokio::process::Command::new("node")
            .arg("provider.mjs")
            .current_dir(provider_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("provider log"))
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut provider = Provider {
            child,
            stdout,
            issuer: String::new(),
            stderr,
        };
        let line = provider.line().await;
        provider.issuer = line
            .strip_prefix("issuer ")
            .unwrap_or_else(|| panic!("provider said {line:?}"))
            .to_string();
        provider
    }

    async fn line(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(30), self.stdout.next_line())
            .await
            .expect("the provider answers within 30 s")
            .expect("provider stdout readable")
            .expect("the provider is running")
    }

    /// Registers Evershell (and a second client) and the accounts.
    async fn register(&mut self, callback: &str) {
        let client = |id: &str, secret: &str| {
            json!({
                "client_id": id, "client_secret": secret, "redirect_uris": [callback],
                "grant_types": ["authorization_code"], "response_types": ["code"],
                "token_endpoint_auth_method": "client_secret_basic",
            })
        };
        let accounts: Vec<Value> = ACCOUNTS
            .iter()
            .map(|(login, sub, email, verified)| {
                json!({ "login": login, "password": PASSWORD, "sub": sub, "email": email,
                        "email_verified": verified })
            })
            .collect();
        let setup = json!({
            "clients": [client(CLIENT_ID, CLIENT_SECRET), client("other-app", "other-secret")],
            "accounts": accounts,
        });
        let stdin = self.child.stdin.as_mut().expect("piped");
        stdin
            .write_all(format!("{setup}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
        assert_eq!(self.line().await, "ready");
    }
}

impl World {
    /// Starts the provider, then Evershell with `[auth.oidc]` from a server
    /// file (the secret in a file), then registers Evershell's callback.
    pub async fn start() -> World {
        let dir = tempfile::tempdir().unwrap();
        let mut provider = Provider::start(dir.path()).await;

        let secret = dir.path().join("oidc-secret");
        std::fs::write(&secret, format!("{CLIENT_SECRET}\n")).unwrap();
        let text = format!(
            "[auth.oidc]\nissuer = {:?}\nclient_id = {CLIENT_ID:?}\n\
             client_secret_file = {:?}\ndisplay_name = \"Acme SSO\"\n",
            provider.issuer,
            secret.display().to_string()
        );
        let file: ServerFile = toml::from_str(&text).expect("server file parses");
        let listen = "127.0.0.1:0".parse().unwrap();
        let mut config = ServerConfig::new(dir.path().join("data"), listen, crate::common::exe());
        file.apply(&mut config).expect("server file applies");
        let server = evershell_server::start(config)
            .await
            .expect("server starts");
        let url = format!("http://{}", server.addr);
        provider
            .register(&format!("{url}/auth/oidc/callback"))
            .await;

        // Users who sign in through the provider need no password here.
        let store = &server.ctx.store;
        store.ensure_org("other", "Other").await.unwrap();
        let default = store.org_id_by_slug("default").await.unwrap().unwrap();
        for (email, role) in [("olive@acme.test", "owner"), ("uma@acme.test", "member")] {
            store.ensure_member(&default, email, role).await.unwrap();
        }
        World {
            server,
            provider,
            url,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub async fn shutdown(self) {
        let World {
            server, provider, ..
        } = self;
        drop(provider);
        server.shutdown().await;
    }
}

/// A browser: a cookie jar, and redirects followed one hop at a time.
pub struct Browser {
    pub http: reqwest::Client,
    jar: Arc<Jar>,
}

impl Browser {
    pub fn new() -> Browser {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser { http, jar }
    }

    /// Starts a sign-in; returns Evershell's answer (a redirect).
    pub async fn start(&self, world: &World, query: &str) -> Response {
        let url = world.url(&format!("/auth/oidc/start{query}"));
        self.http.get(url).send().await.expect("server reachable")
    }

    /// Plays the person at the provider from the authorization request at
    /// `url` until the provider redirects to Evershell's callback, which is
    /// returned (not visited). `consent` chooses Allow or Decline.
    pub async fn at_provider(
        &self,
        world: &World,
        url: &str,
        login: &str,
        consent: bool,
    ) -> String {
        let callback = world.url("/auth/oidc/callback");
        let mut request = self.http.get(url);
        for _ in 0..20 {
            let response = request.send().await.expect("provider reachable");
            let here = response.url().clone();
            let status = response.status();
            if status.is_redirection() {
                let next = here.join(location(&response)).unwrap().to_string();
                if next.starts_with(&callback) {
                    return next;
                }
                request = self.http.get(next);
                continue;
            }
            let page = response.text().await.unwrap();
            assert_eq!(status, StatusCode::OK, "provider page {here}: {page}");
            let actions: Vec<&str> = page
                .split("action=\"")
                .skip(1)
                .filter_map(|rest| rest.split('"').next())
                .collect();
            let login_form = actions.iter().find(|a| a.ends_with("/login"));
            let choice = if consent { "/confirm" } else { "/abort" };
            request = match login_form {
                Some(action) => self
                    .http
                    .post(here.join(action).unwrap())
                    .form(&[("login", login), ("password", PASSWORD)]),
                None => {
                    let action = actions
                        .iter()
                        .find(|a| a.ends_with(choice))
                        .unwrap_or_else(|| panic!("no {choice} form in {page}"));
                    self.http.post(here.join(action).unwrap()).form(&[("", "")])
                }
            };
        }
        panic!("the provider never redirected back to {callback}");
    }

    /// A whole sign-in as `login`; returns the callback's answer.
    pub async fn sign_in(&self, world: &World, query: &str, login: &str) -> Response {
        let start = self.start(world, query).await;
        assert_eq!(start.status(), StatusCode::SEE_OTHER);
        let authorize = location(&start).to_string();
        let callback = self.at_provider(world, &authorize, login, true).await;
        self.http.get(callback).send().await.unwrap()
    }

    pub async fn me(&self, world: &World) -> (StatusCode, Value) {
        let response = self
            .http
            .get(world.url("/v1/me/session"))
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    pub fn cookie(&self, world: &World) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = Url::parse(&world.url("/")).unwrap();
        let header = self.jar.cookies(&url)?;
        Some(header.to_str().unwrap().to_string())
    }
}

pub fn location(response: &Response) -> &str {
    response
        .headers()
        .get(LOCATION)
        .expect("a redirect has a Location")
        .to_str()
        .unwrap()
}

pub fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

pub async fn error_of(response: Response) -> (StatusCode, String, Value) {
    let status = response.status();
    let body: Value = response.json().await.expect("an error envelope");
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (status, code, body)
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
