//! `evershell audit query WS`: a workspace's audit rows.

use std::process::ExitCode;

use serde_json::Value;

use super::Output;
use crate::client::{load_profile, Client};

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Rows of a workspace's audit log, newest first.
    Query {
        workspace: String,
        /// `col=a,b`, `col!=a,b` or `col!=` (repeatable).
        #[arg(long)]
        filter: Vec<String>,
        /// RFC 3339 lower bound (inclusive).
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339 upper bound (exclusive).
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Oldest first.
        #[arg(long)]
        asc: bool,
    },
}

pub async fn run(profile: &str, out: Output, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(load_profile(profile)?);
    let AuditCommand::Query {
        workspace,
        filter,
        from,
        to,
        limit,
        asc,
    } = cmd;
    let mut query: Vec<(String, String)> = filter
        .into_iter()
        .map(|f| ("filter".to_string(), f))
        .collect();
    query.extend(from.map(|f| ("from".to_string(), f)));
    query.extend(to.map(|t| ("to".to_string(), t)));
    query.push(("limit".into(), limit.to_string()));
    query.push(("order".into(), if asc { "asc" } else { "desc" }.to_string()));
    let request = client
        .request(
            reqwest::Method::GET,
            &format!("/v1/workspaces/{workspace}/audit"),
        )
        .query(&query);
    let page: Value = client.send(request).await?;
    out.print(&page, |page| {
        table(
            page["events"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default(),
        )
    });
    Ok(ExitCode::SUCCESS)
}

/// The audit rows as a table of the columns operators read first.
pub fn table(rows: &[Value]) -> String {
    let s = |v: &Value| {
        v.as_str().map(str::to_string).unwrap_or_else(|| {
            if v.is_null() {
                "-".into()
            } else {
                v.to_string()
            }
        })
    };
    let mut text = format!(
        "{:<27} {:<22} {:<8} {:<26} {:<7} {:<34} {:<14} {}",
        "TIMESTAMP", "EVENT", "DECISION", "DESTINATION", "METHOD", "PATH", "CAPABILITY", "REASON"
    );
    for row in rows {
        text.push_str(&format!(
            "\n{:<27} {:<22} {:<8} {:<26} {:<7} {:<34} {:<14} {}",
            s(&row["timestamp"]),
            s(&row["event_type"]),
            s(&row["decision"]),
            s(&row["destination"]),
            s(&row["method"]),
            s(&row["path"]),
            s(&row["capability_name"]),
            s(&row["reason"])
        ));
    }
    text
}
