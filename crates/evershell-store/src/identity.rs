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
    /// The org's billing posture (`active` or `suspended`).
    pub posture: String,
}

/// A key to store: only the hash of its secret is kept.
pub struct NewApiKey<'a> {
    pub org_id: &'a str,
    pub label: &'a str,
    pub prefix: &'a str,
    pub secret_hash: &'a str,
    pub permission_set: &'a str,
    pub created_by: &'a str,
    /// After this time the key no longer authenticates.
    pub expires_at: Option<chrono::DateTime<Utc>>,
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
            "INSERT INTO api_keys (id, org_id, label, prefix, secret_hash, permission_set, created_by, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(key.org_id)
        .bind(key.label)
        .bind(key.prefix)
        .bind(key.secret_hash)
        .bind(key.permission_set)
        .bind(key.created_by)
        .bind(ts(&Utc::now()))
        .bind(key.expires_at.as_ref().map(ts))
        .execute(&self.pool)
        .await?;
        Ok(id)
    }

    /// The live key whose secret hashes to `secret_hash`, if any. Revoked and
    /// expired keys are not returned. Also stamps `last_used_at` (at most once a
    /// minute).
    pub async fn authenticate_api_key(&self, secret_hash: &str) -> Result<Option<ApiKeyAuth>> {
        let now = ts(&Utc::now());
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT k.id, k.org_id, o.slug, k.label, k.permission_set, o.posture, k.last_used_at \
             FROM api_keys k \
             JOIN orgs o ON o.id = k.org_id \
             WHERE k.secret_hash = $1 AND k.revoked_at IS NULL \
             AND (k.expires_at IS NULL OR k.expires_at > $2)",
        )
        .bind(secret_hash)
        .bind(&now)
        .fetch_optional(&self.pool)
        .await?;
        let Some((key_id, org_id, org_slug, label, permission_set, posture, last_used)) = row
        else {
            return Ok(None);
        };
        // `last_used_at` is kept to the minute: a write on every request
        // would serialise all API traffic on the database's write lock.
        let stale = last_used.is_none_or(|t| {
            crate::parse_ts(&t).map_or(true, |t| Utc::now() - t >= chrono::Duration::seconds(60))
        });
        if stale {
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(&now)
                .bind(&key_id)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(ApiKeyAuth {
            key_id,
            org_id,
            org_slug,
            label,
            permission_set,
            posture,
        }))
    }
}

/// A user's sign-in material: `password_hash` is `None` for users who sign
/// in only through an identity provider.
#[derive(Debug, Clone)]
pub struct UserLogin {
    pub user_id: String,
    pub password_hash: Option<String>,
}

/// A user's membership of one org, as a session resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipView {
    pub org_id: String,
    pub org_slug: String,
    pub user_id: String,
    pub email: String,
    pub role: String,
    /// The org's billing posture (`active` or `suspended`).
    pub posture: String,
}

/// An API key's metadata (never its secret), as `GET /v1/api-keys` lists it.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct ApiKeyMeta {
    pub id: String,
    pub label: String,
    pub prefix: String,
    pub permission_set: String,
    pub created_by: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub expires_at: Option<String>,
}

type MembershipRow = (String, String, String, String, String, String);

fn membership(row: MembershipRow) -> MembershipView {
    let (org_id, org_slug, user_id, email, role, posture) = row;
    MembershipView {
        org_id,
        org_slug,
        user_id,
        email,
        role,
        posture,
    }
}

const MEMBERSHIP_SELECT: &str =
    "SELECT m.org_id, o.slug, u.id, u.email, m.role, o.posture FROM memberships m \
     JOIN orgs o ON o.id = m.org_id JOIN users u ON u.id = m.user_id";

impl Store {
    /// The sign-in material of the user with `email`, if any.
    pub async fn user_login(&self, email: &str) -> Result<Option<UserLogin>> {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT id, password_hash FROM users WHERE email = $1")
                .bind(email)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(user_id, password_hash)| UserLogin {
            user_id,
            password_hash,
        }))
    }

    /// Replaces the password hash of user `user_id`.
    pub async fn set_password_hash(&self, user_id: &str, hash: &str) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The membership of `user_id` in `org_id`, or `None` once removed.
    pub async fn membership(&self, org_id: &str, user_id: &str) -> Result<Option<MembershipView>> {
        let sql = format!("{MEMBERSHIP_SELECT} WHERE m.org_id = $1 AND m.user_id = $2");
        let row: Option<MembershipRow> = sqlx::query_as(&sql)
            .bind(org_id)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(membership))
    }

    /// Every membership of `user_id`, oldest first.
    pub async fn memberships_of(&self, user_id: &str) -> Result<Vec<MembershipView>> {
        let sql = format!("{MEMBERSHIP_SELECT} WHERE m.user_id = $1 ORDER BY m.created_at, m.id");
        let rows: Vec<MembershipRow> = sqlx::query_as(&sql)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(membership).collect())
    }

    /// Removes `user_id` from `org_id`; returns whether a row went away.
    pub async fn remove_membership(&self, org_id: &str, user_id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The unrevoked keys of `org_id`, oldest first.
    pub async fn list_api_keys(&self, org_id: &str) -> Result<Vec<ApiKeyMeta>> {
        type Row = (
            String,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, label, prefix, permission_set, created_by, created_at, last_used_at, \
             expires_at FROM api_keys WHERE org_id = $1 AND revoked_at IS NULL \
             ORDER BY created_at, id",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ApiKeyMeta {
                id: r.0,
                label: r.1,
                prefix: r.2,
                permission_set: r.3,
                created_by: r.4,
                created_at: r.5,
                last_used_at: r.6,
                expires_at: r.7,
            })
            .collect())
    }

    /// Revokes key `id` of `org_id`; `false` when no live key of the org has
    /// that id. Revocation is read by every authentication (no cache).
    pub async fn revoke_api_key(&self, org_id: &str, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND org_id = $3 \
             AND revoked_at IS NULL",
        )
        .bind(ts(&Utc::now()))
        .bind(id)
        .bind(org_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
