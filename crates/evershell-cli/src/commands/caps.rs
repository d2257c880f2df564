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
    /// Decide one request against a caps.yaml file with the proxy's engine
    /// and say why.
    Explain {
        file: PathBuf,
        /// The request: 'METHOD URL', e.g. 'POST https://gitlab.com/api/v4/projects/42/merge_requests'.
        #[arg(long)]
        request: String,
        /// A request header 'Name: value' (repeatable).
        #[arg(long = "header")]
        headers: Vec<String>,
        /// A file holding the request body.
        #[arg(long)]
        body: Option<PathBuf>,
        /// `workspace.role` seen by CEL predicates.
        #[arg(long, default_value = "")]
        role: String,
        /// `workspace.environment` seen by CEL predicates.
        #[arg(long, default_value = "development")]
        environment: String,
    },
}

/// Reads a caps.yaml file: a regular file of at most the loader's size
/// limit (a larger one is refused by the loader with its own message).
fn read(file: &PathBuf) -> anyhow::Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(file).with_context(|| format!("reading {}", file.display()))?;
    anyhow::ensure!(meta.is_file(), "{} is not a regular file", file.display());
    let limit = evershell_caps::MAX_DOCUMENT_BYTES as u64 + 1;
    let mut text = String::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(limit).read_to_string(&mut text))
        .with_context(|| format!("reading {}", file.display()))?;
    Ok(text)
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
        CapsCommand::Explain {
            file,
            request,
            headers,
            body,
            role,
            environment,
        } => {
            let text = read(&file)?;
            let caps = evershell_caps::parse(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let policy = evershell_caps::Policy::compile(Vec::new(), caps);
            let body = body.map(|path| {
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
            });
            let body = body.transpose()?;
            let explained = explain(
                &policy,
                &request,
                &headers,
                body.as_deref(),
                &role,
                &environment,
            )?;
            out.print(&explained, render);
            let allowed = explained["decision"] == "allow";
            Ok(if allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(exit::API_ERROR)
            })
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

/// `(method, scheme, authority, origin-form target)` of `'METHOD URL'`.
fn split_request(
    request: &str,
) -> anyhow::Result<(String, evershell_caps::Scheme, u16, String, String)> {
    let (method, url) = request
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(|| anyhow::anyhow!("--request must be 'METHOD URL'"))?;
    let url = url.trim();
    let (scheme, rest, port) = if let Some(rest) = url.strip_prefix("https://") {
        (evershell_caps::Scheme::Https, rest, 443)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (evershell_caps::Scheme::Http, rest, 80)
    } else {
        anyhow::bail!("the URL must start with https:// or http://");
    };
    let (authority, target) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    let port = match authority.rsplit_once(':') {
        Some((_, p)) if !authority.ends_with(']') => p
            .parse()
            .map_err(|_| anyhow::anyhow!("bad port in {authority:?}"))?,
        _ => port,
    };
    Ok((
        method.to_string(),
        scheme,
        port,
        authority.to_string(),
        target,
    ))
}

fn explain(
    policy: &evershell_caps::Policy,
    request: &str,
    headers: &[String],
    body: Option<&[u8]>,
    role: &str,
    environment: &str,
) -> anyhow::Result<serde_json::Value> {
    let (method, scheme, port, authority, target) = split_request(request)?;
    let mut pairs = Vec::new();
    for header in headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| anyhow::anyhow!("--header must be 'Name: value', got {header:?}"))?;
        pairs.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let workspace = evershell_caps::WorkspaceFacts {
        id: "ws_explain",
        role,
        environment,
    };
    let facts = evershell_caps::RequestFacts::new(&method, scheme, &authority, port, &target)
        .with_headers(&pairs)
        .with_workspace(workspace);
    // A request given without --body has an empty body, as curl sends it.
    let explained = policy.explain(&facts, Some(body.unwrap_or_default()));
    let d = &explained.decision;
    let candidates: Vec<serde_json::Value> = explained
        .candidates
        .iter()
        .map(|c| serde_json::json!({ "capability": c.capability, "rule": c.rule, "admitted": c.admitted, "why": c.why }))
        .collect();
    Ok(serde_json::json!({
        "decision": if d.allowed { "allow" } else { "deny" },
        "reason": d.reason,
        "host": d.host,
        "canonical_path": d.canonical_path,
        "forward_target": d.forward_target,
        "capability": d.capability,
        "rule": d.rule,
        "needs_body": d.needs_body,
        "candidates": candidates,
        "transforms": explained.transforms,
    }))
}

fn render(v: &serde_json::Value) -> String {
    let s = |key: &str| v[key].as_str().unwrap_or("-").to_string();
    let mut text = format!("{} ({})", s("decision").to_uppercase(), s("reason"));
    if v["decision"] == "allow" {
        text.push_str(&format!(
            "\n  admitted by {}/{}",
            s("capability"),
            s("rule")
        ));
    }
    text.push_str(&format!(
        "\n  host {} · forwarded as {}",
        s("host"),
        s("forward_target")
    ));
    if let Some(n) = v["needs_body"].as_u64() {
        text.push_str(&format!(
            "\n  a rule needs the body (up to {n} bytes): pass --body FILE"
        ));
    }
    for c in v["candidates"].as_array().into_iter().flatten() {
        let mark = if c["admitted"] == true { "+" } else { "-" };
        text.push_str(&format!(
            "\n  {mark} {}/{}: {}",
            c["capability"].as_str().unwrap_or("?"),
            c["rule"].as_str().unwrap_or("?"),
            c["why"].as_str().unwrap_or("")
        ));
    }
    for t in v["transforms"].as_array().into_iter().flatten() {
        text.push_str(&format!("\n  transform: {}", t.as_str().unwrap_or("")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_split_into_method_scheme_port_authority_and_target() {
        let (m, _, port, authority, target) =
            split_request("POST https://gitlab.com/api/v4/x?branch=a").unwrap();
        assert_eq!(
            (m.as_str(), port, authority.as_str(), target.as_str()),
            ("POST", 443, "gitlab.com", "/api/v4/x?branch=a")
        );
        let (_, _, port, authority, target) =
            split_request("GET http://registry.local:5000").unwrap();
        assert_eq!(
            (port, authority.as_str(), target.as_str()),
            (5000, "registry.local:5000", "/")
        );
        assert!(split_request("https://no-method").is_err());
        assert!(split_request("GET ftp://x/").is_err());
    }
}
