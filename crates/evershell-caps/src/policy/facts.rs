//! What the proxy knows about a request when it decides.

/// How the agent's request reached the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// TLS terminated by the proxy.
    Https,
    /// Plain HTTP: admitted only by rules with `allow_insecure: true`.
    Http,
}

/// One request's facts. Build with [`RequestFacts::new`] and the `with_*`
/// setters: fields are added as the language grows.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RequestFacts<'a> {
    /// The method exactly as sent (methods are case-sensitive).
    pub method: &'a str,
    pub scheme: Scheme,
    /// Raw `Host` / `:authority` / SNI; may carry a port, a trailing dot or
    /// upper case. A port in it must equal `port`.
    pub host: &'a str,
    /// The port the agent connected to (the upstream port).
    pub port: u16,
    /// Raw origin-form request target: path plus optional `?query`.
    pub target: &'a str,
    /// The request headers as received, names lower-cased (they are
    /// lower-cased again for CEL; repeated names are joined with `, `).
    /// Empty by default.
    pub headers: &'a [(String, String)],
    /// `workspace.*` in CEL. Empty strings by default.
    pub workspace: WorkspaceFacts<'a>,
    /// `task.id` in CEL; `None` (no task running) leaves `task` without an
    /// `id` key, so `has(task.id)` is false and reading it is an error.
    pub task_id: Option<&'a str>,
}

/// The workspace a request comes from, as CEL's `workspace.*` sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkspaceFacts<'a> {
    pub id: &'a str,
    /// The agent role's name.
    pub role: &'a str,
    pub environment: &'a str,
}

impl<'a> RequestFacts<'a> {
    /// Facts with no headers, an empty workspace and no task.
    pub fn new(
        method: &'a str,
        scheme: Scheme,
        host: &'a str,
        port: u16,
        target: &'a str,
    ) -> RequestFacts<'a> {
        RequestFacts {
            method,
            scheme,
            host,
            port,
            target,
            headers: &[],
            workspace: WorkspaceFacts::default(),
            task_id: None,
        }
    }

    pub fn with_headers(mut self, headers: &'a [(String, String)]) -> RequestFacts<'a> {
        self.headers = headers;
        self
    }

    pub fn with_workspace(mut self, workspace: WorkspaceFacts<'a>) -> RequestFacts<'a> {
        self.workspace = workspace;
        self
    }

    pub fn with_task_id(mut self, task_id: Option<&'a str>) -> RequestFacts<'a> {
        self.task_id = task_id;
        self
    }
}
