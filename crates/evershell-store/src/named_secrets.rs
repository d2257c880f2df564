//! Org secrets: opaque named values that transforms reference as
//! `secrets["name"]`. Only names and timestamps are ever listed; values are
//! encrypted (see `secrets`) and read only by the proxy.

use chrono::Utc;
use evershell_core::AuditEvent;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::secrets::MasterKey;
use crate::{ts, Result, Store, StoreError};

/// What `GET /v1/secrets` shows of a secret.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct SecretMeta {
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: String,
}

/// A secret to store.
pub struct NewSecret<'a> {
    pub org_id: &'a str,
    pub name: &'a str,
    pub value: &'a [u8],
    pub created_by: &'a str,
    /// Replace an existing value instead of refusing with `Conflict`.
    pub replace: bool,
}

fn value_ref(org_id: &str, name: &str) -> String {
    format!("secret:{org_id}:{name}")
}

impl Store {
    /// Stores secret `name` of `org_id` together with the audit rows that
    /// report it, in one transaction. With `replace` false an existing
    /// secret is a `Conflict` (decided by the insert itself, so two racing
    /// creators cannot both succeed); with `replace` true its value is
    /// replaced.
    pub async fn put_named_secret(
        &self,
        master: &MasterKey,
        secret: NewSecret<'_>,
        rows: &[AuditEvent],
    ) -> Result<()> {
        let NewSecret {
            org_id,
            name,
            value,
            created_by,
            replace,
        } = secret;
        let reference = value_ref(org_id, name);
        let (wrapped, ciphertext) = crate::secrets::seal_value(master, &reference, value)?;
        let now = ts(&Utc::now());
        let on_conflict = if replace {
            "DO UPDATE SET updated_at = excluded.updated_at"
        } else {
            "DO NOTHING"
        };
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO secrets (org_id, name, value_ref, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT(org_id, name) {on_conflict}"
        ))
        .bind(org_id)
        .bind(name)
        .bind(&reference)
        .bind(created_by)
        .bind(&now)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("secret {name:?}")));
        }
        sqlx::query(crate::secrets::UPSERT_VALUE)
            .bind(&reference)
            .bind(wrapped)
            .bind(ciphertext)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        crate::audit::insert_rows(&mut tx, self.backend, rows).await?;
        tx.commit().await?;
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

    /// Deletes secret `name` with the audit rows that report it, in one
    /// transaction; whether it existed (rows are written only then).
    pub async fn delete_named_secret(
        &self,
        org_id: &str,
        name: &str,
        rows: &[AuditEvent],
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query("DELETE FROM secrets WHERE org_id = $1 AND name = $2")
            .bind(org_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM secret_values WHERE ref = $1")
            .bind(value_ref(org_id, name))
            .execute(&mut *tx)
            .await?;
        crate::audit::insert_rows(&mut tx, self.backend, rows).await?;
        tx.commit().await?;
        Ok(true)
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
