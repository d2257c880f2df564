//! `api-bench`: the control plane's API throughput. It starts the whole
//! platform in this process (the demo world, on SQLite and on PostgreSQL),
//! loads `GET /v1/workspaces/{id}` and `POST /v1/agent-roles` with an API
//! key, and reports requests per second and latency percentiles for each,
//! as a ratio to `GET /healthz` served by the same server — the HTTP stack
//! alone, without auth or database — measured in the same run.
//!
//! Needs root (the setup task runs in a sandbox) and the `evershell` binary
//! built beside this one: `cargo build --release -p evershell-cli`.
#![forbid(unsafe_code)]

mod load;
mod platform;
mod report;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use evershell_cli::demo::DEMO_CAPS;
use http::{HeaderValue, Method, StatusCode};
use tokio::runtime::{Handle, Runtime};

use crate::load::{Phases, RequestBody, Target};
use crate::platform::{Engine, Platform};
use crate::report::Row;
use crate::stats::Summary;

/// Measures the control plane's API throughput on SQLite and PostgreSQL.
#[derive(Parser)]
#[command(name = "api-bench")]
struct Args {
    /// Seconds measured per route, after the warm-up.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of load before each measured window, not counted.
    #[arg(long, default_value_t = 2)]
    warmup_seconds: u64,
    /// Concurrent clients, each with one keep-alive HTTP/1.1 connection.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Database engines to run the platform on.
    #[arg(long, value_enum, default_value_t = EngineChoice::Both)]
    engine: EngineChoice,
    /// Worker threads of the clients' own runtime; 0 runs the clients on
    /// the server's runtime.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// The `evershell` binary mounted into sandboxes [default: `evershell`
    /// beside this binary].
    #[arg(long)]
    exe: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EngineChoice {
    Sqlite,
    Postgres,
    Both,
}

/// What every engine's run shares.
struct Settings {
    phases: Phases,
    exe: PathBuf,
    /// Where the clients run.
    clients: Handle,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("api-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    if args.seconds == 0 || args.concurrency == 0 {
        bail!("--seconds and --concurrency must be at least 1");
    }
    let exe = locate_exe(args.exe.clone())?;
    let engines = match args.engine {
        EngineChoice::Sqlite => vec![Engine::Sqlite],
        EngineChoice::Postgres => vec![Engine::Postgres],
        EngineChoice::Both => vec![Engine::Sqlite, Engine::Postgres],
    };

    // The server gets tokio's default runtime (a worker per core), as
    // `evershell up` does; the clients get a runtime of their own unless
    // asked to share it.
    let server = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client_runtime = client_runtime(args.client_threads)?;
    let clients = client_runtime
        .as_ref()
        .map_or_else(|| server.handle().clone(), |r| r.handle().clone());
    let settings = Settings {
        phases: Phases {
            concurrency: args.concurrency,
            warmup: Duration::from_secs(args.warmup_seconds),
            measure: Duration::from_secs(args.seconds),
        },
        exe,
        clients,
    };

    print_preamble(&args);
    let mut rows = Vec::new();
    for engine in engines {
        rows.extend(server.block_on(measure_engine(engine, &settings))?);
    }

    println!("load average after: {}", report::load_average());
    println!();
    print!("{}", report::table(&rows));
    let errors = report::errors(&rows);
    if !errors.is_empty() {
        println!("\nerrors (count × kind: first response):\n{errors}");
    }
    Ok(())
}

fn client_runtime(threads: usize) -> anyhow::Result<Option<Runtime>> {
    if threads == 0 {
        return Ok(None);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("api-bench-client")
        .enable_all()
        .build()?;
    Ok(Some(runtime))
}

/// The `evershell` binary: `--exe`, or the one beside this binary in the
/// same target directory.
fn locate_exe(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let exe = match given {
        Some(path) => path,
        None => std::env::current_exe()
            .context("locating the api-bench binary")?
            .with_file_name("evershell"),
    };
    if !exe.is_file() {
        bail!(
            "{}: no evershell binary there; build it first with \
             `cargo build --release -p evershell-cli`, or pass --exe",
            exe.display()
        );
    }
    // The server mounts this path into sandboxes: make it absolute.
    exe.canonicalize()
        .with_context(|| format!("{}: cannot resolve", exe.display()))
}

fn print_preamble(args: &Args) {
    let client_threads = match args.client_threads {
        0 => "the server's runtime".to_string(),
        n => format!("a runtime of {n} thread(s)"),
    };
    println!("api-bench: control-plane API throughput");
    println!("machine: {}", report::machine());
    println!("load average before: {}", report::load_average());
    println!(
        "settings: {} clients (keep-alive HTTP/1.1 over loopback, one request in flight each), \
         {} s warm-up + {} s measured per route; clients on {client_threads}; server on \
         tokio's default runtime",
        args.concurrency, args.warmup_seconds, args.seconds
    );
    println!(
        "ratio: route rps / GET /healthz rps on the same server (HTTP stack without auth or \
         database)"
    );
}

/// Starts the platform on `engine`, measures the baseline and each route,
/// and stops it.
async fn measure_engine(engine: Engine, settings: &Settings) -> anyhow::Result<Vec<Row>> {
    eprintln!("{}: starting the platform", engine.name());
    let platform = Platform::start(engine, &settings.exe)
        .await
        .with_context(|| format!("starting the platform on {}", engine.name()))?;
    let rows = measure_routes(engine, &platform, settings).await;
    platform.shutdown().await;
    rows
}

async fn measure_routes(
    engine: Engine,
    platform: &Platform,
    settings: &Settings,
) -> anyhow::Result<Vec<Row>> {
    let mut rows: Vec<Row> = Vec::new();
    for (label, target) in routes(platform)? {
        eprintln!("{}: {label}", engine.name());
        let outcome = load::run(Arc::new(target), settings.phases, &settings.clients).await?;
        let summary = Summary::of(&outcome, settings.phases.measure);
        // The first row is the baseline: every ratio is against it.
        let baseline = rows.first().map_or(summary.rps, |b| b.summary.rps);
        let ratio = if baseline > 0.0 {
            summary.rps / baseline
        } else {
            f64::NAN
        };
        rows.push(Row {
            engine: engine.name(),
            route: label.to_string(),
            ratio,
            summary,
            errors: outcome.errors.into_iter().collect(),
        });
    }
    Ok(rows)
}

/// The baseline first, then the measured routes, each with its label.
fn routes(platform: &Platform) -> anyhow::Result<[(&'static str, Target); 3]> {
    let addr = platform.world.server.addr;
    let authorization = HeaderValue::from_str(&format!("Bearer {}", platform.api_key()?))?;
    let baseline = Target {
        addr,
        method: Method::GET,
        path: "/healthz".to_string(),
        authorization: None,
        body: RequestBody::Empty,
        expect: StatusCode::OK,
    };
    let read = Target {
        addr,
        method: Method::GET,
        path: format!("/v1/workspaces/{}", platform.workspace_id),
        authorization: Some(authorization.clone()),
        body: RequestBody::Empty,
        expect: StatusCode::OK,
    };
    let create = Target {
        addr,
        method: Method::POST,
        path: "/v1/agent-roles".to_string(),
        authorization: Some(authorization),
        body: RequestBody::NewRole {
            prefix: "bench-".to_string(),
            provider_id: "demo-anthropic".to_string(),
            capabilities: DEMO_CAPS.to_string(),
            next: AtomicU64::new(0),
        },
        expect: StatusCode::CREATED,
    };
    Ok([
        ("GET /healthz (baseline)", baseline),
        ("GET /v1/workspaces/{id}", read),
        ("POST /v1/agent-roles", create),
    ])
}

/// Warnings and errors of the platform go to stderr (`EVERSHELL_LOG`
/// overrides the filter); per-request logs stay off, as in production.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EVERSHELL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
