//! The Evershell control plane: the `/v1` API, authentication and scopes,
//! workspace and task orchestration, and the audit fan-out. [`start`] brings
//! up everything `evershell up` runs on one machine: the API, the egress
//! proxy and the local sandbox runtime, over one SQLite database.
#![forbid(unsafe_code)]

pub mod admin;
pub mod api;
mod audit_sink;
mod bootstrap;
mod broker;
mod config;
pub mod identity;
mod orchestrator;

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use evershell_core::{AuditEvent, EventType};
use evershell_store::secrets::MasterKey;
use evershell_store::Store;

pub use audit_sink::AuditWriter;
pub use bootstrap::Bootstrap;
pub use config::{
    ApiFile, ProxySettings, ServerConfig, ServerFile, DEFAULT_BODY_LIMIT_BYTES,
    MIN_BODY_LIMIT_BYTES,
};
pub use orchestrator::Orchestrator;

use api::auth::Caller;

/// Default `task_timeout_seconds` of a role (`GET /v1/config`).
pub const DEFAULT_TASK_TIMEOUT_SECONDS: u64 = 3600;
/// Default `idle_timeout_seconds` of a role.
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: u64 = 1800;

/// What every handler and background task shares.
pub struct Ctx {
    pub store: Store,
    pub master: Arc<MasterKey>,
    /// Installation pepper of API key hashes.
    pub pepper: String,
    /// Session token signing keys.
    pub sessions: identity::SessionKeys,
    pub audit: Arc<AuditWriter>,
    pub orchestrator: Arc<Orchestrator>,
    pub config: ServerConfig,
    /// The OpenID Connect provider people may sign in with, if configured.
    pub oidc: Option<Arc<identity::oidc::Oidc>>,
}

impl Ctx {
    /// The control-plane audit row of a change `caller` made to a
    /// resource; the caller commits it with the change and then publishes it.
    pub fn config_row(
        &self,
        caller: &Caller,
        event: EventType,
        subject_type: &str,
        subject_id: &str,
        summary: String,
    ) -> AuditEvent {
        let mut row = AuditEvent::new(event, &caller.org_id, &caller.user_id);
        row.subject_type = Some(subject_type.to_string());
        row.subject_id = Some(subject_id.to_string());
        let who = caller
            .api_key_label
            .as_deref()
            .map(|l| format!("api key {l:?}"))
            .or_else(|| caller.email.clone());
        row.summary = Some(format!(
            "{} {summary}",
            who.unwrap_or_else(|| caller.user_id.clone())
        ));
        row
    }
}

/// A running control plane.
pub struct RunningServer {
    pub addr: std::net::SocketAddr,
    pub bootstrap: Bootstrap,
    pub ctx: Arc<Ctx>,
    shutdown: tokio::sync::watch::Sender<bool>,
    served: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting requests, stops every sandbox and drains the audit
    /// queue.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.served.await;
        self.ctx.orchestrator.shutdown().await;
        self.ctx.audit.drain().await;
    }

    /// Waits until the server stops on its own (it does not, short of a
    /// fatal error).
    pub async fn wait(&mut self) {
        let _ = (&mut self.served).await;
    }
}

/// Opens the data directory, bootstraps it on first start, recovers
/// workspaces left by a previous run and starts serving.
pub async fn start(mut config: ServerConfig) -> anyhow::Result<RunningServer> {
    // Listen first: a start that cannot serve must not bootstrap anything
    // (the first start's API key exists only in its answer).
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    // Port 0 picks a free port: the default public URL follows it.
    if config.listen.port() == 0 && config.public_url == format!("http://{}", config.listen) {
        config.public_url = format!("http://{}", listener.local_addr()?);
    }
    std::fs::create_dir_all(&config.data_dir)?;
    restrict(&config.data_dir)?;
    let store = match &config.database_url {
        Some(url) => Store::open(url).await?,
        None => Store::open_sqlite(&config.data_dir.join("evershell.db")).await?,
    };
    let master = Arc::new(MasterKey::load_or_create(
        &config.data_dir.join("master.key"),
    )?);
    let pepper = store
        .setting_or_insert("api_key_pepper", &api::auth::new_pepper())
        .await?;
    let audit = AuditWriter::start(store.clone());
    tokio::task::spawn_blocking(identity::password::warm_up);

    let ca = bootstrap::platform_ca(&store, &master).await?;
    let orchestrator = Orchestrator::new(&config, &store, &master, &audit, ca)?;
    let sessions = identity::SessionKeys::new(master.clone());
    let oidc = match &config.oidc {
        Some(settings) => Some(Arc::new(
            identity::oidc::Oidc::new(settings.clone(), &config.public_url)
                .context("building the OpenID Connect client")?,
        )),
        None => None,
    };
    let ctx = Arc::new(Ctx {
        store,
        master,
        pepper,
        sessions,
        audit,
        orchestrator,
        config,
        oidc,
    });
    ctx.orchestrator.attach(Arc::downgrade(&ctx));
    let bootstrap = bootstrap::first_start(&ctx).await?;
    ctx.orchestrator.recover().await?;

    let addr = listener.local_addr()?;
    let app = app(ctx.clone());
    let (shutdown, mut stop) = tokio::sync::watch::channel(false);
    let served = tokio::spawn(async move {
        let graceful = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(graceful)
            .await
        {
            tracing::error!(error = %e, "api server stopped");
        }
    });
    tracing::info!(%addr, "control plane listening");
    Ok(RunningServer {
        addr,
        bootstrap,
        ctx,
        shutdown,
        served,
    })
}

/// The data directory holds the database, the master key and every
/// workspace's files: only its owner may enter it.
fn restrict(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// The HTTP application: every route of the table behind its access
/// rule, request ids, and the body limit.
pub fn app(ctx: Arc<Ctx>) -> Router {
    use api::handlers::{oidc, sign_in};
    use axum::routing::{get, post};
    let limit = ctx.config.body_limit_bytes;
    Router::new()
        .merge(api::routes::router(ctx.clone()))
        .route("/auth/sign-out", post(sign_in::sign_out))
        .route("/auth/oidc/start", get(oidc::start))
        .route(identity::oidc::CALLBACK_PATH, get(oidc::callback))
        .route(
            "/invitations/{token}",
            get(api::handlers::members::show_invitation)
                .post(api::handlers::members::accept_invitation),
        )
        .fallback(api::fallback)
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(api::request_id))
        .with_state(ctx)
}
