//! Org membership management: the member list (members and pending
//! invitations), single-use invitations, role changes and removals guarded
//! so that an org always keeps an owner, and org creation and posture for
//! installation admins.
//!
//! Every change commits together with the audit rows that report it.

use chrono::{DateTime, Utc};
use evershell_core::id::{new_id, Kind};
use evershell_core::AuditEvent;
use sqlx::{Any, Transaction};

use crate::{ts, Result, Store, StoreError};

/// The member role that must never disappear from an org.
pub const OWNER: &str = "owner";

/// One row of an org's member list. Pending invitations have no `user_id`
/// (`""`) and no `accepted_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub invited_by: Option<String>,
    pub invited_at: String,
    pub accepted_at: Option<String>,
}

/// An invitation to store; only the token's hash is kept.
pub struct NewInvitation<'a> {
    pub org_id: &'a str,
    pub email: &'a str,
    pub role: &'a str,
    pub token_hash: &'a str,
    pub invited_by: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// What a membership path segment (`usr_…` or `mem_…`) names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberTarget {
    Member(MemberRecord),
    Pending(MemberRecord),
}

/// Why a membership change was refused.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("the org would be left without an owner")]
    LastOwner,
    #[error("{0} is already a member of the org")]
    AlreadyMember(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for MemberError {
    fn from(e: sqlx::Error) -> Self {
        MemberError::Store(e.into())
    }
}

/// An accepted invitation.
#[derive(Debug, Clone)]
pub struct Joined {
    pub membership_id: String,
    pub org_id: String,
    pub org_slug: String,
    pub user_id: String,
    pub email: String,
    pub role: String,
    /// Whether accepting created the user.
    pub new_user: bool,
    /// The account was already a member of the org: nothing was changed
    /// (the invitation stays pending).
    pub already_member: bool,
}

type MemberRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
);

fn record(row: MemberRow) -> MemberRecord {
    MemberRecord {
        id: row.0,
        org_id: row.1,
        user_id: row.2,
        email: row.3,
        role: row.4,
        invited_by: row.5,
        invited_at: row.6,
        accepted_at: row.7,
    }
}

const MEMBER_SELECT: &str = "SELECT m.id, m.org_id, m.user_id, u.email, m.role, m.invited_by, \
     m.created_at, m.accepted_at FROM memberships m JOIN users u ON u.id = m.user_id";

const PENDING_SELECT: &str = "SELECT id, org_id, '', email, role, invited_by, invited_at, \
     accepted_at FROM invitations \
     WHERE accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1";

impl Store {
    /// The members of `org_id` and its pending invitations, oldest first.
    pub async fn list_members(&self, org_id: &str) -> Result<Vec<MemberRecord>> {
        let now = ts(&Utc::now());
        let sql = format!(
            "{PENDING_SELECT} AND org_id = $2 UNION ALL {MEMBER_SELECT} WHERE m.org_id = $2 \
             ORDER BY 7, 1"
        );
        let rows: Vec<MemberRow> = sqlx::query_as(&sql)
            .bind(&now)
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(record).collect())
    }

    /// The member (by user id or membership id) or pending invitation (by
    /// its id) of `org_id` that `key` names.
    pub async fn member_target(&self, org_id: &str, key: &str) -> Result<Option<MemberTarget>> {
        let sql = format!("{MEMBER_SELECT} WHERE m.org_id = $1 AND (m.user_id = $2 OR m.id = $2)");
        let member: Option<MemberRow> = sqlx::query_as(&sql)
            .bind(org_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = member {
            return Ok(Some(MemberTarget::Member(record(row))));
        }
        let sql = format!("{PENDING_SELECT} AND org_id = $2 AND id = $3");
        let pending: Option<MemberRow> = sqlx::query_as(&sql)
            .bind(ts(&Utc::now()))
            .bind(org_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(pending.map(|row| MemberTarget::Pending(record(row))))
    }

    /// Stores an invitation (replacing any pending one for the same email)
    /// with its audit rows. Returns the invitation's id.
    pub async fn create_invitation(
        &self,
        invite: NewInvitation<'_>,
        rows: impl FnOnce(&str) -> Vec<AuditEvent>,
    ) -> std::result::Result<String, MemberError> {
        let now = ts(&Utc::now());
        let id = new_id(Kind::Membership);
        let mut tx = self.pool.begin().await?;
        // One invitation change of an org at a time (PostgreSQL); on SQLite
        // the first write below takes the single write lock.
        self.backend.lock_org(&mut tx, invite.org_id).await?;
        sqlx::query(
            "UPDATE invitations SET revoked_at = $1 WHERE org_id = $2 AND email = $3 \
             AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(&now)
        .bind(invite.org_id)
        .bind(invite.email)
        .execute(&mut *tx)
        .await?;
        let member: Option<(String,)> = sqlx::query_as(
            "SELECT m.id FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 AND u.email = $2",
        )
        .bind(invite.org_id)
        .bind(invite.email)
        .fetch_optional(&mut *tx)
        .await?;
        if member.is_some() {
            return Err(MemberError::AlreadyMember(invite.email.to_string()));
        }
        sqlx::query(
            "INSERT INTO invitations (id, org_id, email, role, token_hash, invited_by, \
             invited_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(invite.org_id)
        .bind(invite.email)
        .bind(invite.role)
        .bind(invite.token_hash)
        .bind(invite.invited_by)
        .bind(&now)
        .bind(ts(&invite.expires_at))
        .execute(&mut *tx)
        .await?;
        crate::audit::insert_rows(&mut tx, self.backend, &rows(&id)).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The live (pending, unexpired) invitation whose token hashes to
    /// `token_hash`: `(org slug, email, role, expires_at, org posture)`.
    pub async fn invitation_by_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<(String, String, String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT o.slug, i.email, i.role, i.expires_at, o.posture FROM invitations i \
             JOIN orgs o ON o.id = i.org_id WHERE i.token_hash = $1 \
             AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > $2",
        )
        .bind(token_hash)
        .bind(ts(&Utc::now()))
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Accepts the invitation whose token hashes to `token_hash`, once:
    /// creates the user when the email has none (with `password_hash`, which
    /// is ignored for an existing user) and the membership. `rows` makes the
    /// audit rows from the result. `None` when no live invitation matches.
    pub async fn accept_invitation(
        &self,
        token_hash: &str,
        password_hash: Option<&str>,
        rows: impl FnOnce(&Joined) -> Vec<AuditEvent>,
    ) -> Result<Option<Joined>> {
        let now = ts(&Utc::now());
        let mut tx = self.pool.begin().await?;
        let taken = sqlx::query(
            "UPDATE invitations SET accepted_at = $1 WHERE token_hash = $2 \
             AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(&now)
        .bind(token_hash)
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() != 1 {
            return Ok(None);
        }
        let (id, org_id, org_slug, email, role, invited_by, invited_at): (
            String,
            String,
            String,
            String,
            String,
            String,
            String,
        ) = sqlx::query_as(
            "SELECT i.id, i.org_id, o.slug, i.email, i.role, i.invited_by, i.invited_at \
             FROM invitations i JOIN orgs o ON o.id = i.org_id WHERE i.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_one(&mut *tx)
        .await?;
        let existing: Option<(String,)> = sqlx::query_as("SELECT id FROM users WHERE email = $1")
            .bind(&email)
            .fetch_optional(&mut *tx)
            .await?;
        let (user_id, new_user) = match existing {
            Some((user_id,)) => (user_id, false),
            None => {
                let user_id = new_id(Kind::User);
                sqlx::query(
                    "INSERT INTO users (id, email, password_hash, created_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&user_id)
                .bind(&email)
                .bind(password_hash)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
                (user_id, true)
            }
        };
        let inserted = sqlx::query(
            "INSERT INTO memberships (id, org_id, user_id, role, created_at, invited_by, \
             accepted_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT(org_id, user_id) DO NOTHING",
        )
        .bind(&id)
        .bind(&org_id)
        .bind(&user_id)
        .bind(&role)
        .bind(&invited_at)
        .bind(&invited_by)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        let joined = Joined {
            membership_id: id,
            org_id,
            org_slug,
            user_id,
            email,
            role,
            new_user,
            already_member: inserted.rows_affected() == 0,
        };
        if joined.already_member {
            // Dropping the transaction rolls the acceptance back.
            return Ok(Some(joined));
        }
        crate::audit::insert_rows(&mut tx, self.backend, &rows(&joined)).await?;
        tx.commit().await?;
        Ok(Some(joined))
    }

    /// Revokes the pending invitation `id` of `org_id`; `false` when none.
    pub async fn revoke_invitation(
        &self,
        org_id: &str,
        id: &str,
        rows: &[AuditEvent],
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE invitations SET revoked_at = $1 WHERE org_id = $2 AND id = $3 \
             AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(ts(&Utc::now()))
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

    /// Gives member `user_id` of `org_id` the role `role`, unless that
    /// leaves the org without an owner. `false` when not a member.
    pub async fn change_member_role(
        &self,
        org_id: &str,
        user_id: &str,
        role: &str,
        rows: &[AuditEvent],
    ) -> std::result::Result<bool, MemberError> {
        let mut tx = self.pool.begin().await?;
        self.backend.lock_org(&mut tx, org_id).await?;
        let done =
            sqlx::query("UPDATE memberships SET role = $1 WHERE org_id = $2 AND user_id = $3")
                .bind(role)
                .bind(org_id)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        keeps_an_owner(&mut tx, org_id).await?;
        crate::audit::insert_rows(&mut tx, self.backend, rows).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes member `user_id` from `org_id`, unless they are its last
    /// owner. `false` when not a member. Their sessions stop working for
    /// the org at once: every request reads the membership.
    pub async fn remove_member(
        &self,
        org_id: &str,
        user_id: &str,
        rows: &[AuditEvent],
    ) -> std::result::Result<bool, MemberError> {
        let mut tx = self.pool.begin().await?;
        self.backend.lock_org(&mut tx, org_id).await?;
        let done = sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(org_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        keeps_an_owner(&mut tx, org_id).await?;
        // What the removed person set in motion goes with them: their
        // pending invitations can no longer be accepted.
        sqlx::query(
            "UPDATE invitations SET revoked_at = $1 WHERE org_id = $2 AND invited_by = $3 \
             AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(ts(&Utc::now()))
        .bind(org_id)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        crate::audit::insert_rows(&mut tx, self.backend, rows).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Creates org `slug`; `Conflict` when the slug is taken.
    pub async fn create_org(&self, slug: &str, name: &str) -> Result<String> {
        let id = new_id(Kind::Org);
        let result =
            sqlx::query("INSERT INTO orgs (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
                .bind(&id)
                .bind(slug)
                .bind(name)
                .bind(ts(&Utc::now()))
                .execute(&self.pool)
                .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::Conflict(format!("org {slug:?}")))
            }
            other => other.map(|_| id).map_err(Into::into),
        }
    }

    /// Sets the billing posture (`active` or `suspended`) of org `slug`;
    /// `false` when there is no such org.
    pub async fn set_org_posture(&self, slug: &str, posture: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE orgs SET posture = $1 WHERE slug = $2")
            .bind(posture)
            .bind(slug)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// Fails the transaction (dropping it rolls back) when the org has no
/// owner left after its writes.
async fn keeps_an_owner(
    tx: &mut Transaction<'_, Any>,
    org_id: &str,
) -> std::result::Result<(), MemberError> {
    let (owners,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = $2")
            .bind(org_id)
            .bind(OWNER)
            .fetch_one(&mut **tx)
            .await?;
    if owners == 0 {
        return Err(MemberError::LastOwner);
    }
    Ok(())
}
