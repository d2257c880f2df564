//! Password hashing: argon2id with the crate's default parameters
//! (RFC 9106 second recommended option), stored as a PHC string.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;

/// The shortest password a person may choose when they create an account
/// through an invitation.
pub const MIN_LENGTH: usize = 12;

/// A password could not be hashed (argon2 refuses only absurd inputs).
#[derive(Debug, thiserror::Error)]
#[error("password: cannot hash: {0}")]
pub struct HashError(String);

/// The PHC string of `password` under a fresh random salt.
pub fn hash(password: &str) -> Result<String, HashError> {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let salt = SaltString::encode_b64(&bytes).map_err(|e| HashError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches `phc`. A malformed `phc` never matches.
/// With `phc` = `None` (unknown user, or no password set) the password is
/// checked against a dummy hash, so the answer takes as long either way and
/// the timing does not reveal which emails exist.
pub fn verify(password: &str, phc: Option<&str>) -> bool {
    let (phc, real) = match phc {
        Some(phc) => (phc, true),
        None => (dummy_hash(), false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let matched = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matched && real
}

/// Computes the dummy hash ahead of the first sign-in of an unknown email,
/// whose answer would otherwise take twice as long.
pub fn warm_up() {
    dummy_hash();
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash("evershell-dummy-password").expect("argon2 hashes a short password"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_the_right_password_and_refuses_others() {
        let phc = hash("correct horse").expect("hashes");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify("correct horse", Some(&phc)));
        assert!(!verify("wrong", Some(&phc)));
        assert!(!verify("correct horse", Some("not a phc string")));
    }

    #[test]
    fn unknown_users_never_verify_even_with_the_dummy_password() {
        assert!(!verify("evershell-dummy-password", None));
    }
}
