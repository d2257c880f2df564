//! In-memory doubles of the proxy's own interfaces: the audit sink, the
//! credential and secret sources, and the budget store.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evershell_core::audit::AuditError;
use evershell_core::{AuditEvent, AuditSink};
use evershell_proxy::{
    BudgetStore, BudgetStoreFuture, CredentialError, CredentialSource, ResolvedCredential,
    SecretError, SecretSource, StoredCounter,
};
use tokio::sync::watch;
use zeroize::Zeroizing;

/// The API key the credential source hands out; must never reach the agent.
pub const CANARY: &str = "sk-canary-9f8e7d6c5b4a";

/// Rows kept in memory. `record` waits while the gate is closed and fails
/// while `failing` is set.
pub struct MemoryAudit {
    rows: Mutex<Vec<AuditEvent>>,
    failing: AtomicBool,
    gate: watch::Sender<bool>,
}

/// One credential of [`MemoryCredentials`].
#[derive(Debug, Clone)]
pub struct TestCredential {
    pub name: &'static str,
    pub kind: &'static str,
    pub provider: &'static str,
    pub secret: &'static str,
    pub provider_config: serde_json::Value,
}

/// Credentials by name; a name that is absent is `NotFound`.
pub struct MemoryCredentials {
    entries: HashMap<String, TestCredential>,
}

/// Secrets by name; a name that is absent is `NotFound`.
pub struct MemorySecrets {
    entries: HashMap<String, String>,
}

/// `per: workspace` budget usage kept in memory: what `load` returns and
/// every `save`, in order.
#[derive(Default)]
pub struct MemoryBudgets {
    pub stored: Mutex<Vec<(String, String, u64)>>,
    pub saves: Mutex<Vec<(String, String, String, u64)>>,
}

impl MemoryAudit {
    pub fn new() -> Arc<MemoryAudit> {
        Arc::new(MemoryAudit {
            rows: Mutex::new(Vec::new()),
            failing: AtomicBool::new(false),
            gate: watch::Sender::new(true),
        })
    }

    pub fn rows(&self) -> Vec<AuditEvent> {
        self.rows.lock().expect("rows lock").clone()
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub fn set_gate(&self, open: bool) {
        self.gate.send_replace(open);
    }

    /// Waits (up to 5 s) for a row matching `predicate`.
    pub async fn wait_for(&self, predicate: impl Fn(&AuditEvent) -> bool) -> AuditEvent {
        for _ in 0..500 {
            if let Some(row) = self.rows().into_iter().find(|r| predicate(r)) {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no matching audit row; rows: {:#?}", self.rows());
    }
}

impl AuditSink for MemoryAudit {
    fn record(
        &self,
        event: AuditEvent,
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + '_>> {
        Box::pin(async move {
            let mut gate = self.gate.subscribe();
            let _ = gate.wait_for(|open| *open).await;
            if self.failing.load(Ordering::SeqCst) {
                return Err(AuditError("store down".into()));
            }
            self.rows.lock().expect("rows lock").push(event);
            Ok(())
        })
    }
}

impl CredentialSource for MemoryCredentials {
    fn resolve<'a>(
        &'a self,
        _org_id: &'a str,
        name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<ResolvedCredential, CredentialError>> + Send + 'a>>
    {
        Box::pin(async move {
            let entry = self.entries.get(name).ok_or(CredentialError::NotFound {
                name: name.to_owned(),
            })?;
            Ok(ResolvedCredential {
                kind: entry.kind.into(),
                provider: entry.provider.into(),
                secret: Zeroizing::new(entry.secret.into()),
                provider_config: entry
                    .provider_config
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            })
        })
    }
}

impl TestCredential {
    /// An `api_key` credential.
    pub fn api_key(
        name: &'static str,
        provider: &'static str,
        secret: &'static str,
    ) -> TestCredential {
        TestCredential {
            name,
            kind: "api_key",
            provider,
            secret,
            provider_config: serde_json::json!({}),
        }
    }
}

impl MemoryCredentials {
    pub fn new(entries: &[TestCredential]) -> MemoryCredentials {
        let entries = entries
            .iter()
            .map(|entry| (entry.name.to_owned(), entry.clone()))
            .collect();
        MemoryCredentials { entries }
    }
}

impl MemorySecrets {
    pub fn new(entries: &[(&str, &str)]) -> MemorySecrets {
        let entries = entries
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        MemorySecrets { entries }
    }
}

impl SecretSource for MemorySecrets {
    fn secret<'a>(
        &'a self,
        _org_id: &'a str,
        name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Zeroizing<String>, SecretError>> + Send + 'a>> {
        Box::pin(async move {
            let value = self.entries.get(name).ok_or(SecretError::NotFound {
                name: name.to_owned(),
            })?;
            Ok(Zeroizing::new(value.clone()))
        })
    }
}

impl MemoryBudgets {
    pub fn with(stored: &[(&str, &str, u64)]) -> Arc<MemoryBudgets> {
        let stored = stored
            .iter()
            .map(|(cap, counter, used)| (cap.to_string(), counter.to_string(), *used))
            .collect();
        Arc::new(MemoryBudgets {
            stored: Mutex::new(stored),
            saves: Mutex::new(Vec::new()),
        })
    }

    pub fn saves(&self) -> Vec<(String, String, String, u64)> {
        self.saves.lock().expect("saves lock").clone()
    }
}

impl BudgetStore for MemoryBudgets {
    fn load<'a>(&'a self, _workspace_id: &'a str) -> BudgetStoreFuture<'a, Vec<StoredCounter>> {
        Box::pin(async move { Ok(self.stored.lock().expect("stored lock").clone()) })
    }

    fn save<'a>(
        &'a self,
        workspace_id: &'a str,
        capability: &'a str,
        counter: &'a str,
        used: u64,
    ) -> BudgetStoreFuture<'a, ()> {
        Box::pin(async move {
            let save = (
                workspace_id.to_owned(),
                capability.to_owned(),
                counter.to_owned(),
                used,
            );
            self.saves.lock().expect("saves lock").push(save);
            Ok(())
        })
    }
}
