//! OpenID Connect sign-in state: flows in progress (one row per `state`
//! handed to the identity provider, used once) and the provider accounts
//! users signed in with.

use chrono::{DateTime, Utc};

use crate::{ts, Result, Store};

/// What a sign-in flow must remember between the redirect to the provider
/// and the provider's redirect back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcFlow {
    /// The org slug the person asked to act in; their oldest membership
    /// when `None`.
    pub org_slug: Option<String>,
    /// Where to send the browser afterwards (a relative path).
    pub return_to: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier (RFC 7636).
    pub verifier: String,
}

/// The outcome of [`Store::link_oidc_subject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OidcLink {
    /// The user already signed in with this subject before.
    Known,
    /// First sign-in of the user through this issuer: the subject is now
    /// recorded.
    Recorded,
    /// The user signed in through this issuer before with another subject.
    OtherSubject,
    /// The subject is recorded for another user.
    OtherUser,
}

impl Store {
    /// Records a flow under `state_hash`, valid until `expires_at`, and
    /// drops the flows that expired before `now`.
    pub async fn insert_oidc_flow(
        &self,
        state_hash: &str,
        flow: &OidcFlow,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query("DELETE FROM oidc_flows WHERE expires_at <= $1")
            .bind(ts(&now))
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO oidc_flows \
             (state_hash, org_slug, return_to, nonce, verifier, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(state_hash)
        .bind(flow.org_slug.clone())
        .bind(&flow.return_to)
        .bind(&flow.nonce)
        .bind(&flow.verifier)
        .bind(ts(&now))
        .bind(ts(&expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes and returns the flow recorded under `state_hash`. A flow is
    /// returned at most once, by one replica, and never after its expiry
    /// (`None` then, as for an unknown state).
    pub async fn take_oidc_flow(
        &self,
        state_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<OidcFlow>> {
        // One statement deletes and reads, so two replicas racing on the
        // same state cannot both get the row.
        let row: Option<(Option<String>, String, String, String, String)> = sqlx::query_as(
            "DELETE FROM oidc_flows WHERE state_hash = $1 \
             RETURNING org_slug, return_to, nonce, verifier, expires_at",
        )
        .bind(state_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((org_slug, return_to, nonce, verifier, expires_at)) = row else {
            return Ok(None);
        };
        if expires_at <= ts(&now) {
            return Ok(None);
        }
        Ok(Some(OidcFlow {
            org_slug,
            return_to,
            nonce,
            verifier,
        }))
    }

    /// Checks `subject` of `issuer` against the subject recorded for
    /// `user_id`, recording it on the user's first sign-in through the
    /// issuer.
    pub async fn link_oidc_subject(
        &self,
        issuer: &str,
        subject: &str,
        user_id: &str,
    ) -> Result<OidcLink> {
        if let Some(link) = self.oidc_link(issuer, subject, user_id).await? {
            return Ok(link);
        }
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO oidc_identities (issuer, subject, user_id, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(issuer)
        .bind(subject)
        .bind(user_id)
        .bind(ts(&Utc::now()))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 1 {
            // The provider's verified email now vouches for the account. A
            // password it had may have been chosen by whoever held an
            // invitation for that email (invitations prove nothing about
            // the email), so it stops working: the account signs in through
            // the provider from now on.
            sqlx::query("UPDATE users SET password_hash = NULL WHERE id = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(OidcLink::Recorded);
        }
        drop(tx);
        // A concurrent first sign-in recorded something in between; rows
        // are never deleted, so it is there to compare with (and refusing
        // is the safe answer if it somehow is not).
        Ok(self
            .oidc_link(issuer, subject, user_id)
            .await?
            .unwrap_or(OidcLink::OtherUser))
    }

    /// How `subject` relates to what is recorded, or `None` when neither
    /// the user nor the subject has a row for `issuer`.
    async fn oidc_link(
        &self,
        issuer: &str,
        subject: &str,
        user_id: &str,
    ) -> Result<Option<OidcLink>> {
        let mine: Option<(String,)> = sqlx::query_as(
            "SELECT subject FROM oidc_identities WHERE issuer = $1 AND user_id = $2",
        )
        .bind(issuer)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        if let Some((recorded,)) = mine {
            return Ok(Some(if recorded == subject {
                OidcLink::Known
            } else {
                OidcLink::OtherSubject
            }));
        }
        let theirs: Option<(String,)> = sqlx::query_as(
            "SELECT user_id FROM oidc_identities WHERE issuer = $1 AND subject = $2",
        )
        .bind(issuer)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        Ok(theirs.map(|_| OidcLink::OtherUser))
    }
}
