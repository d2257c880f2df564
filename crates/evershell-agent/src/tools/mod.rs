//! The tools the model may call, their JSON schemas, and one dispatcher that
//! turns a call into a result for the model. A tool failure is a result the
//! model reads and adapts to, never an error of the task.

mod bash;
pub mod files;
mod output;

use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

pub use bash::KILL_GRACE;

/// The longest timeout the model may ask of one `bash` call.
pub const MAX_BASH_TIMEOUT: Duration = Duration::from_secs(1800);

/// One tool as offered to the model.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// JSON Schema of the input object.
    pub schema: Value,
}

/// What tools need from the agent's configuration.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub workdir: PathBuf,
    pub bash_timeout: Duration,
    pub output_limit: usize,
}

/// One call's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutcome {
    /// What the model reads.
    pub content: String,
    pub is_error: bool,
    /// `bash`: the command's exit code (128 + signal when killed). Other
    /// tools: 0 on success, 1 on failure.
    pub exit_code: i32,
}

#[derive(Deserialize)]
struct BashInput {
    command: String,
    timeout_seconds: Option<u64>,
}

#[derive(Deserialize)]
struct PathInput {
    path: String,
}

#[derive(Deserialize)]
struct WriteInput {
    path: String,
    content: String,
}

#[derive(Deserialize)]
struct EditInput {
    path: String,
    old: String,
    new: String,
}

/// The tools, in the order they are offered.
pub fn specs() -> Vec<ToolSpec> {
    let path =
        json!({"type": "string", "description": "absolute, or relative to the working directory"});
    vec![
        ToolSpec {
            name: "bash",
            description: "Run a command with bash -c in the working directory. Stdout and stderr \
                          are combined and truncated when long; the exit code is reported. \
                          Processes left in the background keep running.",
            schema: json!({"type": "object", "properties": {
                "command": {"type": "string"},
                "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": MAX_BASH_TIMEOUT.as_secs(),
                                    "description": "default 120"}},
                "required": ["command"]}),
        },
        ToolSpec {
            name: "read_file",
            description: "Read a text file (truncated when long).",
            schema: json!({"type": "object", "properties": {"path": path}, "required": ["path"]}),
        },
        ToolSpec {
            name: "write_file",
            description: "Create or overwrite a file with the given content, creating parent \
                          directories.",
            schema: json!({"type": "object", "properties": {"path": path, "content": {"type": "string"}},
                           "required": ["path", "content"]}),
        },
        ToolSpec {
            name: "edit_file",
            description: "Replace the one exact occurrence of `old` in a file with `new`. Fails \
                          when `old` occurs zero or several times.",
            schema: json!({"type": "object", "properties": {"path": path, "old": {"type": "string"},
                           "new": {"type": "string"}}, "required": ["path", "old", "new"]}),
        },
        ToolSpec {
            name: "list_files",
            description: "List a directory: directories end with /, files show their size.",
            schema: json!({"type": "object", "properties": {"path": path}, "required": ["path"]}),
        },
    ]
}

/// Runs one call. `cancel` terminates a running `bash` (SIGTERM, then SIGKILL
/// after [`KILL_GRACE`]).
pub async fn execute(
    ctx: &ToolContext,
    name: &str,
    input: &Value,
    cancel: &CancellationToken,
) -> ToolOutcome {
    let dir = &ctx.workdir;
    let limit = ctx.output_limit;
    let done = match name {
        "bash" => match parse::<BashInput>(input) {
            Ok(i) => return run_bash(ctx, &i, cancel).await,
            Err(e) => Err(e),
        },
        "read_file" => match parse::<PathInput>(input) {
            Ok(i) => files::read_file(dir, &i.path, limit).await,
            Err(e) => Err(e),
        },
        "write_file" => match parse::<WriteInput>(input) {
            Ok(i) => files::write_file(dir, &i.path, &i.content).await,
            Err(e) => Err(e),
        },
        "edit_file" => match parse::<EditInput>(input) {
            Ok(i) => files::edit_file(dir, &i.path, &i.old, &i.new).await,
            Err(e) => Err(e),
        },
        "list_files" => match parse::<PathInput>(input) {
            Ok(i) => files::list_files(dir, &i.path).await,
            Err(e) => Err(e),
        },
        _ => Err(format!(
            "unknown tool {name:?}; the tools are bash, read_file, write_file, edit_file, list_files"
        )),
    };
    match done {
        Ok(content) => ToolOutcome {
            content,
            is_error: false,
            exit_code: 0,
        },
        Err(content) => ToolOutcome {
            content,
            is_error: true,
            exit_code: 1,
        },
    }
}

fn parse<T: DeserializeOwned>(input: &Value) -> Result<T, String> {
    match input {
        Value::Object(_) => {
            serde_json::from_value(input.clone()).map_err(|e| format!("invalid tool input: {e}"))
        }
        Value::String(_) => Err("invalid tool input: the arguments are not valid JSON".into()),
        _ => Err("invalid tool input: expected a JSON object".into()),
    }
}

async fn run_bash(ctx: &ToolContext, input: &BashInput, cancel: &CancellationToken) -> ToolOutcome {
    let timeout = input
        .timeout_seconds
        .map_or(ctx.bash_timeout, |s| Duration::from_secs(s.max(1)))
        .min(MAX_BASH_TIMEOUT);
    let run = bash::run(
        &input.command,
        &ctx.workdir,
        timeout,
        ctx.output_limit,
        cancel,
    )
    .await;
    let run = match run {
        Ok(run) => run,
        Err(error) => {
            return ToolOutcome {
                content: format!("bash could not start: {error}"),
                is_error: true,
                exit_code: 127,
            }
        }
    };

    let mut content = run.output.render();
    if !content.is_empty() && !content.ends_with('\n') {
        content.push('\n');
    }
    let code = run.exit_code;
    content.push_str(&match run.ending {
        bash::Ending::Exited => format!("[exit code: {code}]"),
        bash::Ending::TimedOut => format!(
            "[timed out after {} s; the process group was terminated; exit code: {code}]",
            timeout.as_secs()
        ),
        bash::Ending::Cancelled => {
            format!("[the task was cancelled; the process group was terminated; exit code: {code}]")
        }
    });
    ToolOutcome {
        content,
        is_error: run.ending == bash::Ending::TimedOut,
        exit_code: code,
    }
}

#[cfg(test)]
mod tests;
