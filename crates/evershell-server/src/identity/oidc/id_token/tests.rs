//! ID tokens signed here with fresh ES256 keys (RS256 is exercised against
//! a real provider in the end-to-end test).

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

use super::*;

const ISSUER: &str = "https://idp.acme.test";
const CLIENT: &str = "evershell";
const NONCE: &str = "n-0S6_WzA2Mj";
const NOW: i64 = 1_900_000_000;

struct Signer {
    pair: EcdsaKeyPair,
    kid: String,
}

impl Signer {
    fn new(kid: &str) -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        Signer {
            pair,
            kid: kid.to_string(),
        }
    }

    fn jwk(&self) -> Jwk {
        let point = self.pair.public_key().as_ref();
        Jwk {
            kty: "EC".into(),
            kid: Some(self.kid.clone()),
            alg: Some("ES256".into()),
            usage: Some("sig".into()),
            n: None,
            e: None,
            crv: Some("P-256".into()),
            x: Some(B64.encode(&point[1..33])),
            y: Some(B64.encode(&point[33..65])),
        }
    }

    fn sign(&self, header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", B64.encode(signature.as_ref()))
    }

    fn token(&self, claims: Value) -> String {
        self.sign(json!({ "alg": "ES256", "kid": self.kid }), claims)
    }
}

fn claims() -> Value {
    json!({
        "iss": ISSUER, "sub": "248289761001", "aud": CLIENT, "nonce": NONCE,
        "iat": NOW - 5, "exp": NOW + 300,
        "email": "ann@acme.test", "email_verified": true,
    })
}

fn with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn expected() -> Expected<'static> {
    Expected {
        issuer: ISSUER,
        client_id: CLIENT,
        nonce: NONCE,
        now: NOW,
    }
}

fn keys(signers: &[&Signer]) -> Jwks {
    Jwks {
        keys: signers.iter().map(|s| s.jwk()).collect(),
    }
}

#[test]
fn accepts_a_token_signed_by_a_key_of_the_set() {
    let (a, b) = (Signer::new("a"), Signer::new("b"));
    let claims = verify(&b.token(claims()), &keys(&[&a, &b]), expected()).unwrap();
    assert_eq!(
        claims,
        IdClaims {
            subject: "248289761001".into(),
            email: Some("ann@acme.test".into()),
            email_verified: Some(true),
        }
    );

    // Without a kid, any key of the right type may have signed.
    let no_kid = b.sign(json!({ "alg": "ES256" }), super::tests::claims());
    assert!(verify(&no_kid, &keys(&[&a, &b]), expected()).is_ok());
}

#[test]
fn refuses_tokens_whose_signature_does_not_verify() {
    let signer = Signer::new("a");
    let token = signer.token(claims());
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    parts[1] = B64.encode(with(json!({ "sub": "someone-else" })).to_string());
    let tampered = parts.join(".");
    assert!(matches!(
        verify(&tampered, &keys(&[&signer]), expected()),
        Err(IdTokenError::BadSignature)
    ));

    // Same kid, another key: the set decides, not the token.
    let impostor = Signer::new("a");
    assert!(matches!(
        verify(&impostor.token(claims()), &keys(&[&signer]), expected()),
        Err(IdTokenError::BadSignature)
    ));
    assert!(matches!(
        verify(&Signer::new("z").token(claims()), &keys(&[&signer]), expected()),
        Err(IdTokenError::UnknownKey(Some(kid))) if kid == "z"
    ));
}

#[test]
fn refuses_algorithms_it_does_not_choose() {
    let signer = Signer::new("a");
    let set = keys(&[&signer]);
    let body = B64.encode(claims().to_string());
    for alg in ["none", "HS256", "PS256", "RS512"] {
        let header = B64.encode(json!({ "alg": alg, "kid": "a" }).to_string());
        let token = format!("{header}.{body}.");
        assert!(
            matches!(
                verify(&token, &set, expected()),
                Err(IdTokenError::Algorithm(_))
            ),
            "{alg}"
        );
    }
    // RS256 is accepted as an algorithm, but no RSA key is in this set.
    let rs = signer.sign(json!({ "alg": "RS256", "kid": "a" }), claims());
    assert!(matches!(
        verify(&rs, &set, expected()),
        Err(IdTokenError::UnknownKey(_))
    ));
    let crit = signer.sign(
        json!({ "alg": "ES256", "kid": "a", "crit": ["exp"] }),
        claims(),
    );
    assert!(matches!(
        verify(&crit, &set, expected()),
        Err(IdTokenError::Malformed(_))
    ));
    assert!(matches!(
        verify("a.b", &set, expected()),
        Err(IdTokenError::Malformed(_))
    ));
}

#[test]
fn refuses_tokens_for_another_issuer_or_client() {
    let signer = Signer::new("a");
    let set = keys(&[&signer]);
    let check = |changes: Value| verify(&signer.token(with(changes)), &set, expected());

    assert!(matches!(
        check(json!({ "iss": "https://evil.test" })),
        Err(IdTokenError::Issuer(_))
    ));
    assert!(matches!(
        check(json!({ "aud": "other-client" })),
        Err(IdTokenError::Audience)
    ));
    // Several audiences: `azp` must name this client.
    assert!(matches!(
        check(json!({ "aud": [CLIENT, "other"] })),
        Err(IdTokenError::Audience)
    ));
    assert!(matches!(
        check(json!({ "aud": [CLIENT, "other"], "azp": "other" })),
        Err(IdTokenError::Audience)
    ));
    assert!(check(json!({ "aud": [CLIENT, "other"], "azp": CLIENT })).is_ok());
}

#[test]
fn refuses_expired_or_future_tokens_beyond_a_minute_of_skew() {
    let signer = Signer::new("a");
    let set = keys(&[&signer]);
    let check = |changes: Value| verify(&signer.token(with(changes)), &set, expected());

    assert!(check(json!({ "exp": NOW - 30 })).is_ok(), "within leeway");
    assert!(matches!(
        check(json!({ "exp": NOW - LEEWAY_SECONDS })),
        Err(IdTokenError::Expired)
    ));
    assert!(check(json!({ "iat": NOW + 30 })).is_ok(), "within leeway");
    assert!(matches!(
        check(json!({ "iat": NOW + 120 })),
        Err(IdTokenError::IssuedInFuture)
    ));
}

#[test]
fn refuses_a_missing_or_different_nonce() {
    let signer = Signer::new("a");
    let set = keys(&[&signer]);
    let check = |changes: Value| verify(&signer.token(with(changes)), &set, expected());

    assert!(matches!(
        check(json!({ "nonce": "replayed-from-another-flow" })),
        Err(IdTokenError::Nonce)
    ));
    assert!(matches!(
        check(json!({ "nonce": null })),
        Err(IdTokenError::Nonce)
    ));
}

#[test]
fn reads_email_verified_as_a_boolean_or_its_string() {
    let signer = Signer::new("a");
    let set = keys(&[&signer]);
    let check = |changes: Value| {
        verify(&signer.token(with(changes)), &set, expected())
            .unwrap()
            .email_verified
    };
    assert_eq!(check(json!({ "email_verified": "false" })), Some(false));
    assert_eq!(check(json!({ "email_verified": false })), Some(false));
    assert_eq!(check(json!({ "email_verified": null })), None);
}
