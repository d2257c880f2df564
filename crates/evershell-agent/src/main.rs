//! `evershell-agent`: the agent service, run inside a workspace sandbox.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use evershell_agent::{AgentArgs, AgentConfig};

/// Runs the agent service until SIGTERM or Ctrl-C.
#[derive(Parser)]
#[command(name = "evershell-agent", version)]
struct Cli {
    #[command(flatten)]
    agent: AgentArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match evershell_agent::run(AgentConfig::from(cli.agent)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("evershell-agent: {:#}", anyhow::Error::new(error));
            ExitCode::FAILURE
        }
    }
}
