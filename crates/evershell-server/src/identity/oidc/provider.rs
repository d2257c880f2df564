//! Talking to the identity provider: its discovery document (OpenID
//! Connect Discovery 1.0), its JWK set, its token endpoint (RFC 6749 §4.1.3)
//! and its UserInfo endpoint (OpenID Connect Core 1.0 §5.3). Every call has
//! a timeout and reads at most [`MAX_DOCUMENT_BYTES`].

use std::time::Duration;

use base64::Engine;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Url;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::settings::{is_loopback, OidcSettings};
use super::OidcError;

/// Whole-call timeout of every request to the provider.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest document read from the provider.
pub const MAX_DOCUMENT_BYTES: usize = 512 * 1024;

/// What the discovery document says that sign-in uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

/// The token endpoint's answer.
#[derive(Deserialize)]
pub struct Tokens {
    pub id_token: String,
    #[serde(default)]
    pub access_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
}

/// A UserInfo answer: the subject and the claims sign-in may need.
#[derive(Deserialize)]
pub struct UserInfo {
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: Option<serde_json::Value>,
}

/// The HTTP client for provider calls: rustls with the ring provider and
/// the system's roots, no redirects (a provider endpoint that moves is a
/// configuration to fix, not a hop to follow).
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .connect_timeout(CALL_TIMEOUT / 2)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("evershell/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Fetches and checks the discovery document of `settings.issuer`.
pub async fn discover(
    http: &reqwest::Client,
    settings: &OidcSettings,
) -> Result<Metadata, OidcError> {
    // Discovery §4: the issuer, without a trailing slash, and the
    // well-known path.
    let url = format!(
        "{}/.well-known/openid-configuration",
        settings.issuer.trim_end_matches('/')
    );
    let metadata: Metadata = get_json(http, &url, None).await?;
    let bad = |what: &str| OidcError::BadDocument {
        url: url.clone(),
        what: what.to_string(),
    };
    // Discovery §4.3: the document must name exactly the issuer asked for.
    if metadata.issuer != settings.issuer {
        return Err(bad("issuer differs from the configured issuer"));
    }
    let endpoints = [
        Some(&metadata.authorization_endpoint),
        Some(&metadata.token_endpoint),
        Some(&metadata.jwks_uri),
        metadata.userinfo_endpoint.as_ref(),
    ];
    if !endpoints
        .into_iter()
        .flatten()
        .all(|e| acceptable_endpoint(e))
    {
        return Err(bad("an endpoint is not an https URL"));
    }
    let lists = |list: &Option<Vec<String>>, item: &str| {
        list.as_ref().is_none_or(|l| l.iter().any(|m| m == item))
    };
    if !lists(&metadata.code_challenge_methods_supported, "S256") {
        return Err(bad("PKCE S256 not supported"));
    }
    // RFC 8414 §2: client_secret_basic is the default when the list is
    // absent.
    if !lists(
        &metadata.token_endpoint_auth_methods_supported,
        "client_secret_basic",
    ) {
        return Err(bad("client_secret_basic not supported"));
    }
    Ok(metadata)
}

/// Fetches a JWK set.
pub async fn jwks(
    http: &reqwest::Client,
    jwks_uri: &str,
) -> Result<super::id_token::Jwks, OidcError> {
    get_json(http, jwks_uri, None).await
}

/// Redeems an authorization code with the PKCE verifier, authenticating
/// with `client_secret_basic`.
pub async fn redeem_code(
    http: &reqwest::Client,
    settings: &OidcSettings,
    token_endpoint: &str,
    redirect_uri: &str,
    code: &str,
    verifier: &str,
) -> Result<Tokens, OidcError> {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", verifier)
        .finish();
    let response = http
        .post(token_endpoint)
        .header(AUTHORIZATION, basic_auth(settings))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(ACCEPT, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|source| OidcError::Unreachable {
            url: token_endpoint.to_string(),
            source,
        })?;
    let status = response.status();
    let bytes = read_bounded(response, token_endpoint).await?;
    if status.is_success() {
        return parse(&bytes, token_endpoint);
    }
    // RFC 6749 §5.2: a refused grant is 400 with an error code; a refused
    // client is the operator's problem, not the person's.
    match serde_json::from_slice::<TokenError>(&bytes) {
        Ok(e) if e.error == "invalid_grant" => Err(OidcError::CodeRejected { error: e.error }),
        Ok(e) => Err(OidcError::ClientRejected { error: e.error }),
        Err(_) => Err(OidcError::HttpStatus {
            url: token_endpoint.to_string(),
            status: status.as_u16(),
        }),
    }
}

/// The UserInfo endpoint's claims, read with the access token.
pub async fn user_info(
    http: &reqwest::Client,
    endpoint: &str,
    access_token: &str,
) -> Result<UserInfo, OidcError> {
    get_json(http, endpoint, Some(access_token)).await
}

/// RFC 6749 §2.3.1: the client id and secret are form-encoded, then joined
/// with a colon and base64-encoded.
fn basic_auth(settings: &OidcSettings) -> String {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = zeroize::Zeroizing::new(format!(
        "{}:{}",
        encode(&settings.client_id),
        encode(&settings.client_secret)
    ));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())
    )
}

async fn get_json<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
) -> Result<T, OidcError> {
    let mut request = http.get(url).header(ACCEPT, "application/json");
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .map_err(|source| OidcError::Unreachable {
            url: url.to_string(),
            source,
        })?;
    if !response.status().is_success() {
        return Err(OidcError::HttpStatus {
            url: url.to_string(),
            status: response.status().as_u16(),
        });
    }
    let bytes = read_bounded(response, url).await?;
    parse(&bytes, url)
}

async fn read_bounded(mut response: reqwest::Response, url: &str) -> Result<Vec<u8>, OidcError> {
    let mut body = Vec::new();
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|source| OidcError::Unreachable {
                url: url.to_string(),
                source,
            })?;
        let Some(chunk) = chunk else {
            return Ok(body);
        };
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(OidcError::BadDocument {
                url: url.to_string(),
                what: format!("larger than {MAX_DOCUMENT_BYTES} bytes"),
            });
        }
        body.extend_from_slice(&chunk);
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8], url: &str) -> Result<T, OidcError> {
    serde_json::from_slice(bytes).map_err(|e| OidcError::BadDocument {
        url: url.to_string(),
        what: format!("unexpected json: {e}"),
    })
}

/// Endpoints follow the issuer's rule: https, or http on loopback.
fn acceptable_endpoint(endpoint: &str) -> bool {
    let Ok(url) = Url::parse(endpoint) else {
        return false;
    };
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => is_loopback(&url),
        _ => false,
    }
}
