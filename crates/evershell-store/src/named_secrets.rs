//! Org secrets: opaque named values that transforms reference as
//! `secrets["name"]`. Only names and timestamps are ever listed; values are
//! encrypted (see `secrets`) and read only by the proxy.

use chrono::Utc;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::secrets::MasterKey;
use crate::{ts, Result, Store, StoreError};

/// What `GET /v1/secrets` shows of a secret.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SecretMeta {
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: String,
}

fn value_ref(org_id: &str, name: &str) -> String {
    format!("secret:{org_id}:{name}")
}

impl Store {
    /// Stores secret `name` of `org_id`. With `replace` false an existing
    /// secret is a `Conflict`; with `replace` true its value is replaced.
    pub async fn put_named_secret(
        &self,
        master: &MasterKey,
        org_id: &str,
        name: &str,
        value: &[u8],
        created_by: &str,
        replace: bool,
    ) -> Result<()> {
        let reference = value_ref(org_id, name);
        let now = ts(&Utc::now());
        let exists = self.secret_meta(org_id, name).await?.is_some();
        if exists && !replace {
            return Err(StoreError::Conflict(format!("secret {name:?}")));
        }
        self.put_secret(master, &reference, value).await?;
        sqlx::query(
            "INSERT INTO secrets (org_id, name, value_ref, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT(org_id, name) DO UPDATE SET updated_at = excluded.updated_at",
        )
        .bind(org_id)
        .bind(name)
        .bind(&reference)
        .bind(created_by)
        .bind(&now)
        .bind(&now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn secret_meta(&self, org_id: &str, name: &str) -> Result<Option<SecretMeta>> {
        let row: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT name, created_at, updated_at, created_by FROM secrets WHERE org_id = $1 AND name = $2",
        )
        .bind(org_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(
            row.map(|(name, created_at, updated_at, created_by)| SecretMeta {
                name,
                created_at,
                updated_at,
                created_by,
            }),
        )
    }

    pub async fn list_secrets(&self, org_id: &str) -> Result<Vec<SecretMeta>> {
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT name, created_at, updated_at, created_by FROM secrets WHERE org_id = $1 ORDER BY name",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(name, created_at, updated_at, created_by)| SecretMeta {
                name,
                created_at,
                updated_at,
                created_by,
            })
            .collect())
    }

    /// The decrypted value of secret `name`, if it exists.
    pub async fn named_secret(
        &self,
        master: &MasterKey,
        org_id: &str,
        name: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        if self.secret_meta(org_id, name).await?.is_none() {
            return Ok(None);
        }
        self.get_secret(master, &value_ref(org_id, name)).await
    }

    /// Deletes secret `name`; whether it existed.
    pub async fn delete_named_secret(&self, org_id: &str, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM secrets WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .execute(&self.pool)
            .await?;
        self.delete_secret(&value_ref(org_id, name)).await?;
        Ok(done.rows_affected() > 0)
    }

    /// `per: workspace` budget counters of a workspace:
    /// `(capability, counter, used)`.
    pub async fn budget_counters(&self, workspace_id: &str) -> Result<Vec<(String, String, u64)>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT capability, counter, used FROM budget_counters WHERE workspace_id = $1",
        )
        .bind(workspace_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(c, n, u)| (c, n, u.max(0) as u64))
            .collect())
    }

    pub async fn save_budget_counter(
        &self,
        workspace_id: &str,
        capability: &str,
        counter: &str,
        used: u64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO budget_counters (workspace_id, capability, counter, used) VALUES ($1, $2, $3, $4) \
             ON CONFLICT(workspace_id, capability, counter) DO UPDATE SET used = excluded.used",
        )
        .bind(workspace_id)
        .bind(capability)
        .bind(counter)
        .bind(i64::try_from(used).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
