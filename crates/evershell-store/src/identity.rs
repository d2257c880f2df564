//! Orgs, users, memberships and API keys.

use chrono::Utc;
use evershell_core::id::{new_id, Kind};

use crate::{ts, Result, Store};

/// What an API key authenticates as.
#[derive(Debug, Clone)]
pub struct ApiKeyAuth {
    pub key_id: String,
    pub org_id: String,
    pub org_slug: String,
    pub label: String,
    pub permission_set: String,
}

/// A key to store: only the hash of its secret is kept.
pub struct NewApiKey<'a> {
    pub org_id: &'a str,
    pub label: &'a str,
    pub prefix: &'a str,
    pub secret_hash: &'a str,
    pub permission_set: &'a str,
    pub created_by: &'a str,
}

impl Store {
    /// Returns the id of org `slug`, creating it if absent.
    pub async fn ensure_org(&self, slug: &str, name: &str) -> Result<String> {
        if let Some(id) = self.org_id_by_slug(slug).await? {
            return Ok(id);
        }
        let id = new_id(Kind::Org);
        sqlx::query("INSERT INTO orgs (id, slug, name, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT(slug) DO NOTHING")
            .bind(&id)
            .bind(slug)
            .bind(name)
            .bind(ts(&Utc::now()))
            .execute(&self.pool)
            .await?;
        Ok(self
            .org_id_by_slug(slug)
            .await?
            .expect("org exists after insert"))
    }

    pub async fn org_id_by_slug(&self, slug: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT id FROM orgs WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(id,)| id))
    }

    pub async fn org_slug(&self, org_id: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT slug FROM orgs WHERE id = $1")
            .bind(org_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(s,)| s))
    }

    /// Returns the id of the user with `email`, creating it (and its
    /// membership of `org_id` with `role`) if absent.
    pub async fn ensure_member(&self, org_id: &str, email: &str, role: &str) -> Result<String> {
        let existing: Option<(String,)> = sqlx::query_as("SELECT id FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        let user_id = match existing {
            Some((id,)) => id,
            None => {
                let id = new_id(Kind::User);
                sqlx::query("INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3)")
                    .bind(&id)
                    .bind(email)
                    .bind(ts(&Utc::now()))
                    .execute(&self.pool)
                    .await?;
                id
            }
        };
        sqlx::query(
            "INSERT INTO memberships (id, org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT(org_id, user_id) DO NOTHING",
        )
        .bind(new_id(Kind::Membership))
        .bind(org_id)
        .bind(&user_id)
        .bind(role)
        .bind(ts(&Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(user_id)
    }

    pub async fn insert_api_key(&self, key: NewApiKey<'_>) -> Result<String> {
        let id = new_id(Kind::ApiKey);
        sqlx::query(
            "INSERT INTO api_keys (id, org_id, label, prefix, secret_hash, permission_set, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(key.org_id)
        .bind(key.label)
        .bind(key.prefix)
        .bind(key.secret_hash)
        .bind(key.permission_set)
        .bind(key.created_by)
        .bind(ts(&Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// The live key whose secret hashes to `secret_hash`, if any. Revoked and
    /// expired keys are not returned. Also stamps `last_used_at`.
    pub async fn authenticate_api_key(&self, secret_hash: &str) -> Result<Option<ApiKeyAuth>> {
        let now = ts(&Utc::now());
        let row: Option<(String, String, String, String, String)> = sqlx::query_as(
            "SELECT k.id, k.org_id, o.slug, k.label, k.permission_set FROM api_keys k \
             JOIN orgs o ON o.id = k.org_id \
             WHERE k.secret_hash = $1 AND k.revoked_at IS NULL \
             AND (k.expires_at IS NULL OR k.expires_at > $2)",
        )
        .bind(secret_hash)
        .bind(&now)
        .fetch_optional(&self.pool)
        .await?;
        let Some((key_id, org_id, org_slug, label, permission_set)) = row else {
            return Ok(None);
        };
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(&now)
            .bind(&key_id)
            .execute(&self.pool)
            .await?;
        Ok(Some(ApiKeyAuth {
            key_id,
            org_id,
            org_slug,
            label,
            permission_set,
        }))
    }
}
