//! Budgets: usage ceilings a capability puts on the requests it admits.
//! This crate parses and reports them; the proxy's ledger reserves and
//! reconciles against them.

/// The closed set of usage counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    Requests,
    RequestBytes,
    ResponseBytes,
    InputTokens,
    OutputTokens,
    CostMicros,
}

/// One ceiling: at most `limit` of its counter per task or per workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Budget {
    /// Positive.
    pub limit: u64,
    pub per: BudgetScope,
    /// Default [`Ceiling::Deny`].
    pub ceiling: Ceiling,
}

/// What a budget's count lives with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BudgetScope {
    /// Resets when a new task starts.
    Task,
    /// Lives with the workspace: kept across stop and resume, copied at
    /// fork.
    Workspace,
}

/// What happens to a request that would exceed its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Ceiling {
    /// Denied with reason `budget_exceeded:<counter>`.
    #[default]
    Deny,
    /// Token counters only: the request's output-token cap is lowered to
    /// the remaining allowance.
    Clamp,
}

impl Counter {
    /// Every counter, in canonical order.
    pub const ALL: [Counter; 6] = [
        Counter::Requests,
        Counter::RequestBytes,
        Counter::ResponseBytes,
        Counter::InputTokens,
        Counter::OutputTokens,
        Counter::CostMicros,
    ];

    /// Parses a counter key exactly as written in caps.yaml.
    pub fn parse(s: &str) -> Option<Counter> {
        Counter::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Counter::Requests => "requests",
            Counter::RequestBytes => "request_bytes",
            Counter::ResponseBytes => "response_bytes",
            Counter::InputTokens => "input_tokens",
            Counter::OutputTokens => "output_tokens",
            Counter::CostMicros => "cost_micros",
        }
    }

    /// Whether `ceiling: clamp` is allowed on this counter.
    pub fn is_token(self) -> bool {
        matches!(self, Counter::InputTokens | Counter::OutputTokens)
    }
}

impl std::fmt::Display for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl BudgetScope {
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetScope::Task => "task",
            BudgetScope::Workspace => "workspace",
        }
    }
}

impl Ceiling {
    pub fn as_str(self) -> &'static str {
        match self {
            Ceiling::Deny => "deny",
            Ceiling::Clamp => "clamp",
        }
    }
}
