//! The session: the conversation an agent carries from task to task, with the
//! history of those tasks and their counters. It lives in
//! `<state_dir>/session.json`, rewritten atomically (temporary file, fsync,
//! rename) after every iteration, so a snapshot always holds a whole session
//! and resume or fork continues the conversation where the last completed
//! iteration left it.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::conversation::Message;

/// The version of the `session.json` layout this agent writes and reads.
const FORMAT_VERSION: u32 = 1;

/// A failure to load or store the session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session {path}: cannot read")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("session {path}: not a session file")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("session {path}: format version {found} is not {FORMAT_VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("session {path}: cannot write")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("session {path}: writer task failed")]
    Writer { path: PathBuf },
}

/// One conversation and the tasks that shaped it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub version: u32,
    /// `ses_` + ULID; a reset starts a session with a new id.
    pub session_id: String,
    pub started_at: String,
    pub messages: Vec<Message>,
    /// Finished tasks, oldest first.
    pub tasks: Vec<TaskRecord>,
    /// The task running now; still set after a crash, which the next start
    /// reports as failed.
    pub current_task: Option<TaskRecord>,
    /// Input tokens of the latest model call: how full the context window is.
    pub context_tokens: u64,
}

/// One task's place in the session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task_id: String,
    pub status: TaskStatus,
    pub reason: Option<String>,
    pub provider_kind: String,
    pub model: String,
    pub max_continuations: u32,
    pub max_context_tokens: u64,
    pub iterations: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub started_at: String,
    pub completed_at: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Running,
    Completed,
    Failed,
    Cancelled,
}

/// The session in memory and on disk. `None` until the first task starts one.
pub struct SessionStore {
    path: PathBuf,
    state: Mutex<Option<Session>>,
    /// Serialises writers so an older snapshot never lands after a newer one.
    write: tokio::sync::Mutex<()>,
}

impl Session {
    pub fn new() -> Session {
        Session {
            version: FORMAT_VERSION,
            session_id: format!("ses_{}", ulid::Ulid::new()),
            started_at: now(),
            messages: Vec::new(),
            tasks: Vec::new(),
            current_task: None,
            context_tokens: 0,
        }
    }
}

impl TaskStatus {
    /// The terminal status named `text`.
    pub fn parse(text: &str) -> Option<TaskStatus> {
        [
            TaskStatus::Completed,
            TaskStatus::Failed,
            TaskStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Running => "running",
            TaskStatus::Completed => evershell_core::agent::TASK_COMPLETED,
            TaskStatus::Failed => evershell_core::agent::TASK_FAILED,
            TaskStatus::Cancelled => evershell_core::agent::TASK_CANCELLED,
        }
    }
}

impl SessionStore {
    /// Loads `path` when it exists. A leftover temporary file from an
    /// interrupted write is ignored: the rename never happened, so `path`
    /// still holds the previous whole session.
    pub fn open(path: &Path) -> Result<Arc<SessionStore>, SessionError> {
        let session = match fs::read(path) {
            Ok(bytes) => Some(parse(path, &bytes)?),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(SessionError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(Arc::new(SessionStore {
            path: path.to_path_buf(),
            state: Mutex::new(session),
            write: tokio::sync::Mutex::new(()),
        }))
    }

    /// Runs `f` on the session as it is in memory.
    pub fn read<R>(&self, f: impl FnOnce(Option<&Session>) -> R) -> R {
        f(self
            .state
            .lock()
            .expect("session lock is never poisoned")
            .as_ref())
    }

    /// Runs `f` on the session, when there is one. The change is in memory
    /// only until [`persist`](Self::persist).
    pub fn update<R>(&self, f: impl FnOnce(&mut Session) -> R) -> Option<R> {
        self.state
            .lock()
            .expect("session lock is never poisoned")
            .as_mut()
            .map(f)
    }

    fn replace(&self, session: Session) {
        *self.state.lock().expect("session lock is never poisoned") = Some(session);
    }

    /// Writes the session as it is now; returns once it is durable.
    pub async fn persist(&self) -> Result<(), SessionError> {
        let _writer = self.write.lock().await;
        let Some(bytes) = self.read(|s| s.map(encode)) else {
            return Ok(());
        };
        self.write_bytes(bytes).await
    }

    /// Writes `session` and, once it is durable, makes it the session in
    /// memory. On failure nothing changes.
    pub async fn commit(&self, session: Session) -> Result<(), SessionError> {
        let _writer = self.write.lock().await;
        self.write_bytes(encode(&session)).await?;
        self.replace(session);
        Ok(())
    }

    async fn write_bytes(&self, bytes: Vec<u8>) -> Result<(), SessionError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(|_| SessionError::Writer {
                path: self.path.clone(),
            })?
            .map_err(|source| SessionError::Write {
                path: self.path.clone(),
                source,
            })
    }
}

fn encode(session: &Session) -> Vec<u8> {
    serde_json::to_vec_pretty(session).expect("a session always serialises")
}

/// RFC 3339 with microseconds, the timestamp format of every agent record.
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse(path: &Path, bytes: &[u8]) -> Result<Session, SessionError> {
    let session: Session = serde_json::from_slice(bytes).map_err(|source| SessionError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    if session.version != FORMAT_VERSION {
        return Err(SessionError::Version {
            path: path.to_path_buf(),
            found: session.version,
        });
    }
    Ok(session)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;

    // The rename is durable only once the directory entry is.
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
