//! Credentials as the proxy sees them: a name the policy's `auth` step
//! references, resolved at request time into the value that goes on the
//! wire. Resolution (storage, decryption, token minting, personal
//! overrides) belongs to whoever implements [`CredentialSource`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use zeroize::Zeroizing;

/// Where the proxy obtains credential values. Called once per request and
/// credential; implementations cache minted tokens themselves.
pub trait CredentialSource: Send + Sync {
    /// The current value of credential `name` of org `org_id`.
    fn resolve<'a>(
        &'a self,
        org_id: &'a str,
        name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<ResolvedCredential, CredentialError>> + Send + 'a>>;
}

/// A credential ready to stamp. The secret is wiped from memory when the
/// value is dropped and never printed by `Debug`.
pub struct ResolvedCredential {
    /// The credential kind: the proxy stamps `api_key`, `query_api_key` and
    /// `basic_auth` (spec/credentials.md); any other kind fails closed.
    pub kind: String,
    /// Decides where an `api_key` goes (`anthropic` → `x-api-key`, …).
    pub provider: String,
    /// The secret part: the key, or the `basic_auth` password.
    pub secret: Zeroizing<String>,
    /// The credential's non-secret settings: `param` of a `query_api_key`
    /// (default `key`), `username` of a `basic_auth`.
    pub provider_config: serde_json::Map<String, serde_json::Value>,
}

/// Why a credential could not be resolved. The proxy turns every variant
/// into a deny with `auth_failures.<name>: auth_unavailable`.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("credential {name}: not found")]
    NotFound { name: String },
    #[error("credential {name}: status is {status}")]
    Inactive { name: String, status: String },
    #[error("credential {name}: unavailable")]
    Unavailable {
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl fmt::Debug for ResolvedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedCredential")
            .field("kind", &self.kind)
            .field("provider", &self.provider)
            .field("secret", &"<redacted>")
            .field("provider_config", &self.provider_config)
            .finish()
    }
}
