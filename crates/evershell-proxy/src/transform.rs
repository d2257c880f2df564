//! Transforms: what the proxy changes on an allowed request before it leaves.
//! Today that is the `auth` step: resolve the credential a rule names and
//! stamp it where its provider expects it (spec/credentials.md), replacing
//! any value the agent sent. A step that cannot complete turns the request
//! into a deny: nothing is forwarded without the auth it was configured to
//! carry.

use evershell_caps::AuthStep;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::HeaderMap;

use crate::credentials::{CredentialSource, ResolvedCredential};
use crate::refusal::Denial;

/// What the transforms did to a request.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Names of the credentials stamped, in order; never their values.
    pub minted: Vec<String>,
    pub count: i64,
}

/// Where an `api_key` goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// The key alone in the named header.
    Header(&'static str),
}

/// Runs the decision's auth steps on `headers`.
pub(crate) async fn apply(
    credentials: &dyn CredentialSource,
    org_id: &str,
    steps: &[AuthStep],
    headers: &mut HeaderMap,
) -> Result<Applied, Denial> {
    let mut applied = Applied::default();
    for step in steps {
        let unavailable = || Denial::AuthUnavailable {
            transform: step.transform.clone(),
            credential: step.credential.clone(),
        };
        let credential = match credentials.resolve(org_id, &step.credential).await {
            Ok(credential) => credential,
            Err(error) => {
                tracing::debug!(%error, transform = %step.transform, "credential unavailable");
                return Err(unavailable());
            }
        };
        if let Err(problem) = stamp(&credential, headers) {
            tracing::debug!(
                credential = %step.credential,
                kind = %credential.kind,
                problem,
                "credential cannot be stamped"
            );
            return Err(unavailable());
        }
        applied.minted.push(step.credential.clone());
        applied.count += 1;
    }
    Ok(applied)
}

/// Puts `credential` on `headers`, replacing every value the agent sent for
/// that header. The value is marked sensitive so that HTTP/2 never indexes
/// it (RFC 7541 §7.1.3) and `Debug` never prints it.
fn stamp(credential: &ResolvedCredential, headers: &mut HeaderMap) -> Result<(), &'static str> {
    if credential.kind != "api_key" {
        return Err("credential kind is not stamped by this proxy");
    }
    let (name, text) = match placement(&credential.provider) {
        Placement::Bearer => (
            AUTHORIZATION,
            format!("Bearer {}", credential.secret.as_str()),
        ),
        Placement::Header(name) => (HeaderName::from_static(name), credential.secret.to_string()),
    };
    let text = zeroize::Zeroizing::new(text);
    let mut value =
        HeaderValue::from_str(&text).map_err(|_| "credential is not a valid header value")?;
    value.set_sensitive(true);
    headers.insert(name, value);
    Ok(())
}

/// Where each provider expects an API key (spec/credentials.md, `api_key`).
fn placement(provider: &str) -> Placement {
    match provider {
        "anthropic" => Placement::Header("x-api-key"),
        "azure-openai" => Placement::Header("api-key"),
        "gemini" => Placement::Header("x-goog-api-key"),
        "gitlab" => Placement::Header("private-token"),
        _ => Placement::Bearer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(provider: &str) -> ResolvedCredential {
        ResolvedCredential {
            kind: "api_key".into(),
            provider: provider.into(),
            secret: zeroize::Zeroizing::new("sk-canary".into()),
        }
    }

    #[test]
    fn api_keys_land_where_each_provider_expects_them() {
        let cases = [
            ("anthropic", "x-api-key", "sk-canary"),
            ("openai", "authorization", "Bearer sk-canary"),
            ("azure-openai", "api-key", "sk-canary"),
            ("gemini", "x-goog-api-key", "sk-canary"),
            ("gitlab", "private-token", "sk-canary"),
            ("github", "authorization", "Bearer sk-canary"),
            ("internal", "authorization", "Bearer sk-canary"),
        ];
        for (provider, header, expected) in cases {
            let mut headers = HeaderMap::new();
            stamp(&key(provider), &mut headers).expect("stamps");
            assert_eq!(headers[header], expected, "{provider}");
            assert!(headers[header].is_sensitive());
        }
    }

    #[test]
    fn stamping_replaces_every_value_the_agent_sent() {
        let mut headers = HeaderMap::new();
        headers.append("x-api-key", HeaderValue::from_static("agent-one"));
        headers.append("x-api-key", HeaderValue::from_static("agent-two"));
        stamp(&key("anthropic"), &mut headers).expect("stamps");
        let values: Vec<_> = headers.get_all("x-api-key").iter().collect();
        assert_eq!(values, ["sk-canary"]);
    }

    #[test]
    fn kinds_other_than_api_key_are_refused() {
        let mut credential = key("openai");
        credential.kind = "basic_auth".into();
        assert!(stamp(&credential, &mut HeaderMap::new()).is_err());
    }
}
