//! A workspace binding: which workspace a set of listeners serves, on behalf
//! of whom, under which compiled policy.

use std::sync::Arc;

use tokio::sync::watch;

/// Everything the proxy knows about the workspace behind a set of egress
/// listeners. Fixed for the life of the listeners except the task id, which
/// the control plane updates as tasks start and end.
#[derive(Debug)]
pub struct WorkspaceBinding {
    pub workspace_id: String,
    pub org_id: String,
    /// The workspace's creator: the `user_id` of every row the proxy writes.
    pub user_id: String,
    /// Written to rows as `agent_role`.
    pub role_name: String,
    /// Written to rows as `agent_provider`.
    pub provider_name: String,
    /// `workspace.environment` of CEL predicates.
    pub environment: String,
    /// The policy the workspace was activated with.
    pub policy: Arc<evershell_caps::Policy>,
    /// The running task, `None` while the workspace is idle. Read once when
    /// a request starts; the row names the task that was current then.
    pub task_id: watch::Receiver<Option<String>>,
}

impl WorkspaceBinding {
    /// The task current right now.
    pub(crate) fn current_task(&self) -> Option<String> {
        self.task_id.borrow().clone()
    }
}
