//! The agent service: the process inside every workspace sandbox that runs the
//! agent. It takes tasks from the control plane over a Unix socket, drives the
//! model ⇄ tool loop for each (see `task`), and records what happens as
//! numbered, durable events (`events`) and a persistent session (`session`)
//! that the control plane reads back through the same socket (`api`).
//!
//! It runs as the sandbox's unprivileged user with `/workspace` as working
//! directory and keeps its state in `/data/.evershell`, which every snapshot
//! captures, so stop/resume and fork keep both the event log and the
//! conversation. Model calls go to the provider's real domain and pass through
//! the egress proxy, which adds the credential: the agent holds no secret.
//!
//! Providers spoken: Anthropic Messages and OpenAI Chat Completions, both
//! streaming. Not yet in this crate (a later issue): context compaction — a
//! task's `max_context_tokens` is recorded and the context size is reported
//! in `GET /session`, but nothing is summarised when it is exceeded; the
//! OpenAI Responses API, Gemini, Vertex and Azure OpenAI; pack behaviour text
//! in the system prompt (the delivery does not carry it yet).
#![forbid(unsafe_code)]

mod api;
mod config;
mod context;
mod conversation;
mod error;
mod events;
mod model;
mod session;
mod task;
mod tools;

use std::future::Future;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

pub use config::{
    AgentArgs, AgentConfig, DEFAULT_BASH_TIMEOUT, DEFAULT_OUTPUT_LIMIT_BYTES, DEFAULT_STATE_DIR,
    DEFAULT_WORKDIR,
};
pub use error::AgentError;
pub use tools::{KILL_GRACE, MAX_BASH_TIMEOUT};

use context::Ctx;
use events::EventLog;
use model::ModelClient;
use session::SessionStore;
use tools::ToolContext;

/// Runs the agent service until SIGTERM or Ctrl-C.
pub async fn run(config: AgentConfig) -> Result<(), AgentError> {
    run_until(config, termination()).await
}

/// Runs the agent service until `shutdown` completes. On shutdown, open
/// requests get their answer (long polls at once), a running task is
/// abandoned and its tool processes are killed; the next start reports that
/// task `failed` with reason `agent_restarted`.
pub async fn run_until(
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let ctx = open(config)?;
    task::recover(&ctx).await.map_err(AgentError::Recover)?;

    let socket = ctx.config.socket.clone();
    let listener = bind(&socket).map_err(|source| AgentError::Socket {
        path: socket.clone(),
        source,
    })?;
    tracing::info!(socket = %socket.display(), last_seq = ctx.events.last_seq(), "agent service listening");

    let stopping = ctx.shutdown.clone();
    let served = axum::serve(listener, api::router(Arc::clone(&ctx)))
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopping.cancel();
        })
        .await;

    if let Some(task) = ctx.running.lock().await.take() {
        tracing::warn!(task = %task.task_id, "abandoning the running task at shutdown");
        task.handle.abort();
    }
    tracing::info!("agent service stopped");
    served.map_err(|source| AgentError::Serve {
        path: socket,
        source,
    })
}

/// Loads the durable state and builds the shared context.
fn open(config: AgentConfig) -> Result<Arc<Ctx>, AgentError> {
    std::fs::create_dir_all(&config.state_dir).map_err(|source| AgentError::StateDir {
        path: config.state_dir.clone(),
        source,
    })?;
    let events = EventLog::open(&config.state_dir.join("events.jsonl"))?;
    let session = SessionStore::open(&config.state_dir.join("session.json"))?;
    let model = ModelClient::new(config.ca_file.as_deref())?;
    let tools = ToolContext {
        workdir: config.workdir.clone(),
        bash_timeout: config.bash_timeout,
        output_limit: config.output_limit_bytes,
    };
    Ok(Arc::new(Ctx {
        config,
        events,
        session,
        model,
        tools,
        running: tokio::sync::Mutex::new(None),
        shutdown: CancellationToken::new(),
    }))
}

/// Listens on `path`, replacing a stale socket file, connectable by any user
/// (the control plane runs outside the sandbox under another uid).
fn bind(path: &Path) -> io::Result<UnixListener> {
    match std::fs::remove_file(path) {
        Ok(()) => tracing::debug!(socket = %path.display(), "removed a stale socket"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}

/// Completes on SIGTERM or SIGINT.
async fn termination() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the agent with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutting down"),
        _ = int.recv() => tracing::info!(signal = "SIGINT", "shutting down"),
    }
}
