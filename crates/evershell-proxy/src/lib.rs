//! The egress proxy: the only way out of a workspace. It terminates TLS with
//! the platform CA, decides every request against the workspace's compiled
//! capability policy, injects credentials and writes one audit row per
//! decision.
//!
//! A request travels through the same stages whatever its protocol, one
//! module each:
//!
//! - `intercept`: accept on the workspace's listeners, read the TLS
//!   ClientHello, gate the connection, mint a leaf certificate and serve
//!   HTTP/1.1 or HTTP/2;
//! - `classify`: check framing and the names a request carries (SNI, `Host`,
//!   `:authority`, absolute-form targets) and reduce it to policy facts;
//! - `authorize`: ask the compiled policy for a decision, with the body
//!   read ahead when a rule judges it;
//! - `budget`: reserve the request's estimated usage against its
//!   capability's budgets, and settle it from the response;
//! - `transform`: rewrite the request as the decision's transforms say and
//!   stamp the credentials they name;
//! - `forward`: send the request to the policy host, stream both bodies;
//! - `audit`: turn what happened into exactly one `policy_decision` row.
//!
//! `dns` answers the workspace's resolver and `ca` holds the platform CA.
#![forbid(unsafe_code)]

mod audit;
mod authorize;
mod binding;
mod body;
mod budget;
pub mod ca;
mod classify;
mod config;
mod credentials;
mod dns;
mod forward;
mod intercept;
mod pipeline;
mod proxy;
mod refusal;
mod secrets;
mod transform;

pub use binding::WorkspaceBinding;
pub use budget::{BudgetCounter, BudgetStore, BudgetStoreError, BudgetStoreFuture, StoredCounter};
pub use config::{ProxyConfig, DEFAULT_IDLE_TIMEOUT};
pub use credentials::{CredentialError, CredentialSource, ResolvedCredential};
pub use intercept::ServeHandle;
pub use proxy::{Proxy, ProxyBuilder};
pub use secrets::{SecretError, SecretSource};
