//! People sign in through a real OpenID Provider (the `oidc-provider` npm
//! package, run by node on loopback from tests/oidc/): authorization code
//! with PKCE, the provider's own login and consent interactions, and the
//! console cookie that results. A browser is played by a reqwest client
//! with a cookie jar that follows redirects one at a time.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evershell_server::{RunningServer, ServerConfig, ServerFile};
use reqwest::cookie::Jar;
use reqwest::header::{LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{Response, StatusCode, Url};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

const CLIENT_ID: &str = "evershell";
const CLIENT_SECRET: &str = "evershell-test-client-secret";
const PASSWORD: &str = "correct horse battery staple";
/// Provider accounts: login, password, subject, email, email_verified.
const ACCOUNTS: &[(&str, &str, &str, Option<bool>)] = &[
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
struct Provider {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    issuer: String,
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
struct World {
    server: RunningServer,
    provider: Provider,
    url: String,
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
    async fn start(log_dir: &Path) -> Provider {
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
    async fn start() -> World {
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
        let mut config = ServerConfig::new(dir.path().join("data"), listen, common::exe());
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

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    async fn shutdown(self) {
        let World {
            server, provider, ..
        } = self;
        drop(provider);
        server.shutdown().await;
    }
}

/// A browser: a cookie jar, and redirects followed one hop at a time.
struct Browser {
    http: reqwest::Client,
    jar: Arc<Jar>,
}

impl Browser {
    fn new() -> Browser {
        let jar = Arc::new(Jar::default());
        let http = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser { http, jar }
    }

    /// Starts a sign-in; returns Evershell's answer (a redirect).
    async fn start(&self, world: &World, query: &str) -> Response {
        let url = world.url(&format!("/auth/oidc/start{query}"));
        self.http.get(url).send().await.expect("server reachable")
    }

    /// Plays the person at the provider from the authorization request at
    /// `url` until the provider redirects to Evershell's callback, which is
    /// returned (not visited). `consent` chooses Allow or Decline.
    async fn at_provider(&self, world: &World, url: &str, login: &str, consent: bool) -> String {
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
    async fn sign_in(&self, world: &World, query: &str, login: &str) -> Response {
        let start = self.start(world, query).await;
        assert_eq!(start.status(), StatusCode::SEE_OTHER);
        let authorize = location(&start).to_string();
        let callback = self.at_provider(world, &authorize, login, true).await;
        self.http.get(callback).send().await.unwrap()
    }

    async fn me(&self, world: &World) -> (StatusCode, Value) {
        let response = self
            .http
            .get(world.url("/v1/me/session"))
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    fn cookie(&self, world: &World) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = Url::parse(&world.url("/")).unwrap();
        let header = self.jar.cookies(&url)?;
        Some(header.to_str().unwrap().to_string())
    }
}

fn location(response: &Response) -> &str {
    response
        .headers()
        .get(LOCATION)
        .expect("a redirect has a Location")
        .to_str()
        .unwrap()
}

fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

async fn error_of(response: Response) -> (StatusCode, String, Value) {
    let status = response.status();
    let body: Value = response.json().await.expect("an error envelope");
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (status, code, body)
}

fn query_param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_signs_in_through_the_provider_and_the_console_cookie_authenticates() {
    let world = World::start().await;
    let browser = Browser::new();

    // Start: a 303 to the provider's authorization endpoint with PKCE, and
    // the flow bound to this browser.
    let start = browser
        .start(&world, "?org=default&return_to=/workspaces%3Ftab%3Dall")
        .await;
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let authorize = location(&start).to_string();
    assert!(
        authorize.starts_with(&format!("{}/auth?", world.provider.issuer)),
        "{authorize}"
    );
    for (name, value) in [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("code_challenge_method", "S256"),
        ("redirect_uri", &world.url("/auth/oidc/callback")),
        ("scope", "openid email profile"),
    ] {
        assert_eq!(query_param(&authorize, name).as_deref(), Some(value));
    }
    let binding = set_cookies(&start).join("\n");
    assert!(binding.contains("evershell_oidc_state="), "{binding}");

    // The provider's login and consent pages, then the callback.
    let callback = browser.at_provider(&world, &authorize, "olive", true).await;
    let done = browser.http.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), "/workspaces?tab=all");
    let set = set_cookies(&done);
    let session = set
        .iter()
        .find(|c| c.starts_with("evershell_session=eyJ"))
        .unwrap_or_else(|| panic!("no session cookie in {set:?}"));
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(
            session.split("; ").any(|a| a == attribute),
            "{attribute} missing: {session}"
        );
    }

    // The cookie alone authenticates: the user (email lowercased) in the
    // org asked for.
    let (status, me) = browser.me(&world).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], "olive@acme.test");
    assert_eq!(me["org_slug"], "default");
    assert_eq!(me["role"], "owner");
    let config: Value = browser
        .http
        .get(world.url("/v1/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["oidc"]["display_name"], "Acme SSO", "{config}");
    assert_eq!(
        config["defaults"]["oidc_redirect_uri"],
        world.url("/auth/oidc/callback")
    );

    // Changes through the cookie need this server's Origin; a Bearer
    // caller needs none.
    let keys = world.url("/v1/api-keys");
    let body = json!({ "label": "from-console", "permission_set": "read_only" });
    let post = || browser.http.post(&keys).json(&body);
    let (status, code, _) = error_of(post().send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "permission_denied")
    );
    let cross = post()
        .header(ORIGIN, "http://evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let ours = post().header(ORIGIN, &world.url).send().await.unwrap();
    assert_eq!(ours.status(), StatusCode::CREATED);
    let bootstrap_key = world.server.bootstrap.api_key.clone().unwrap();
    let bearer = reqwest::Client::new()
        .get(&keys)
        .bearer_auth(&bootstrap_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        bearer.status(),
        StatusCode::FORBIDDEN,
        "keys never manage keys"
    );
    let bearer = reqwest::Client::new()
        .post(world.url("/v1/agent-roles"))
        .bearer_auth(&bootstrap_key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::BAD_REQUEST, "no Origin needed");

    // Sign-out removes the cookie; the browser is signed out.
    let out = browser
        .http
        .post(world.url("/auth/sign-out"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert!(set_cookies(&out)
        .iter()
        .any(|c| c.starts_with("evershell_session=;") && c.contains("Max-Age=0")));
    assert!(browser
        .cookie(&world)
        .is_none_or(|c| !c.contains("evershell_session")));
    let (status, _) = browser.me(&world).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Password sign-in sets the same cookie, beside the unchanged body.
    let store = &world.server.ctx.store;
    evershell_server::admin::create_user(store, "default", "olive@acme.test", "owner", PASSWORD)
        .await
        .unwrap();
    let signed = browser
        .http
        .post(world.url("/auth/sign-in"))
        .json(&json!({ "email": "olive@acme.test", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::OK);
    assert!(set_cookies(&signed)
        .iter()
        .any(|c| c.starts_with("evershell_session=eyJ")));
    let body: Value = signed.json().await.unwrap();
    assert!(body["token"].as_str().unwrap().starts_with("eyJ"), "{body}");
    assert_eq!(browser.me(&world).await.0, StatusCode::OK);
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_are_refused_when_tampered_replayed_swapped_or_declined() {
    let world = World::start().await;
    let browser = Browser::new();
    // Each refusal is a 401 naming its cause.
    let refused = |(status, code, body): (StatusCode, String, Value), cause: &str| {
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(cause), "{message}");
    };
    let elsewhere = "not started in this browser";
    let used = "unknown, used or expired";
    let provider_refused = "answer was refused";

    // A tampered state.
    let start = browser.start(&world, "").await;
    let authorize = location(&start).to_string();
    let callback = browser.at_provider(&world, &authorize, "olive", true).await;
    let state = query_param(&callback, "state").unwrap();
    let tampered = callback.replace(&state, &format!("{state}x"));
    refused(
        error_of(browser.http.get(&tampered).send().await.unwrap()).await,
        elsewhere,
    );

    // The genuine callback in another browser (no binding cookie).
    let stranger = Browser::new();
    refused(
        error_of(stranger.http.get(&callback).send().await.unwrap()).await,
        elsewhere,
    );

    // The state is used once: a replay with the binding cookie is refused.
    let first = browser.http.get(&callback).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&callback)
        .header("cookie", format!("evershell_oidc_state={state}"))
        .send()
        .await
        .unwrap();
    refused(error_of(replay).await, used);

    // A code from another flow of the same browser, redeemed with this
    // flow's PKCE verifier, is refused by the provider.
    let a = location(&browser.start(&world, "").await).to_string();
    let b = location(&browser.start(&world, "").await).to_string();
    let code_a = query_param(
        &browser.at_provider(&world, &a, "olive", true).await,
        "code",
    );
    let b_state = query_param(&b, "state").unwrap();
    let swapped = format!(
        "{}?code={}&state={b_state}",
        world.url("/auth/oidc/callback"),
        code_a.unwrap()
    );
    let answer = browser.http.get(&swapped).send().await.unwrap();
    refused(error_of(answer).await, provider_refused);

    // A code the provider issued to another client, brought back with a
    // genuine state of this browser.
    let genuine = location(&browser.start(&world, "").await).to_string();
    let mut other = Url::parse(&genuine).unwrap();
    let pairs: Vec<(String, String)> = other
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "client_id" {
                "other-app".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    other.query_pairs_mut().clear().extend_pairs(pairs);
    let foreign = browser
        .at_provider(&world, other.as_str(), "olive", true)
        .await;
    let answer = browser.http.get(&foreign).send().await.unwrap();
    refused(error_of(answer).await, provider_refused);

    // The person declines at the provider.
    let fresh = Browser::new();
    let start = location(&fresh.start(&world, "").await).to_string();
    let declined = fresh.at_provider(&world, &start, "olive", false).await;
    assert_eq!(
        query_param(&declined, "error").as_deref(),
        Some("access_denied")
    );
    let (status, code, body) = error_of(fresh.http.get(&declined).send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    assert_eq!(
        body["error"]["details"]["provider_error"], "access_denied",
        "{body}"
    );
    assert!(fresh
        .cookie(&world)
        .is_none_or(|c| !c.contains("evershell_session")));
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_is_refused_for_unknown_unverified_or_rebound_accounts_and_non_members() {
    let world = World::start().await;
    let forbidden = |(status, code, body): (StatusCode, String, Value)| {
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "permission_denied"),
            "{body}"
        );
        body["error"]["message"].as_str().unwrap().to_string()
    };

    // No Evershell user has this email: no account is created.
    let response = Browser::new().sign_in(&world, "", "mallory").await;
    let message = forbidden(error_of(response).await);
    assert!(message.contains("invitation"), "{message}");
    let store = &world.server.ctx.store;
    assert!(store
        .user_login("mallory@elsewhere.test")
        .await
        .unwrap()
        .is_none());

    // The provider says the email is not verified.
    forbidden(error_of(Browser::new().sign_in(&world, "", "uma").await).await);

    // A member of `default` asking for `other`.
    forbidden(error_of(Browser::new().sign_in(&world, "?org=other", "olive").await).await);

    // Once olive signed in with her provider account, another account of
    // the same provider claiming her email is refused.
    let olive = Browser::new().sign_in(&world, "", "olive").await;
    assert_eq!(olive.status(), StatusCode::SEE_OTHER);
    let twin = Browser::new().sign_in(&world, "", "olive-twin").await;
    forbidden(error_of(twin).await);

    // A return_to that leaves the server is refused before the provider
    // is involved.
    for bad in ["?return_to=https://evil.test/", "?return_to=//evil.test"] {
        let response = Browser::new().start(&world, bad).await;
        let (status, code, _) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "validation_error")
        );
    }
    world.shutdown().await;
}
