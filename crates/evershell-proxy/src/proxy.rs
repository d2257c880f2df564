//! The proxy: what every workspace it serves shares (the platform CA and its
//! leaf cache, upstream pools, the audit sink, the credential and secret
//! sources, the budget ledgers).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use evershell_core::net::EgressListeners;
use evershell_core::AuditSink;

use crate::audit::AuditWriter;
use crate::binding::WorkspaceBinding;
use crate::budget::{BudgetCounter, BudgetStore, WorkspaceBudgets};
use crate::ca::{CertificateAuthority, LeafCache};
use crate::config::ProxyConfig;
use crate::credentials::CredentialSource;
use crate::forward::Upstreams;
use crate::intercept::{self, ServeHandle};
use crate::secrets::{NoSecrets, SecretSource};

/// The egress proxy of an installation.
pub struct Proxy {
    pub(crate) config: ProxyConfig,
    pub(crate) leaves: LeafCache,
    pub(crate) audit: AuditWriter,
    pub(crate) credentials: Arc<dyn CredentialSource>,
    pub(crate) secrets: Arc<dyn SecretSource>,
    pub(crate) upstreams: Upstreams,
    budget_store: Option<Arc<dyn BudgetStore>>,
    /// One ledger per workspace served since start (or since
    /// [`Proxy::forget_budget`]); it outlives serving, so that usage
    /// survives stop and resume.
    ledgers: Mutex<HashMap<String, Arc<WorkspaceBudgets>>>,
}

/// A proxy with optional parts: see [`Proxy::builder`].
pub struct ProxyBuilder {
    config: ProxyConfig,
    ca: CertificateAuthority,
    audit: Arc<dyn AuditSink>,
    credentials: Arc<dyn CredentialSource>,
    secrets: Option<Arc<dyn SecretSource>>,
    budget_store: Option<Arc<dyn BudgetStore>>,
}

impl Proxy {
    /// A proxy presenting leaves signed by `ca`, writing rows to `audit`
    /// and stamping credentials from `credentials`; no secrets (transforms
    /// that read one fail closed) and budgets kept in memory only. Loads
    /// the OS trust store once, here.
    pub fn new(
        config: ProxyConfig,
        ca: CertificateAuthority,
        audit: Arc<dyn AuditSink>,
        credentials: Arc<dyn CredentialSource>,
    ) -> Arc<Proxy> {
        Proxy::builder(config, ca, audit, credentials).build()
    }

    /// Like [`Proxy::new`], with the optional parts set on the builder.
    pub fn builder(
        config: ProxyConfig,
        ca: CertificateAuthority,
        audit: Arc<dyn AuditSink>,
        credentials: Arc<dyn CredentialSource>,
    ) -> ProxyBuilder {
        ProxyBuilder {
            config,
            ca,
            audit,
            credentials,
            secrets: None,
            budget_store: None,
        }
    }

    /// Serves one workspace's egress on `listeners` until the returned
    /// handle is dropped, which ends every task of the workspace (accept
    /// loops, connections, streams, the resolver). Must be called inside a
    /// tokio runtime. A listener that cannot be registered with the runtime
    /// is logged and skipped.
    ///
    /// The workspace's budgets take the binding's policy; the first time a
    /// workspace is served (or after its stored usage failed to load),
    /// `per: workspace` usage is loaded from the budget store, and budgeted
    /// requests wait for it.
    pub fn serve(
        self: &Arc<Self>,
        binding: Arc<WorkspaceBinding>,
        listeners: EgressListeners,
    ) -> ServeHandle {
        let budgets = self.workspace_budgets(&binding);
        intercept::serve(self.clone(), binding, budgets, listeners)
    }

    /// Every budget counter of workspace `workspace_id`, in capability and
    /// counter order; empty for a workspace this proxy has not served.
    /// `per: task` counters are those of the task running now.
    pub fn budget(&self, workspace_id: &str) -> Vec<BudgetCounter> {
        let Some(budgets) = self.ledgers().get(workspace_id).cloned() else {
            return Vec::new();
        };
        let task = budgets.current_task();
        budgets.ledger.snapshot(task.as_deref())
    }

    /// Drops the in-memory ledger of a deleted workspace. Requests still
    /// in flight settle against the dropped ledger.
    pub fn forget_budget(&self, workspace_id: &str) {
        self.ledgers().remove(workspace_id);
    }

    fn workspace_budgets(&self, binding: &WorkspaceBinding) -> Arc<WorkspaceBudgets> {
        let (budgets, fresh) = {
            let mut ledgers = self.ledgers();
            match ledgers.get(&binding.workspace_id) {
                Some(budgets) => (budgets.clone(), false),
                None => {
                    let id = binding.workspace_id.clone();
                    let budgets = Arc::new(WorkspaceBudgets::new(id, self.budget_store.clone()));
                    ledgers.insert(binding.workspace_id.clone(), budgets.clone());
                    (budgets, true)
                }
            }
        };
        budgets.ledger.configure(&binding.policy);
        budgets.follow(binding.task_id.clone());
        if budgets.begin_load(fresh) {
            let loading = budgets.clone();
            tokio::spawn(async move { loading.load().await });
        }
        budgets
    }

    fn ledgers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<WorkspaceBudgets>>> {
        // Every critical section is one map operation.
        self.ledgers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ProxyBuilder {
    /// Where transforms read `secrets["name"]`.
    pub fn secrets(mut self, secrets: Arc<dyn SecretSource>) -> ProxyBuilder {
        self.secrets = Some(secrets);
        self
    }

    /// Where `per: workspace` budget usage is kept.
    pub fn budget_store(mut self, store: Arc<dyn BudgetStore>) -> ProxyBuilder {
        self.budget_store = Some(store);
        self
    }

    pub fn build(self) -> Arc<Proxy> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(Proxy {
            leaves: LeafCache::new(self.ca, provider.clone()),
            upstreams: Upstreams::new(&self.config, provider),
            audit: AuditWriter::new(self.audit),
            credentials: self.credentials,
            secrets: self.secrets.unwrap_or_else(|| Arc::new(NoSecrets)),
            budget_store: self.budget_store,
            ledgers: Mutex::new(HashMap::new()),
            config: self.config,
        })
    }
}
