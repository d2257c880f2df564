//! The agent service's configuration, fixed at start.

use std::path::PathBuf;
use std::time::Duration;

/// Where the agent keeps its durable state inside the sandbox (part of every
/// snapshot).
pub const DEFAULT_STATE_DIR: &str = "/data/.evershell";

/// The agent's working directory inside the sandbox.
pub const DEFAULT_WORKDIR: &str = "/workspace";

/// How long one `bash` call may run when the model asks for no timeout.
pub const DEFAULT_BASH_TIMEOUT: Duration = Duration::from_secs(120);

/// How much tool output (combined stdout and stderr, or file content) goes
/// back to the model before it is truncated with a marker line.
pub const DEFAULT_OUTPUT_LIMIT_BYTES: usize = 32 * 1024;

/// How the agent service runs. Built once, never changed while it runs.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The Unix socket the control plane connects to. A stale file at this
    /// path is removed at start; the socket is made world-connectable (0666)
    /// because the control plane runs as another user outside the sandbox.
    pub socket: PathBuf,
    /// Holds `events.jsonl` and `session.json`; created when missing.
    pub state_dir: PathBuf,
    /// The working directory of tools; relative tool paths resolve here.
    pub workdir: PathBuf,
    /// An extra CA (PEM) trusted for model calls, for tests. Production relies
    /// on the system store, which honours `SSL_CERT_FILE`.
    pub ca_file: Option<PathBuf>,
    /// The default timeout of a `bash` call; the model may ask for another,
    /// up to [`MAX_BASH_TIMEOUT`](crate::tools::MAX_BASH_TIMEOUT).
    pub bash_timeout: Duration,
    /// See [`DEFAULT_OUTPUT_LIMIT_BYTES`].
    pub output_limit_bytes: usize,
}

impl AgentConfig {
    /// The production layout (state in [`DEFAULT_STATE_DIR`], tools in
    /// [`DEFAULT_WORKDIR`]) listening on `socket`.
    pub fn new(socket: PathBuf) -> AgentConfig {
        AgentConfig {
            socket,
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            workdir: PathBuf::from(DEFAULT_WORKDIR),
            ca_file: None,
            bash_timeout: DEFAULT_BASH_TIMEOUT,
            output_limit_bytes: DEFAULT_OUTPUT_LIMIT_BYTES,
        }
    }
}

/// The command-line flags of the agent service, shared by the
/// `evershell-agent` binary and the `evershell agent` subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// The Unix socket to listen on.
    #[arg(long)]
    pub socket: PathBuf,
    /// Where the event log and the session live.
    #[arg(long, default_value = DEFAULT_STATE_DIR)]
    pub state_dir: PathBuf,
    /// The working directory of tools.
    #[arg(long, default_value = DEFAULT_WORKDIR)]
    pub workdir: PathBuf,
    /// An extra CA certificate (PEM) to trust for model calls.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
}

impl From<AgentArgs> for AgentConfig {
    fn from(args: AgentArgs) -> AgentConfig {
        AgentConfig {
            state_dir: args.state_dir,
            workdir: args.workdir,
            ca_file: args.ca_file,
            ..AgentConfig::new(args.socket)
        }
    }
}
