//! The `evershell` command line, as a library so the end-to-end tests drive
//! the same code the binary runs.
#![forbid(unsafe_code)]

pub mod client;
pub mod commands;
pub mod demo;
pub mod follow;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes: 0 success, 1 API error, 2 usage error, 3 a followed task
/// ended `failed` or `cancelled`.
pub mod exit {
    pub const API_ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const TASK_FAILED: u8 = 3;
}

#[derive(Parser)]
#[command(
    name = "evershell",
    version,
    about = "Evershell: a governed runtime for autonomous coding agents"
)]
pub struct Cli {
    /// Credentials profile (table of ~/.config/evershell/credentials).
    #[arg(long, global = true, default_value = "default")]
    pub profile: String,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_parser = ["table", "json"], default_value = "table")]
    pub output: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the whole platform on this machine with embedded defaults.
    Up(commands::up::UpArgs),
    /// Run the governed demo task end to end against local stand-in servers.
    Demo(commands::demo::DemoArgs),
    /// Store an API key for the CLI after checking it.
    Login(commands::login::LoginArgs),
    /// Submit a task for a role (creates a workspace) and optionally follow it.
    Run(commands::run::RunArgs),
    /// Workspaces.
    #[command(subcommand)]
    Ws(commands::ws::WsCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// Check, format and explain caps.yaml files.
    #[command(subcommand)]
    Caps(commands::caps::CapsCommand),
    /// Installation administration, on the server host.
    Admin(commands::admin::AdminArgs),
    /// The agent service (runs inside a workspace sandbox).
    #[command(hide = true)]
    Agent(AgentArgs),
}

#[derive(clap::Args)]
pub struct AgentArgs {
    #[arg(long)]
    socket: PathBuf,
    #[arg(long)]
    state_dir: PathBuf,
    #[arg(long)]
    workdir: PathBuf,
}

/// Parses `args` and runs the command.
pub fn main(args: Vec<String>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    init_logging(&cli.command);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    runtime.block_on(async move {
        match run(cli).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(exit::API_ERROR)
            }
        }
    })
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let out = commands::Output {
        json: cli.output == "json",
    };
    match cli.command {
        Command::Up(args) => commands::up::run(args).await,
        Command::Demo(args) => commands::demo::run(args).await,
        Command::Login(args) => commands::login::run(&cli.profile, args).await,
        Command::Run(args) => commands::run::run(&cli.profile, out, args).await,
        Command::Ws(cmd) => commands::ws::run(&cli.profile, out, cmd).await,
        Command::Audit(cmd) => commands::audit::run(&cli.profile, out, cmd).await,
        Command::Admin(cmd) => commands::admin::run(out, cmd).await,
        Command::Caps(cmd) => commands::caps::run(out, cmd).await,
        Command::Agent(args) => {
            let mut config = evershell_agent::AgentConfig::new(args.socket);
            config.state_dir = args.state_dir;
            config.workdir = args.workdir;
            evershell_agent::run(config).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn init_logging(command: &Command) {
    let default = match command {
        Command::Up(_) | Command::Agent(_) => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("EVERSHELL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        builder.init();
    } else {
        builder.json().init();
    }
}
