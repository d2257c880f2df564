//! ID token verification. An ID token is a JWS (RFC 7515) in which the
//! identity provider asserts who signed in; it is accepted when its
//! signature verifies under a key of the provider's JWK set (RFC 7517) and
//! its claims pass the checks of OpenID Connect Core 1.0 §3.1.3.7.
//!
//! Signatures are checked with `ring`: `RS256` (RSASSA-PKCS1-v1_5 with
//! SHA-256, keys of 2048 to 8192 bits) and `ES256` (ECDSA on P-256 with
//! SHA-256), RFC 7518 §3.3 and §3.4. Every other `alg`, `none` and the HMAC
//! family included, is refused: the algorithm is the verifier's choice,
//! never the token's.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;

/// Clock skew tolerated on `exp` and `iat`, in seconds.
pub const LEEWAY_SECONDS: i64 = 60;

/// A provider's JWK set, as served at its `jwks_uri`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One key of a JWK set; members this verifier does not use are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default, rename = "use")]
    pub usage: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
    #[serde(default)]
    pub crv: Option<String>,
    #[serde(default)]
    pub x: Option<String>,
    #[serde(default)]
    pub y: Option<String>,
}

/// What a token must match.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// The nonce sent in the authorization request.
    pub nonce: &'a str,
    /// Unix seconds.
    pub now: i64,
}

/// The claims of a verified ID token that sign-in uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdClaims {
    pub subject: String,
    pub email: Option<String>,
    /// `None` when the provider does not say.
    pub email_verified: Option<bool>,
}

/// Why an ID token was refused.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    #[error("id token: malformed ({0})")]
    Malformed(&'static str),
    #[error("id token: algorithm {0:?} not accepted")]
    Algorithm(String),
    #[error("id token: no key of the provider's set matches kid {0:?}")]
    UnknownKey(Option<String>),
    #[error("id token: signature does not verify")]
    BadSignature,
    #[error("id token: issuer {0:?} is not the configured issuer")]
    Issuer(String),
    #[error("id token: not issued to this client")]
    Audience,
    #[error("id token: expired")]
    Expired,
    #[error("id token: issued in the future")]
    IssuedInFuture,
    #[error("id token: nonce does not match the sign-in request")]
    Nonce,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rs256,
    Es256,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: Audience,
    #[serde(default)]
    azp: Option<String>,
    exp: f64,
    iat: f64,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<Value>,
}

/// `aud` is one string or an array of them (RFC 7519 §4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Verifies `token` against `keys` and `expected`.
pub fn verify(token: &str, keys: &Jwks, expected: Expected<'_>) -> Result<IdClaims, IdTokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdTokenError::Malformed("not a compact jws"));
    };
    let header: Header = decode_json(h)?;
    // RFC 7515 §4.1.11: extensions a verifier does not understand must
    // make it refuse the token, and this one understands none.
    if header.crit.is_some() {
        return Err(IdTokenError::Malformed("crit header"));
    }
    let alg = match header.alg.as_str() {
        "RS256" => Alg::Rs256,
        "ES256" => Alg::Es256,
        other => return Err(IdTokenError::Algorithm(other.to_string())),
    };
    let signature = B64
        .decode(s)
        .map_err(|_| IdTokenError::Malformed("signature encoding"))?;
    let signing_input = format!("{h}.{c}");
    verify_signature(keys, alg, header.kid, signing_input.as_bytes(), &signature)?;

    let claims: Claims = decode_json(c)?;
    check_claims(claims, expected)
}

/// Tries the keys that fit `alg` (and `kid`, when the header names one).
fn verify_signature(
    keys: &Jwks,
    alg: Alg,
    kid: Option<String>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), IdTokenError> {
    let candidates: Vec<&Jwk> = keys
        .keys
        .iter()
        .filter(|k| k.fits(alg) && (kid.is_none() || k.kid == kid))
        .collect();
    if candidates.is_empty() {
        return Err(IdTokenError::UnknownKey(kid));
    }
    let verified = candidates
        .iter()
        .any(|key| key.verify(alg, message, signature).is_ok());
    if verified {
        Ok(())
    } else {
        Err(IdTokenError::BadSignature)
    }
}

/// OpenID Connect Core 1.0 §3.1.3.7, steps 2, 3, 4, 9, 10 and 11.
fn check_claims(claims: Claims, expected: Expected<'_>) -> Result<IdClaims, IdTokenError> {
    if claims.iss != expected.issuer {
        return Err(IdTokenError::Issuer(claims.iss));
    }
    let audiences = match &claims.aud {
        Audience::One(aud) => vec![aud.as_str()],
        Audience::Many(auds) => auds.iter().map(String::as_str).collect(),
    };
    if !audiences.contains(&expected.client_id) {
        return Err(IdTokenError::Audience);
    }
    // A token meant for several audiences must say it was issued to us.
    let azp_needed = audiences.len() > 1 || claims.azp.is_some();
    if azp_needed && claims.azp.as_deref() != Some(expected.client_id) {
        return Err(IdTokenError::Audience);
    }
    if expected.now as f64 >= claims.exp + LEEWAY_SECONDS as f64 {
        return Err(IdTokenError::Expired);
    }
    if claims.iat > (expected.now + LEEWAY_SECONDS) as f64 {
        return Err(IdTokenError::IssuedInFuture);
    }
    let nonce_matches = claims.nonce.as_deref().is_some_and(|nonce| {
        subtle::ConstantTimeEq::ct_eq(nonce.as_bytes(), expected.nonce.as_bytes()).into()
    });
    if !nonce_matches {
        return Err(IdTokenError::Nonce);
    }
    if claims.sub.is_empty() {
        return Err(IdTokenError::Malformed("empty sub"));
    }
    Ok(IdClaims {
        subject: claims.sub,
        email: claims.email,
        email_verified: claims.email_verified.as_ref().and_then(flag),
    })
}

/// A boolean claim, also accepted as the strings `"true"` and `"false"`
/// that some providers send.
pub fn flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

impl Jwk {
    fn fits(&self, alg: Alg) -> bool {
        let family = match alg {
            Alg::Rs256 => self.kty == "RSA",
            Alg::Es256 => self.kty == "EC" && self.crv.as_deref() == Some("P-256"),
        };
        let name = match alg {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        };
        family
            && self.usage.as_deref().is_none_or(|u| u == "sig")
            && self.alg.as_deref().is_none_or(|a| a == name)
    }

    fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> Result<(), IdTokenError> {
        let member = |value: &Option<String>| {
            value
                .as_deref()
                .and_then(|v| B64.decode(v).ok())
                .ok_or(IdTokenError::Malformed("jwk member"))
        };
        match alg {
            Alg::Rs256 => {
                let key = RsaPublicKeyComponents {
                    n: member(&self.n)?,
                    e: member(&self.e)?,
                };
                key.verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, signature)
            }
            Alg::Es256 => {
                let (x, y) = (member(&self.x)?, member(&self.y)?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(IdTokenError::Malformed("jwk coordinates"));
                }
                // SEC 1 §2.3.3 uncompressed point: 0x04, x, y.
                let point = [&[4u8][..], &x, &y].concat();
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
            }
        }
        .map_err(|_| IdTokenError::BadSignature)
    }
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, IdTokenError> {
    let bytes = B64
        .decode(part)
        .map_err(|_| IdTokenError::Malformed("base64url"))?;
    serde_json::from_slice(&bytes).map_err(|_| IdTokenError::Malformed("json"))
}

#[cfg(test)]
mod tests;
