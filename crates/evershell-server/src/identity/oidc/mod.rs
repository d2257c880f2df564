//! OpenID Connect sign-in: the authorization code flow with PKCE
//! (OpenID Connect Core 1.0 §3.1, RFC 7636). An identity provider (the
//! configured issuer) authenticates a person and vouches for their email;
//! Evershell maps the email to an existing user and starts a session.
//!
//! [`Oidc`] holds the client settings and caches the provider's discovery
//! document and JWK set; the HTTP routes live in
//! [`crate::api::handlers::oidc`].

pub mod id_token;
mod provider;
mod settings;

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use rand::RngCore;
use reqwest::Url;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use tokio::time::Instant;

use id_token::{Expected, IdTokenError, Jwks};
use provider::Metadata;

pub use settings::{OidcFile, OidcSettings, OidcSettingsError};

/// How long the discovery document and the JWK set are reused.
const CACHE_TTL: Duration = Duration::from_secs(3600);
/// A token signed by a key missing from the cached set refetches the set,
/// at most this often (providers add keys before they sign with them).
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);

/// The path of the redirect URI under the public URL.
pub const CALLBACK_PATH: &str = "/auth/oidc/callback";

/// The configured identity provider.
pub struct Oidc {
    settings: OidcSettings,
    redirect_uri: String,
    http: reqwest::Client,
    metadata: Mutex<Option<(Instant, Arc<Metadata>)>>,
    jwks: Mutex<Option<(Instant, Arc<Jwks>)>>,
}

/// The secrets of one sign-in attempt: `state` travels through the
/// browser, `nonce` comes back inside the ID token, the PKCE `verifier`
/// stays on the server until the code is redeemed.
pub struct FlowSecrets {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

/// Who the provider says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    /// Lowercased.
    pub email: String,
}

/// Why a sign-in through the provider failed.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("identity provider {url}: unreachable")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("identity provider {url}: answered {status}")]
    HttpStatus { url: String, status: u16 },
    #[error("identity provider {url}: {what}")]
    BadDocument { url: String, what: String },
    #[error("identity provider token endpoint: refused this client ({error})")]
    ClientRejected { error: String },
    #[error("identity provider token endpoint: refused the code ({error})")]
    CodeRejected { error: String },
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    #[error("identity provider userinfo: subject differs from the id token's")]
    UserInfoSubject,
    #[error("identity provider: no email for this account")]
    NoEmail,
    #[error("identity provider: email not verified")]
    EmailNotVerified,
}

impl FlowSecrets {
    /// Fresh random values, 256 bits each, base64url.
    pub fn new() -> FlowSecrets {
        FlowSecrets {
            state: random_token(),
            nonce: random_token(),
            verifier: random_token(),
        }
    }
}

impl Default for FlowSecrets {
    fn default() -> FlowSecrets {
        FlowSecrets::new()
    }
}

/// How a state is stored: hex SHA-256, so the database never holds a
/// value a browser could present.
pub fn state_hash(state: &str) -> String {
    Sha256::digest(state.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Oidc {
    /// A client for `settings` whose redirect URI lives under
    /// `public_url`.
    pub fn new(settings: OidcSettings, public_url: &str) -> Result<Oidc, reqwest::Error> {
        Ok(Oidc {
            redirect_uri: format!("{}{CALLBACK_PATH}", public_url.trim_end_matches('/')),
            settings,
            http: provider::client()?,
            metadata: Mutex::new(None),
            jwks: Mutex::new(None),
        })
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Where to send the browser to sign in (the authorization request of
    /// OpenID Connect Core 1.0 §3.1.2.1 with an S256 code challenge).
    pub async fn authorization_url(&self, flow: &FlowSecrets) -> Result<String, OidcError> {
        let metadata = self.metadata().await?;
        let endpoint = &metadata.authorization_endpoint;
        let mut url = Url::parse(endpoint).map_err(|_| OidcError::BadDocument {
            url: endpoint.clone(),
            what: "authorization endpoint is not a URL".to_string(),
        })?;
        let challenge = B64.encode(Sha256::digest(flow.verifier.as_bytes()));
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &self.settings.scopes.join(" "))
            .append_pair("state", &flow.state)
            .append_pair("nonce", &flow.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Redeems `code` with the flow's `verifier`, verifies the ID token
    /// against `nonce` at `now` (Unix seconds) and returns the verified
    /// identity. The email comes from the ID token or, when the provider
    /// keeps it out of the token, from its UserInfo endpoint.
    pub async fn redeem(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Identity, OidcError> {
        let metadata = self.metadata().await?;
        let tokens = provider::redeem_code(
            &self.http,
            &self.settings,
            &metadata.token_endpoint,
            &self.redirect_uri,
            code,
            verifier,
        )
        .await?;
        let expected = Expected {
            issuer: &self.settings.issuer,
            client_id: &self.settings.client_id,
            nonce,
            now,
        };
        let claims = self.verify(&metadata, &tokens.id_token, expected).await?;

        let (email, verified) = match claims.email {
            Some(email) => (email, claims.email_verified),
            None => {
                self.user_info_email(&metadata, &tokens, &claims.subject)
                    .await?
            }
        };
        // Only an explicit `false` refuses: many providers vouch for the
        // addresses they hold without saying so.
        if verified == Some(false) {
            return Err(OidcError::EmailNotVerified);
        }
        let email = email.trim().to_ascii_lowercase();
        if email.is_empty() {
            return Err(OidcError::NoEmail);
        }
        Ok(Identity {
            subject: claims.subject,
            email,
        })
    }

    async fn verify(
        &self,
        metadata: &Metadata,
        token: &str,
        expected: Expected<'_>,
    ) -> Result<id_token::IdClaims, OidcError> {
        let keys = self.jwks(metadata, false).await?;
        match id_token::verify(token, &keys, expected) {
            Err(IdTokenError::UnknownKey(_)) => {
                let keys = self.jwks(metadata, true).await?;
                Ok(id_token::verify(token, &keys, expected)?)
            }
            other => Ok(other?),
        }
    }

    /// OpenID Connect Core 1.0 §5.3.2: the UserInfo `sub` must be the ID
    /// token's before any of its claims is used.
    async fn user_info_email(
        &self,
        metadata: &Metadata,
        tokens: &provider::Tokens,
        subject: &str,
    ) -> Result<(String, Option<bool>), OidcError> {
        let (Some(endpoint), Some(access_token)) =
            (&metadata.userinfo_endpoint, &tokens.access_token)
        else {
            return Err(OidcError::NoEmail);
        };
        let info = provider::user_info(&self.http, endpoint, access_token).await?;
        if info.sub != subject {
            return Err(OidcError::UserInfoSubject);
        }
        let email = info.email.ok_or(OidcError::NoEmail)?;
        let verified = info.email_verified.as_ref().and_then(id_token::flag);
        Ok((email, verified))
    }

    async fn metadata(&self) -> Result<Arc<Metadata>, OidcError> {
        let mut cached = self.metadata.lock().await;
        if let Some((fetched, metadata)) = cached.as_ref() {
            if fetched.elapsed() < CACHE_TTL {
                return Ok(metadata.clone());
            }
        }
        let metadata = Arc::new(provider::discover(&self.http, &self.settings).await?);
        *cached = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    /// The cached JWK set; `refresh` refetches it unless it was fetched
    /// within [`JWKS_REFETCH_INTERVAL`].
    async fn jwks(&self, metadata: &Metadata, refresh: bool) -> Result<Arc<Jwks>, OidcError> {
        let mut cached = self.jwks.lock().await;
        if let Some((fetched, keys)) = cached.as_ref() {
            let age = fetched.elapsed();
            let fresh = if refresh {
                age < JWKS_REFETCH_INTERVAL
            } else {
                age < CACHE_TTL
            };
            if fresh {
                return Ok(keys.clone());
            }
        }
        let keys = Arc::new(provider::jwks(&self.http, &metadata.jwks_uri).await?);
        *cached = Some((Instant::now(), keys.clone()));
        Ok(keys)
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64.encode(bytes)
}
