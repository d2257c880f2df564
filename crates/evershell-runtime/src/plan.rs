//! The init plan: everything sandbox-init needs, sent by the server on the
//! init's stdin as one JSON document, and the one-line status it answers on
//! its stdout. The plan travels over a pipe rather than the command line
//! because the environment may carry credentials and `/proc/<pid>/cmdline`
//! is world-readable.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{Limits, WorkspacePaths};

/// What sandbox-init builds and runs. Not `Debug`: `env` may hold secrets.
#[derive(Serialize, Deserialize)]
pub(crate) struct InitPlan {
    pub workspace_id: String,
    /// Host uid and gid of the agent.
    pub uid: u32,
    pub hostname: String,
    pub env: Vec<(String, String)>,
    pub command: Vec<String>,
    pub paths: WorkspacePaths,
    pub exe: PathBuf,
    pub ca_pem: String,
    pub limits: Limits,
}

/// The single line sandbox-init writes on its stdout once setup is over.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Setup succeeded; the command is about to start.
    Ready,
    /// Setup failed with this reason; the init exits.
    Failed(String),
}

const READY: &str = "ready";
const FAILED: &str = "failed ";

impl Status {
    /// The line, newline included. A failure reason is flattened to a line.
    pub(crate) fn encode(&self) -> String {
        match self {
            Status::Ready => format!("{READY}\n"),
            Status::Failed(reason) => format!("{FAILED}{}\n", reason.replace('\n', " ")),
        }
    }

    /// Parses a line without its newline; `None` for anything else.
    pub(crate) fn decode(line: &str) -> Option<Status> {
        if line == READY {
            return Some(Status::Ready);
        }
        line.strip_prefix(FAILED)
            .map(|r| Status::Failed(r.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_round_trip() {
        for status in [Status::Ready, Status::Failed("mount /usr: EPERM".into())] {
            let line = status.encode();
            assert_eq!(Status::decode(line.trim_end_matches('\n')), Some(status));
        }
    }

    #[test]
    fn failure_reasons_stay_on_one_line() {
        let line = Status::Failed("a\nb".into()).encode();
        assert_eq!(line, "failed a b\n");
        assert_eq!(Status::decode("garbage"), None);
    }
}
