//! Configuration resources stored as JSON documents: providers, agent roles
//! and credentials.

use serde::de::DeserializeOwned;
use serde::Serialize;

use evershell_core::AuditEvent;

use crate::{Result, Store};

/// A table holding `(id, org_id, name, doc, archived_at)` rows.
#[derive(Debug, Clone, Copy)]
pub enum DocTable {
    Providers,
    AgentRoles,
    Credentials,
}

impl DocTable {
    fn name(self) -> &'static str {
        match self {
            DocTable::Providers => "providers",
            DocTable::AgentRoles => "agent_roles",
            DocTable::Credentials => "credentials",
        }
    }

    fn archivable(self) -> bool {
        !matches!(self, DocTable::Credentials)
    }
}

impl Store {
    /// Inserts a document together with the audit rows reporting it, in
    /// one transaction; a name already used in the org is `Conflict`.
    pub async fn insert_doc<T: Serialize>(
        &self,
        table: DocTable,
        id: &str,
        org_id: &str,
        name: &str,
        doc: &T,
        rows: &[AuditEvent],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "INSERT INTO {} (id, org_id, name, doc) VALUES ($1, $2, $3, $4)",
            table.name()
        );
        let result = sqlx::query(&sql)
            .bind(id)
            .bind(org_id)
            .bind(name)
            .bind(serde_json::to_string(doc)?)
            .execute(&mut *tx)
            .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(crate::StoreError::Conflict(format!(
                    "{} {name:?}",
                    table.name()
                )));
            }
            other => other.map(drop)?,
        }
        crate::audit::insert_rows(&mut tx, self.backend, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces document `id` of `org_id` (its name may change) together
    /// with the audit rows reporting the change; a name already used by
    /// another document of the org is `Conflict`; `false` when the document
    /// does not exist.
    pub async fn replace_doc<T: Serialize>(
        &self,
        table: DocTable,
        org_id: &str,
        id: &str,
        name: &str,
        doc: &T,
        rows: &[AuditEvent],
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let sql = format!(
            "UPDATE {} SET name = $1, doc = $2 WHERE org_id = $3 AND id = $4",
            table.name()
        );
        let result = sqlx::query(&sql)
            .bind(name)
            .bind(serde_json::to_string(doc)?)
            .bind(org_id)
            .bind(id)
            .execute(&mut *tx)
            .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(crate::StoreError::Conflict(format!(
                    "{} {name:?}",
                    table.name()
                )));
            }
            Err(e) => return Err(e.into()),
            Ok(done) if done.rows_affected() == 0 => return Ok(false),
            Ok(_) => {}
        }
        crate::audit::insert_rows(&mut tx, self.backend, rows).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The document of `org_id` whose id or name is `key`.
    pub async fn get_doc<T: DeserializeOwned>(
        &self,
        table: DocTable,
        org_id: &str,
        key: &str,
    ) -> Result<Option<T>> {
        let sql = format!(
            "SELECT doc FROM {} WHERE org_id = $1 AND (id = $2 OR name = $2) ORDER BY id LIMIT 1",
            table.name()
        );
        let row: Option<(String,)> = sqlx::query_as(&sql)
            .bind(org_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|(doc,)| serde_json::from_str(&doc).map_err(Into::into))
            .transpose()
    }

    /// Every document of `org_id`, oldest first; archived ones only when
    /// `include_archived`.
    pub async fn list_docs<T: DeserializeOwned>(
        &self,
        table: DocTable,
        org_id: &str,
        include_archived: bool,
    ) -> Result<Vec<T>> {
        let archived = if table.archivable() && !include_archived {
            " AND archived_at IS NULL"
        } else {
            ""
        };
        let sql = format!(
            "SELECT doc FROM {} WHERE org_id = $1{archived} ORDER BY id",
            table.name()
        );
        let rows: Vec<(String,)> = sqlx::query_as(&sql)
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|(doc,)| serde_json::from_str(&doc).map_err(Into::into))
            .collect()
    }

    /// Deletes the document `id` of `org_id` together with writing the
    /// audit rows reporting it; whether a document was removed (rows are
    /// written only then).
    pub async fn delete_doc(
        &self,
        table: DocTable,
        org_id: &str,
        id: &str,
        rows: &[AuditEvent],
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let sql = format!("DELETE FROM {} WHERE org_id = $1 AND id = $2", table.name());
        let done = sqlx::query(&sql)
            .bind(org_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        crate::audit::insert_rows(&mut tx, self.backend, rows).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// One document to rewrite in [`Store::update_docs`]: its new JSON and its
/// `archived_at` column (RFC 3339, or `None` when active).
pub struct DocUpdate {
    pub table: DocTable,
    pub id: String,
    pub doc: serde_json::Value,
    pub archived_at: Option<String>,
}

impl Store {
    /// Rewrites documents of `org_id` and writes the audit rows that report
    /// the change, all in one transaction (an archive that cascades to
    /// roles is all or nothing).
    pub async fn update_docs(
        &self,
        org_id: &str,
        updates: &[DocUpdate],
        rows: &[AuditEvent],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for update in updates {
            let archived = if update.table.archivable() {
                ", archived_at = $2"
            } else {
                ""
            };
            let sql = if archived.is_empty() {
                format!(
                    "UPDATE {} SET doc = $1 WHERE org_id = $2 AND id = $3",
                    update.table.name()
                )
            } else {
                format!(
                    "UPDATE {} SET doc = $1{archived} WHERE org_id = $3 AND id = $4",
                    update.table.name()
                )
            };
            let mut query = sqlx::query(&sql).bind(serde_json::to_string(&update.doc)?);
            if !archived.is_empty() {
                query = query.bind(update.archived_at.clone());
            }
            query
                .bind(org_id)
                .bind(&update.id)
                .execute(&mut *tx)
                .await?;
        }
        crate::audit::insert_rows(&mut tx, self.backend, rows).await?;
        tx.commit().await?;
        Ok(())
    }
}
