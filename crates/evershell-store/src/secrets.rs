//! The default secret store: AES-256-GCM envelope encryption in the
//! database. Each value gets its own random data key; the data key is
//! wrapped by the installation's key-encryption key (KEK), which lives in a
//! file created `0600` on first start and never enters the database.
//!
//! Stored forms: `wrapped_key = nonce ‖ AES-GCM(KEK, data_key)` and
//! `ciphertext = nonce ‖ AES-GCM(data_key, value)`, with the secret's
//! reference as associated data so a row cannot be swapped for another.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use chrono::Utc;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::{ts, Result, Store, StoreError};

const NONCE_LEN: usize = 12;

/// The key-encryption key, loaded once at start.
pub struct MasterKey {
    key: Zeroizing<[u8; 32]>,
}

impl MasterKey {
    /// Reads the key file at `path`, or creates it (mode `0600`, 32 random
    /// bytes) when it does not exist.
    pub fn load_or_create(path: &Path) -> std::io::Result<MasterKey> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "master key {}: expected 32 bytes, found {}",
                            path.display(),
                            bytes.len()
                        ),
                    )
                })?;
                Ok(MasterKey {
                    key: Zeroizing::new(key),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = Zeroizing::new([0u8; 32]);
                rand::rngs::OsRng.fill_bytes(key.as_mut());
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)?;
                file.write_all(key.as_ref())?;
                file.sync_all()?;
                Ok(MasterKey { key })
            }
            Err(e) => Err(e),
        }
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.key.as_ref()))
    }
}

fn seal(cipher: &Aes256Gcm, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| StoreError::Crypto("encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn open(cipher: &Aes256Gcm, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < NONCE_LEN {
        return Err(StoreError::Crypto("sealed value too short".into()));
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad })
        .map(Zeroizing::new)
        .map_err(|_| {
            StoreError::Crypto("decryption failed (wrong master key or tampered row)".into())
        })
}

/// `(wrapped_key, ciphertext)` of `value` stored under `reference`: a fresh
/// data key wrapped by the master key, and the value sealed with it.
pub(crate) fn seal_value(
    master: &MasterKey,
    reference: &str,
    value: &[u8],
) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut data_key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(data_key.as_mut());
    let wrapped = seal(&master.cipher(), data_key.as_ref(), reference.as_bytes())?;
    let value_cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(data_key.as_ref()));
    let ciphertext = seal(&value_cipher, value, reference.as_bytes())?;
    Ok((wrapped, ciphertext))
}

/// The upsert of a sealed value (`$1` ref, `$2` wrapped key, `$3`
/// ciphertext, `$4` time).
pub(crate) const UPSERT_VALUE: &str = "INSERT INTO secret_values (ref, wrapped_key, ciphertext, created_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT(ref) DO UPDATE SET wrapped_key = excluded.wrapped_key, ciphertext = excluded.ciphertext";

impl Store {
    /// Encrypts `value` and stores it under `reference`, replacing any
    /// previous value.
    pub async fn put_secret(
        &self,
        master: &MasterKey,
        reference: &str,
        value: &[u8],
    ) -> Result<()> {
        let (wrapped, ciphertext) = seal_value(master, reference, value)?;
        sqlx::query(UPSERT_VALUE)
            .bind(reference)
            .bind(wrapped)
            .bind(ciphertext)
            .bind(ts(&Utc::now()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The decrypted value stored under `reference`, zeroised on drop.
    pub async fn get_secret(
        &self,
        master: &MasterKey,
        reference: &str,
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let row: Option<(Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT wrapped_key, ciphertext FROM secret_values WHERE ref = $1")
                .bind(reference)
                .fetch_optional(&self.pool)
                .await?;
        let Some((wrapped, ciphertext)) = row else {
            return Ok(None);
        };
        let data_key = open(&master.cipher(), &wrapped, reference.as_bytes())?;
        if data_key.len() != 32 {
            return Err(StoreError::Crypto(
                "wrapped data key has the wrong size".into(),
            ));
        }
        let value_cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&data_key));
        open(&value_cipher, &ciphertext, reference.as_bytes()).map(Some)
    }

    pub async fn delete_secret(&self, reference: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM secret_values WHERE ref = $1")
            .bind(reference)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
