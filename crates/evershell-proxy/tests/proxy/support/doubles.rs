//! In-memory doubles of the proxy's own interfaces: the audit sink and the
//! credential source.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evershell_core::audit::AuditError;
use evershell_core::{AuditEvent, AuditSink};
use evershell_proxy::{CredentialError, CredentialSource, ResolvedCredential};
use tokio::sync::watch;

/// The API key the credential source hands out; must never reach the agent.
pub const CANARY: &str = "sk-canary-9f8e7d6c5b4a";

/// Rows kept in memory. `record` waits while the gate is closed and fails
/// while `failing` is set.
pub struct MemoryAudit {
    rows: Mutex<Vec<AuditEvent>>,
    failing: AtomicBool,
    gate: watch::Sender<bool>,
}

/// Credentials by name; a name that is absent is `NotFound`.
pub struct MemoryCredentials {
    entries: HashMap<String, (String, String)>,
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
            let (provider, secret) = self.entries.get(name).ok_or(CredentialError::NotFound {
                name: name.to_owned(),
            })?;
            Ok(ResolvedCredential {
                kind: "api_key".into(),
                provider: provider.clone(),
                secret: zeroize::Zeroizing::new(secret.clone()),
            })
        })
    }
}

impl MemoryCredentials {
    /// `(name, provider, secret)` triples, all of kind `api_key`.
    pub fn new(entries: &[(&str, &str, &str)]) -> MemoryCredentials {
        let entries = entries
            .iter()
            .map(|(name, provider, secret)| {
                (name.to_string(), (provider.to_string(), secret.to_string()))
            })
            .collect();
        MemoryCredentials { entries }
    }
}
