//! Secrets as the proxy sees them: opaque named values of an org that
//! transforms place on requests (`secrets["tenant-id"]` in a CEL value).
//! Storage and decryption belong to whoever implements [`SecretSource`].

use std::future::Future;
use std::pin::Pin;

use zeroize::Zeroizing;

/// Where the proxy obtains secret values. Called once per request and
/// secret, before the request's transforms run; the proxy keeps no value
/// beyond the request.
pub trait SecretSource: Send + Sync {
    /// The current value of secret `name` of org `org_id`.
    fn secret<'a>(
        &'a self,
        org_id: &'a str,
        name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Zeroizing<String>, SecretError>> + Send + 'a>>;
}

/// Why a secret could not be read. The proxy turns every variant into a
/// deny with `transforms_failed.<transform>: auth_unavailable`.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret {name}: not found")]
    NotFound { name: String },
    #[error("secret {name}: unavailable")]
    Unavailable {
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The source used when the installation configured none: every secret is
/// missing, so transforms that need one fail closed.
pub(crate) struct NoSecrets;

impl SecretSource for NoSecrets {
    fn secret<'a>(
        &'a self,
        _org_id: &'a str,
        name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Zeroizing<String>, SecretError>> + Send + 'a>> {
        Box::pin(async move {
            Err(SecretError::NotFound {
                name: name.to_owned(),
            })
        })
    }
}
