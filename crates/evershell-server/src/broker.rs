//! The credential broker's source: the proxy asks for a credential by name
//! and gets its decrypted value, for the duration of one request.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use evershell_core::model::Credential;
use evershell_proxy::{
    BudgetStore, BudgetStoreError, BudgetStoreFuture, CredentialError, CredentialSource,
    ResolvedCredential, SecretError, SecretSource, StoredCounter,
};
use evershell_store::secrets::MasterKey;
use evershell_store::{DocTable, Store};
use zeroize::Zeroizing;

pub struct StoreCredentials {
    pub store: Store,
    pub master: Arc<MasterKey>,
}

impl StoreCredentials {
    async fn lookup(
        &self,
        org_id: &str,
        name: &str,
    ) -> Result<ResolvedCredential, CredentialError> {
        let credential: Credential = self
            .store
            .get_doc(DocTable::Credentials, org_id, name)
            .await
            .map_err(|e| unavailable(name, e))?
            .ok_or_else(|| CredentialError::NotFound {
                name: name.to_string(),
            })?;
        if credential.status != "active" {
            let status = credential.status;
            return Err(CredentialError::Inactive {
                name: name.to_string(),
                status,
            });
        }
        let value = self
            .store
            .get_secret(&self.master, &credential.durable_ref)
            .await
            .map_err(|e| unavailable(name, e))?
            .ok_or_else(|| CredentialError::NotFound {
                name: name.to_string(),
            })?;
        let secret = String::from_utf8(value.to_vec()).map_err(|e| unavailable(name, e))?;
        Ok(ResolvedCredential {
            kind: credential.kind,
            provider: credential.provider,
            provider_config: credential.provider_config,
            secret: Zeroizing::new(secret),
        })
    }
}

fn unavailable(name: &str, e: impl std::error::Error + Send + Sync + 'static) -> CredentialError {
    CredentialError::Unavailable {
        name: name.to_string(),
        source: Box::new(e),
    }
}

impl CredentialSource for StoreCredentials {
    fn resolve<'a>(
        &'a self,
        org_id: &'a str,
        name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<ResolvedCredential, CredentialError>> + Send + 'a>>
    {
        Box::pin(self.lookup(org_id, name))
    }
}

/// Org secrets for transforms (`secrets["name"]`), decrypted per request.
pub struct StoreSecrets {
    pub store: Store,
    pub master: Arc<MasterKey>,
}

impl SecretSource for StoreSecrets {
    fn secret<'a>(
        &'a self,
        org_id: &'a str,
        name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Zeroizing<String>, SecretError>> + Send + 'a>> {
        Box::pin(async move {
            let value = self
                .store
                .named_secret(&self.master, org_id, name)
                .await
                .map_err(|e| SecretError::Unavailable {
                    name: name.to_string(),
                    source: Box::new(e),
                })?
                .ok_or_else(|| SecretError::NotFound {
                    name: name.to_string(),
                })?;
            String::from_utf8(value.to_vec())
                .map(Zeroizing::new)
                .map_err(|e| SecretError::Unavailable {
                    name: name.to_string(),
                    source: Box::new(e),
                })
        })
    }
}

/// `per: workspace` budget counters, kept in the database so they survive
/// sandbox and server restarts.
pub struct StoreBudgets {
    pub store: Store,
}

impl BudgetStore for StoreBudgets {
    fn load<'a>(&'a self, workspace_id: &'a str) -> BudgetStoreFuture<'a, Vec<StoredCounter>> {
        Box::pin(async move {
            self.store
                .budget_counters(workspace_id)
                .await
                .map_err(|e| BudgetStoreError {
                    workspace_id: workspace_id.to_string(),
                    source: Box::new(e),
                })
        })
    }

    fn save<'a>(
        &'a self,
        workspace_id: &'a str,
        capability: &'a str,
        counter: &'a str,
        used: u64,
    ) -> BudgetStoreFuture<'a, ()> {
        Box::pin(async move {
            self.store
                .save_budget_counter(workspace_id, capability, counter, used)
                .await
                .map_err(|e| BudgetStoreError {
                    workspace_id: workspace_id.to_string(),
                    source: Box::new(e),
                })
        })
    }
}
