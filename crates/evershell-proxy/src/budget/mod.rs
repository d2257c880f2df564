//! Budgets: usage ceilings a capability puts on the requests it admits,
//! and the accounting that enforces them. Each workspace has one ledger;
//! a request reserves its estimated usage before it leaves and the
//! reservation is replaced by the measured usage when its response ends.
//!
//! What each counter measures:
//!
//! - `requests`: `1` per forwarded request;
//! - `request_bytes`: body bytes sent upstream (estimated from
//!   `Content-Length` or the buffered body);
//! - `response_bytes`: body bytes received from upstream (estimated `0`: a
//!   counter at its limit still refuses);
//! - `output_tokens`: the provider's count (estimated from the request's
//!   output-token cap, `1` when it sets none);
//! - `input_tokens`: the provider's count (estimated at one token per four
//!   request body bytes);
//! - `cost_micros`: no price source exists yet, so it is reserved and
//!   debited as `0`; a limit on it refuses only once usage was restored at
//!   or above it.
//!
//! When a response reports no token counts (an encoded body, a type that
//! carries none), a successful response is debited its estimate and a
//! failed one nothing.

mod estimate;
mod json;
mod ledger;
mod usage;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use evershell_caps::{BudgetRef, BudgetScope, Counter};
use tokio::sync::watch;

pub(crate) use estimate::{checked_output_cap, clamp_output_cap, input_estimate};
pub(crate) use ledger::{Ledger, Reservation, Want};
pub(crate) use usage::{Usage, UsageTap};

/// How large a body the proxy buffers to read a token cap: 1 MiB. A
/// request of a capability with token budgets and a larger body is refused
/// as `body_too_large`.
pub(crate) const TOKEN_BODY_LIMIT: usize = 1024 * 1024;

/// One budget counter of a workspace, as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetCounter {
    pub capability: String,
    pub counter: Counter,
    pub per: BudgetScope,
    pub limit: u64,
    /// Measured usage, in the current task for `per: task`.
    pub used: u64,
    /// Held by requests in flight.
    pub reserved: u64,
    /// What new requests may still take: `limit - used - reserved`, never
    /// negative.
    pub remaining: u64,
}

/// `(capability, counter, used)`: one stored counter, named as caps.yaml
/// writes it.
pub type StoredCounter = (String, String, u64);

/// What a [`BudgetStore`] call returns.
pub type BudgetStoreFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, BudgetStoreError>> + Send + 'a>>;

/// Where `per: workspace` counters are kept across proxy restarts and
/// workspace stop/resume. `load` is called once when a workspace is first
/// served by this proxy; `save` after each request that changed a counter,
/// with the counter's new total (never lower than a total saved before).
pub trait BudgetStore: Send + Sync {
    /// Every counter kept for the workspace.
    fn load<'a>(&'a self, workspace_id: &'a str) -> BudgetStoreFuture<'a, Vec<StoredCounter>>;

    /// Keeps `used` as the total of one counter.
    fn save<'a>(
        &'a self,
        workspace_id: &'a str,
        capability: &'a str,
        counter: &'a str,
        used: u64,
    ) -> BudgetStoreFuture<'a, ()>;
}

/// A budget store failed. On `load`, the workspace's budgeted requests are
/// refused (`budget_unavailable`) until it is served again.
#[derive(Debug, thiserror::Error)]
#[error("budget store of workspace {workspace_id}: unavailable")]
pub struct BudgetStoreError {
    pub workspace_id: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A workspace's ledger with its persistence.
pub(crate) struct WorkspaceBudgets {
    pub workspace_id: String,
    pub ledger: Arc<Ledger>,
    store: Option<Arc<dyn BudgetStore>>,
    /// Whether stored usage is in the ledger.
    loaded: watch::Sender<Load>,
    /// Serialises saves, so that a stored total never goes back.
    saving: tokio::sync::Mutex<()>,
    /// The task of the binding served last: `per: task` counters follow
    /// it.
    task: Mutex<Option<watch::Receiver<Option<String>>>>,
}

/// What a forwarded request measurably used, for its reconciliation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    /// Request body bytes sent upstream.
    pub sent: u64,
    /// Response body bytes received from upstream.
    pub received: u64,
    /// What the response reported, when it was read.
    pub usage: Usage,
    /// Whether the upstream answered with a 2xx status: a failed response
    /// that reports no tokens is taken to have used none.
    pub success: bool,
}

/// Where loading stored usage stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Load {
    Pending,
    Ready,
    Failed,
}

impl WorkspaceBudgets {
    /// A ledger for `workspace_id`; with a store, usage must be loaded
    /// ([`WorkspaceBudgets::load`]) before requests can reserve.
    pub(crate) fn new(
        workspace_id: String,
        store: Option<Arc<dyn BudgetStore>>,
    ) -> WorkspaceBudgets {
        let state = if store.is_some() {
            Load::Pending
        } else {
            Load::Ready
        };
        WorkspaceBudgets {
            workspace_id,
            ledger: Arc::new(Ledger::default()),
            store,
            loaded: watch::Sender::new(state),
            saving: tokio::sync::Mutex::new(()),
            task: Mutex::new(None),
        }
    }

    /// Follows the task of the binding now served.
    pub(crate) fn follow(&self, task: watch::Receiver<Option<String>>) {
        *self.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    /// The task current in the served binding.
    pub(crate) fn current_task(&self) -> Option<String> {
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner());
        task.as_ref().and_then(|rx| rx.borrow().clone())
    }

    /// Whether stored usage must be (re)loaded: never loaded yet, or the
    /// last load failed. Marks the load as pending.
    pub(crate) fn begin_load(&self, fresh: bool) -> bool {
        if self.store.is_none() {
            return false;
        }
        fresh
            || self.loaded.send_if_modified(|state| {
                let failed = *state == Load::Failed;
                if failed {
                    *state = Load::Pending;
                }
                failed
            })
    }

    /// Reads stored usage into the ledger.
    pub(crate) async fn load(&self) {
        let Some(store) = &self.store else {
            return;
        };
        match store.load(&self.workspace_id).await {
            Ok(stored) => {
                self.ledger.restore(&stored);
                self.loaded.send_replace(Load::Ready);
            }
            Err(error) => {
                // Budgeted requests are refused until the workspace is
                // served again.
                tracing::error!(%error, "stored budget usage unreadable");
                self.loaded.send_replace(Load::Failed);
            }
        }
    }

    /// Waits until stored usage is loaded; `false` when it could not be.
    pub(crate) async fn ready(&self) -> bool {
        let mut loaded = self.loaded.subscribe();
        let state = loaded.wait_for(|state| *state != Load::Pending).await;
        state.is_ok_and(|state| *state == Load::Ready)
    }

    /// Keeps the new totals of `per: workspace` counters in the store.
    pub(crate) async fn persist(&self, counters: Vec<(String, Counter, u64)>) {
        let Some(store) = &self.store else {
            return;
        };
        let _turn = self.saving.lock().await;
        for (capability, counter, _) in counters {
            // The total now, not the one when the request committed: a
            // later request may have saved a larger one already.
            let Some(used) = self.ledger.used(&capability, counter) else {
                continue;
            };
            let saved = store
                .save(&self.workspace_id, &capability, counter.as_str(), used)
                .await;
            if let Err(error) = saved {
                tracing::warn!(%error, capability, %counter, "budget usage not saved");
            }
        }
    }
}

/// Whether any of `budgets` counts tokens, so that the request's body must
/// be read for its cap.
pub(crate) fn counts_tokens(budgets: &[BudgetRef]) -> bool {
    budgets.iter().any(|b| b.counter.is_token())
}

/// What a request asks of `budgets` before it is sent: `length` is its
/// body's size as far as known, `body` the whole body when it was read.
pub(crate) fn wants(budgets: &[BudgetRef], length: u64, body: Option<&[u8]>) -> Vec<Want> {
    budgets
        .iter()
        .map(|b| Want {
            capability: b.capability.clone(),
            counter: b.counter,
            amount: match b.counter {
                Counter::Requests => 1,
                Counter::RequestBytes => length,
                Counter::InputTokens => input_estimate(length),
                // Checked before reserving: the body sets a cap (see
                // `checked_output_cap`).
                Counter::OutputTokens => checked_output_cap(body).unwrap_or(u64::MAX),
                Counter::ResponseBytes | Counter::CostMicros => 0,
            },
        })
        .collect()
}

impl Measured {
    /// What the request used of `counter`; `held` is what was reserved
    /// for it.
    pub(crate) fn amount(&self, counter: Counter, held: u64) -> u64 {
        let reported = |count: Option<u64>| match count {
            Some(count) => count,
            None if self.success => held,
            None => 0,
        };
        match counter {
            Counter::Requests => 1,
            Counter::RequestBytes => self.sent,
            Counter::ResponseBytes => self.received,
            Counter::InputTokens => reported(self.usage.input_tokens),
            Counter::OutputTokens => reported(self.usage.output_tokens),
            Counter::CostMicros => 0,
        }
    }
}
