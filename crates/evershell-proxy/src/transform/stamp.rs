//! Stamping: putting a resolved credential on a request the way its kind
//! and provider expect (spec/credentials.md), replacing whatever the agent
//! sent in the same place.

use base64::Engine as _;
use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::HeaderMap;
use zeroize::Zeroizing;

use crate::credentials::ResolvedCredential;

/// The query parameter of a `query_api_key` whose `param` is not set.
const DEFAULT_QUERY_PARAM: &str = "key";

/// Why a credential could not be stamped; for the log only.
pub(crate) type Unstampable = &'static str;

/// Where an `api_key` goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// `Authorization: Bearer <key>`.
    Bearer,
    /// The key alone in the named header.
    Header(&'static str),
}

/// Puts `credential` on the request made of `headers` and `query` (the raw
/// query string without `?`). Header values are marked sensitive so that
/// HTTP/2 never indexes them (RFC 7541 §7.1.3) and `Debug` never prints
/// them.
pub(crate) fn stamp(
    credential: &ResolvedCredential,
    headers: &mut HeaderMap,
    query: &mut Option<String>,
) -> Result<(), Unstampable> {
    match credential.kind.as_str() {
        "api_key" => {
            let (name, text) = match placement(&credential.provider) {
                Placement::Bearer => (
                    AUTHORIZATION,
                    Zeroizing::new(format!("Bearer {}", credential.secret.as_str())),
                ),
                Placement::Header(name) => {
                    (HeaderName::from_static(name), credential.secret.clone())
                }
            };
            set_sensitive(headers, name, &text)
        }
        "query_api_key" => {
            let param = config_str(credential, "param").unwrap_or(DEFAULT_QUERY_PARAM);
            set_query_param(query, param, &credential.secret);
            Ok(())
        }
        "basic_auth" => {
            let username =
                config_str(credential, "username").ok_or("basic_auth has no username")?;
            if username.contains(':') {
                // RFC 7617 §2: the user-id cannot contain a colon.
                return Err("basic_auth username contains a colon");
            }
            let pair = Zeroizing::new(format!("{username}:{}", credential.secret.as_str()));
            let encoded =
                Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()));
            let text = Zeroizing::new(format!("Basic {}", encoded.as_str()));
            set_sensitive(headers, AUTHORIZATION, &text)
        }
        _ => Err("credential kind is not stamped by this proxy"),
    }
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

fn config_str<'c>(credential: &'c ResolvedCredential, key: &str) -> Option<&'c str> {
    credential.provider_config.get(key)?.as_str()
}

/// Replaces every value of `name` with `text`.
fn set_sensitive(headers: &mut HeaderMap, name: HeaderName, text: &str) -> Result<(), Unstampable> {
    let mut value =
        HeaderValue::from_str(text).map_err(|_| "credential is not a valid header value")?;
    value.set_sensitive(true);
    headers.insert(name, value);
    Ok(())
}

/// Drops every `param` the query has (compared after percent-decoding),
/// then appends `param=value`, both percent-encoded.
fn set_query_param(query: &mut Option<String>, param: &str, value: &str) {
    let mut pieces: Vec<String> = query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|piece| !piece.is_empty())
        .filter(|piece| {
            let name = piece.split_once('=').map_or(*piece, |(name, _)| name);
            decode(name).as_deref() != Some(param.as_bytes())
        })
        .map(str::to_owned)
        .collect();
    pieces.push(format!("{}={}", encode(param), encode(value)));
    *query = Some(pieces.join("&"));
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Percent-decodes a query component (`+` is a space, as forms write it);
/// `None` for a malformed escape.
fn decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(kind: &str, provider: &str, config: serde_json::Value) -> ResolvedCredential {
        ResolvedCredential {
            kind: kind.into(),
            provider: provider.into(),
            secret: Zeroizing::new("sk-canary".into()),
            provider_config: config.as_object().cloned().unwrap_or_default(),
        }
    }

    fn key(provider: &str) -> ResolvedCredential {
        credential("api_key", provider, serde_json::json!({}))
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
            stamp(&key(provider), &mut headers, &mut None).expect("stamps");
            assert_eq!(headers[header], expected, "{provider}");
            assert!(headers[header].is_sensitive());
        }
    }

    #[test]
    fn stamping_replaces_every_value_the_agent_sent() {
        let mut headers = HeaderMap::new();
        headers.append("x-api-key", HeaderValue::from_static("agent-one"));
        headers.append("x-api-key", HeaderValue::from_static("agent-two"));
        stamp(&key("anthropic"), &mut headers, &mut None).expect("stamps");
        let values: Vec<_> = headers.get_all("x-api-key").iter().collect();
        assert_eq!(values, ["sk-canary"]);
    }

    #[test]
    fn query_keys_replace_the_agents_parameter_and_keep_the_rest() {
        let query_key = credential("query_api_key", "maps", serde_json::json!({}));
        let mut query = Some("a=1&key=agent&k%65y=agent2&b=x%2Fy".to_owned());
        stamp(&query_key, &mut HeaderMap::new(), &mut query).expect("stamps");
        assert_eq!(query.as_deref(), Some("a=1&b=x%2Fy&key=sk-canary"));

        let named = credential(
            "query_api_key",
            "maps",
            serde_json::json!({"param": "api key"}),
        );
        let mut query = None;
        stamp(&named, &mut HeaderMap::new(), &mut query).expect("stamps");
        assert_eq!(query.as_deref(), Some("api%20key=sk-canary"));
    }

    #[test]
    fn basic_auth_encodes_the_username_and_password() {
        let basic = credential("basic_auth", "jira", serde_json::json!({"username": "bot"}));
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer agent"));
        stamp(&basic, &mut headers, &mut None).expect("stamps");
        // base64("bot:sk-canary")
        assert_eq!(headers[AUTHORIZATION], "Basic Ym90OnNrLWNhbmFyeQ==");
        assert!(headers[AUTHORIZATION].is_sensitive());
    }

    #[test]
    fn credentials_that_cannot_be_stamped_are_refused() {
        let no_user = credential("basic_auth", "jira", serde_json::json!({}));
        assert!(stamp(&no_user, &mut HeaderMap::new(), &mut None).is_err());
        let colon = credential("basic_auth", "jira", serde_json::json!({"username": "a:b"}));
        assert!(stamp(&colon, &mut HeaderMap::new(), &mut None).is_err());
        let oauth = credential("oauth2_client_credentials", "x", serde_json::json!({}));
        assert!(stamp(&oauth, &mut HeaderMap::new(), &mut None).is_err());
    }
}
