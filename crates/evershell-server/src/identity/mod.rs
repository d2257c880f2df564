//! Identity of people: a user is an email with an argon2id password hash
//! (or an account at the configured OpenID Connect provider, see [`oidc`]),
//! and a session is a signed JWT naming the user and the org it acts in.
//! API keys, the other kind of caller, live in [`crate::api::auth`].

pub mod jwt;
pub mod oidc;
pub mod password;

pub use jwt::{Claims, SessionKeys, SESSION_LIFETIME_SECONDS};
