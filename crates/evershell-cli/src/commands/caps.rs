//! `evershell caps check|fmt|explain FILE`: operator tools for caps.yaml,
//! running the very engine the proxy enforces with.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::Output;
use crate::exit;

#[derive(clap::Subcommand)]
pub enum CapsCommand {
    /// Validate a caps.yaml file; errors name their line and column.
    Check { file: PathBuf },
    /// Print a caps.yaml file in canonical form.
    Fmt { file: PathBuf },
}

fn read(file: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
}

pub async fn run(out: Output, cmd: CapsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CapsCommand::Check { file } => {
            let text = read(&file)?;
            match evershell_caps::parse(&text) {
                Ok(caps) => {
                    let rules: usize = caps.iter().map(|c| c.allow.len()).sum();
                    let summary = serde_json::json!({ "valid": true, "capabilities": caps.len(), "rules": rules });
                    out.print(&summary, |_| {
                        format!(
                            "{}: ok ({} capabilities, {rules} rules)",
                            file.display(),
                            caps.len()
                        )
                    });
                    Ok(ExitCode::SUCCESS)
                }
                Err(errors) => {
                    let fields = errors.fields();
                    if out.json {
                        println!(
                            "{}",
                            serde_json::json!({ "valid": false, "fields": fields })
                        );
                    } else {
                        for e in &errors.0 {
                            eprintln!(
                                "{}:{}:{}: {} ({})",
                                file.display(),
                                e.line,
                                e.column,
                                e.message,
                                e.path
                            );
                        }
                    }
                    Ok(ExitCode::from(exit::API_ERROR))
                }
            }
        }
        CapsCommand::Fmt { file } => {
            let text = read(&file)?;
            let caps = evershell_caps::parse(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let yaml = evershell_caps::to_yaml(&caps);
            println!("{}", yaml.trim_end());
            Ok(ExitCode::SUCCESS)
        }
    }
}
