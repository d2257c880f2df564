//! Session tokens: compact JWS (RFC 7515) with HMAC-SHA256 (`HS256`,
//! RFC 7518 §3.2), claims `sub` (user id), `org` (org id), `iat`, `exp` and
//! `kid`.
//!
//! Signing keys are 32 random bytes kept in the encrypted secret store
//! under `session_key/<kid>` (so that reading the database alone does not
//! let anyone forge sessions); the settings table records each key as
//! `session_key.<kid>` (its creation time) and names the key that signs in
//! `session_key_current`. [`SessionKeys::rotate`] adds a key and makes it
//! current; older keys stay and keep verifying the tokens they signed until
//! those expire. A key unknown to this process is looked up in the store, so
//! a rotation on one replica is honoured by every other.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use evershell_store::secrets::MasterKey;
use evershell_store::Store;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// How long a session token is valid: 12 hours.
pub const SESSION_LIFETIME_SECONDS: i64 = 12 * 3600;

const KEY_SETTING: &str = "session_key.";
const KEY_SECRET: &str = "session_key/";
const CURRENT: &str = "session_key_current";

/// The claims of a session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id (`usr_…`).
    pub sub: String,
    /// The org id (`org_…`) the session acts in.
    pub org: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds; the token is refused from this second on.
    pub exp: i64,
    /// The signing key's id (also in the header).
    pub kid: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
    kid: String,
}

/// Why a token was refused. Callers answer all of them with the same `401`.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("session token: malformed")]
    Malformed,
    #[error("session token: unknown key {0}")]
    UnknownKey(String),
    #[error("session token: bad signature")]
    BadSignature,
    #[error("session token: expired")]
    Expired,
    #[error("session token: key store unavailable")]
    Store(#[from] evershell_store::StoreError),
}

/// The installation's signing keys, cached from the store.
pub struct SessionKeys {
    master: Arc<MasterKey>,
    keys: RwLock<HashMap<String, Vec<u8>>>,
}

impl SessionKeys {
    /// Keys read and written through the secret store under `master`.
    pub fn new(master: Arc<MasterKey>) -> SessionKeys {
        SessionKeys {
            master,
            keys: RwLock::default(),
        }
    }

    /// Signs a token for `user_id` in `org_id`, issued at `now` (Unix
    /// seconds), creating the first signing key if there is none.
    pub async fn sign(
        &self,
        store: &Store,
        user_id: &str,
        org_id: &str,
        now: i64,
    ) -> Result<(String, Claims), TokenError> {
        let kid = self.current_kid(store).await?;
        let key = self.key(store, &kid).await?;
        let claims = Claims {
            sub: user_id.to_string(),
            org: org_id.to_string(),
            iat: now,
            exp: now + SESSION_LIFETIME_SECONDS,
            kid: kid.clone(),
        };
        let header = Header {
            alg: "HS256".into(),
            typ: "JWT".into(),
            kid,
        };
        let signing_input = format!("{}.{}", encode_json(&header), encode_json(&claims));
        let signature = B64.encode(mac(&key, &signing_input).finalize().into_bytes());
        Ok((format!("{signing_input}.{signature}"), claims))
    }

    /// The claims of `token` if its signature verifies under the key its
    /// header names and it has not expired at `now` (Unix seconds).
    pub async fn verify(&self, store: &Store, token: &str, now: i64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Header = decode_json(h)?;
        // Only HS256: a token choosing its own algorithm (`none`, RS256
        // against an HMAC key) is the classic JWT confusion attack.
        if header.alg != "HS256" {
            return Err(TokenError::Malformed);
        }
        let key = self.key(store, &header.kid).await?;
        let signature = B64.decode(s).map_err(|_| TokenError::Malformed)?;
        mac(&key, &format!("{h}.{c}"))
            .verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        let claims: Claims = decode_json(c)?;
        if claims.kid != header.kid {
            return Err(TokenError::Malformed);
        }
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// Adds a new signing key and makes it current; returns its id.
    pub async fn rotate(&self, store: &Store) -> Result<String, TokenError> {
        let kid = self.create_key(store).await?;
        store.set_setting(CURRENT, &kid).await?;
        Ok(kid)
    }

    /// Stores a new key (not yet current) and returns its id.
    async fn create_key(&self, store: &Store) -> Result<String, TokenError> {
        let kid = new_kid();
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(secret.as_mut());
        store
            .put_secret(&self.master, &format!("{KEY_SECRET}{kid}"), secret.as_ref())
            .await?;
        let created = chrono::Utc::now().to_rfc3339();
        store
            .set_setting(&format!("{KEY_SETTING}{kid}"), &created)
            .await?;
        self.write().insert(kid.clone(), secret.to_vec());
        Ok(kid)
    }

    async fn current_kid(&self, store: &Store) -> Result<String, TokenError> {
        if let Some(kid) = store.setting(CURRENT).await? {
            return Ok(kid);
        }
        // First use: two racing replicas may both create a key; the
        // conditional insert makes them agree on one current kid, and the
        // loser's key stays harmlessly unused.
        let kid = self.create_key(store).await?;
        Ok(store.setting_or_insert(CURRENT, &kid).await?)
    }

    async fn key(&self, store: &Store, kid: &str) -> Result<Vec<u8>, TokenError> {
        if let Some(key) = self.read().get(kid) {
            return Ok(key.clone());
        }
        // A kid is attacker-chosen text: only well-formed ones reach the
        // store.
        let well_formed = kid.len() == 12 && B64.decode(kid).is_ok();
        if !well_formed {
            return Err(TokenError::UnknownKey(kid.to_string()));
        }
        let stored = store
            .get_secret(&self.master, &format!("{KEY_SECRET}{kid}"))
            .await?;
        let key = stored
            .map(|v| v.to_vec())
            .ok_or_else(|| TokenError::UnknownKey(kid.to_string()))?;
        self.write().insert(kid.to_string(), key.clone());
        Ok(key)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Vec<u8>>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Vec<u8>>> {
        self.keys.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn new_kid() -> String {
    let mut bytes = [0u8; 9];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64.encode(bytes)
}

fn mac(key: &[u8], input: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac takes keys of any length");
    mac.update(input.as_bytes());
    mac
}

fn encode_json<T: Serialize>(value: &T) -> String {
    B64.encode(serde_json::to_vec(value).expect("claims serialize"))
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, TokenError> {
    let bytes = B64.decode(part).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests;
