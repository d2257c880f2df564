//! What the API handlers and the task runner share.

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::AgentConfig;
use crate::events::EventLog;
use crate::model::ModelClient;
use crate::session::SessionStore;
use crate::tools::ToolContext;

/// The agent's shared state, one per process, behind an `Arc`.
pub struct Ctx {
    pub config: AgentConfig,
    pub events: EventLog,
    pub session: Arc<SessionStore>,
    pub model: ModelClient,
    pub tools: ToolContext,
    /// The one task that may run; held while a task starts or finishes, so a
    /// delivery never races the end of the previous task.
    pub running: tokio::sync::Mutex<Option<RunningTask>>,
    /// Fires when the service stops; long polls answer at once.
    pub shutdown: CancellationToken,
}

/// The task running now.
pub struct RunningTask {
    pub task_id: String,
    /// Fires on `POST /tasks/{id}/cancel`.
    pub cancel: CancellationToken,
    pub handle: JoinHandle<()>,
}
