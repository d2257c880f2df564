//! Capabilities: the caps.yaml language that says which outbound requests a
//! workspace's agent may make and which credentials ride on them.
//!
//! The crate has three stages, each in its own module:
//!
//! - [`parse`] reads a caps.yaml document (YAML with positions), validates it
//!   strictly and returns [`Capability`] values; [`to_yaml`] prints the
//!   canonical form back.
//! - [`Policy::compile`] merges the provider's and the role's capabilities
//!   into an immutable, hash-versioned policy indexed by host.
//! - [`Policy::decide`] is the egress proxy's hot path: it normalises the
//!   host, canonicalises the path, and returns a [`Decision`] naming the rule
//!   that admitted the request (first admitting rule in document order) or
//!   why every candidate refused. Default deny.
//!
//! The rules come from `shared/spec/caps-yaml.md` and `shared/spec/proxy.md`.
#![forbid(unsafe_code)]

mod emit;
mod error;
mod host;
mod load;
mod model;
mod path;
mod policy;
mod provider;

pub use emit::to_yaml;
pub use error::{CapsErrors, FieldError, HostError, PathError, PatternError};
pub use host::{normalize_host, HostPattern};
pub use load::{parse, MAX_DOCUMENT_BYTES, MAX_ERRORS};
pub use model::{AllowRule, Capability, CapabilityType, Method, Transform, TransformAction};
pub use path::{canonicalize_path, PathPattern, MAX_PATH_BYTES};
pub use policy::{AuthStep, Decision, Policy, Refusal, RequestFacts, Scheme};
pub use provider::{
    provider_capability, try_provider_capability, ProviderError, PROVIDER_CAPABILITY,
};
