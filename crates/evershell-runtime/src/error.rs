//! Why a sandbox could not start.

use std::io;
use std::path::PathBuf;

/// Failure of [`LocalRuntime::start`](crate::LocalRuntime::start). Each
/// variant names the workspace; nothing of a failed start is left running.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The spec was refused before anything was created.
    #[error("workspace {workspace}: invalid sandbox spec: {reason}")]
    InvalidSpec {
        workspace: String,
        reason: &'static str,
    },
    /// A host directory of the workspace could not be created or owned.
    #[error("workspace {workspace}: cannot prepare {}", path.display())]
    Prepare {
        workspace: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The network namespace or one of its listeners could not be set up.
    #[error("workspace {workspace}: network namespace setup failed at {step}")]
    Network {
        workspace: String,
        step: &'static str,
        #[source]
        source: io::Error,
    },
    /// The sandbox thread or the sandbox-init process could not be started.
    #[error("workspace {workspace}: cannot launch sandbox")]
    Launch {
        workspace: String,
        #[source]
        source: io::Error,
    },
    /// sandbox-init started but reported a failure (or died) during setup.
    #[error("workspace {workspace}: sandbox init failed: {reason}")]
    Init { workspace: String, reason: String },
    /// sandbox-init did not report ready within the start timeout.
    #[error("workspace {workspace}: sandbox init did not report ready in time")]
    StartTimeout { workspace: String },
}
