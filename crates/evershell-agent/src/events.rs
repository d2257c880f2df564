//! The durable event log: every agent event, numbered from 1, appended as one
//! JSON line to `<state_dir>/events.jsonl` and fsynced before anyone can read
//! it through `GET /events`. The control plane commits the last `seq` it has
//! stored and asks for what follows, so no event is lost or repeated across a
//! restart of either side.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use evershell_core::agent::AgentEvent;
use evershell_core::EventType;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The most events one `GET /events` page carries; the caller asks again
/// after the last `seq` it received.
pub const PAGE_LIMIT: usize = 1000;

/// A failure to read or append the event log.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    #[error("event log {path}: cannot open")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("event log {path}: cannot append event {seq}")]
    Append {
        path: PathBuf,
        seq: u64,
        #[source]
        source: io::Error,
    },
    #[error("event log {path}: writer task failed")]
    Writer { path: PathBuf },
}

/// The log, shared by the task runner (writer) and the API (readers).
#[derive(Clone)]
pub struct EventLog {
    state: Arc<Mutex<LogState>>,
    /// The `seq` of the newest visible event; long-polls wait on it.
    latest: watch::Sender<u64>,
    path: PathBuf,
}

struct LogState {
    file: File,
    /// Bytes of complete lines in the file; a failed append is cut back here.
    len: u64,
    /// Every event since the log began, in `seq` order; an agent's log stays
    /// small (a few hundred bytes per event) for the life of a workspace.
    events: Vec<AgentEvent>,
}

impl EventLog {
    /// Opens (or creates) the log at `path` and loads what it holds. A torn
    /// last line (the agent died mid-append, before the fsync made it visible)
    /// is cut off; any other unreadable line is skipped with a warning.
    pub fn open(path: &Path) -> Result<EventLog, EventLogError> {
        let open_error = |source| EventLogError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(open_error)?;

        let (events, valid_len) = load(&mut file, path).map_err(open_error)?;
        if valid_len < file.metadata().map_err(open_error)?.len() {
            tracing::warn!(path = %path.display(), valid_len, "event log: cutting torn last line");
            file.set_len(valid_len).map_err(open_error)?;
            file.sync_data().map_err(open_error)?;
        }

        let last = events.last().map_or(0, |e| e.seq);
        let (latest, _) = watch::channel(last);
        let state = LogState {
            file,
            len: valid_len,
            events,
        };
        Ok(EventLog {
            state: Arc::new(Mutex::new(state)),
            latest,
            path: path.to_path_buf(),
        })
    }

    /// Appends one event with the next `seq` and returns it once it is on
    /// disk. Events appended by concurrent callers get distinct, increasing
    /// `seq`s in the order they reach the file.
    pub async fn append(
        &self,
        event_type: EventType,
        task_id: Option<&str>,
        detail: serde_json::Value,
    ) -> Result<AgentEvent, EventLogError> {
        let state = Arc::clone(&self.state);
        let path = self.path.clone();
        let task_id = task_id.map(str::to_owned);
        let appended = tokio::task::spawn_blocking(move || {
            let mut state = state.lock().expect("event log lock is never poisoned");
            let event = AgentEvent {
                seq: state.events.last().map_or(1, |e| e.seq + 1),
                timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
                event_type: event_type.as_str().to_owned(),
                task_id,
                detail,
            };
            state.push(&event).map_err(|source| EventLogError::Append {
                path,
                seq: event.seq,
                source,
            })?;
            Ok(event)
        })
        .await
        .map_err(|_| EventLogError::Writer {
            path: self.path.clone(),
        })??;

        tracing::debug!(seq = appended.seq, event_type = %appended.event_type, "event appended");
        self.latest.send_replace(appended.seq);
        Ok(appended)
    }

    /// The events with `seq > after`, at most [`PAGE_LIMIT`].
    pub fn after(&self, after: u64) -> Vec<AgentEvent> {
        let state = self.state.lock().expect("event log lock is never poisoned");
        let start = state.events.partition_point(|e| e.seq <= after);
        state.events[start..]
            .iter()
            .take(PAGE_LIMIT)
            .cloned()
            .collect()
    }

    /// Like [`after`](Self::after), but when nothing is there yet waits up to
    /// `wait` for an event (or until `shutdown`), then answers with what it
    /// has, possibly nothing.
    pub async fn wait_after(
        &self,
        after: u64,
        wait: Duration,
        shutdown: &CancellationToken,
    ) -> Vec<AgentEvent> {
        let mut latest = self.latest.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Mark the current value seen before reading the log, so an event
            // appended in between still wakes us.
            let newest = *latest.borrow_and_update();
            if newest > after {
                return self.after(after);
            }
            tokio::select! {
                changed = latest.changed() => {
                    if changed.is_err() {
                        return Vec::new();
                    }
                }
                () = tokio::time::sleep_until(deadline) => return self.after(after),
                () = shutdown.cancelled() => return self.after(after),
            }
        }
    }

    /// The newest event matching `predicate`.
    pub fn find_last(&self, predicate: impl Fn(&AgentEvent) -> bool) -> Option<AgentEvent> {
        let state = self.state.lock().expect("event log lock is never poisoned");
        state.events.iter().rev().find(|e| predicate(e)).cloned()
    }

    /// The `seq` of the newest event, 0 for an empty log.
    pub fn last_seq(&self) -> u64 {
        *self.latest.borrow()
    }
}

/// Reads every complete line; returns the events and the byte length of the
/// prefix that ends with the last newline.
fn load(file: &mut File, path: &Path) -> io::Result<(Vec<AgentEvent>, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(&*file);
    let mut events: Vec<AgentEvent> = Vec::new();
    let mut valid_len = 0u64;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        valid_len += n as u64;
        match serde_json::from_slice::<AgentEvent>(&line) {
            Ok(event) if events.last().is_none_or(|last| event.seq > last.seq) => {
                events.push(event)
            }
            Ok(event) => {
                tracing::warn!(path = %path.display(), seq = event.seq, "event log: seq out of order, skipped");
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "event log: unreadable line skipped");
            }
        }
    }
    Ok((events, valid_len))
}

impl LogState {
    /// Writes and fsyncs one line, then makes the event readable. On failure
    /// the file is cut back so a partial line never joins the next event's.
    fn push(&mut self, event: &AgentEvent) -> io::Result<()> {
        let mut line = serde_json::to_vec(event).expect("an agent event always serialises");
        line.push(b'\n');
        let written = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data());
        if let Err(error) = written {
            if let Err(cut) = self.file.set_len(self.len) {
                tracing::error!(%cut, "event log: cannot cut back a failed append");
            }
            return Err(error);
        }
        self.len += line.len() as u64;
        self.events.push(event.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests;
