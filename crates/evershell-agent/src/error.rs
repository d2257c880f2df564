//! The errors that stop the agent service from starting or serving.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::events::EventLogError;
use crate::model::ClientError;
use crate::session::SessionError;
use crate::task::StateError;

/// Why [`run`](crate::run) returned early.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("state dir {path}: cannot create")]
    StateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Events(#[from] EventLogError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("agent state: cannot recover the interrupted task")]
    Recover(#[source] StateError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("socket {path}: cannot listen")]
    Socket {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("socket {path}: serving failed")]
    Serve {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Displays an error with its chain of sources, `: `-separated, for logs.
pub struct Report<'a>(pub &'a dyn std::error::Error);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
