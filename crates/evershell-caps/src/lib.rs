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
//!   why every candidate refused. Default deny. Rules that look at the body
//!   make it ask for the body first ([`Policy::decide_with_body`]);
//!   [`Policy::explain`] runs the same code and says why.
//! - [`apply_transforms`] runs the transforms of an allowed request on its
//!   parts (headers, query, path, JSON body), purely.
//!
//! The rules come from `shared/spec/caps-yaml.md` and `shared/spec/proxy.md`.
#![forbid(unsafe_code)]

mod body;
mod budget;
mod cel;
mod emit;
mod error;
mod host;
mod load;
mod model;
mod path;
mod policy;
mod provider;
mod rewrite;
mod transform;

pub use body::{BodyCheck, JsonSchema, SchemaError, DEFAULT_BODY_MAX_BYTES, MAX_BODY_MAX_BYTES};
pub use budget::{Budget, BudgetScope, Ceiling, Counter};
pub use cel::{CelExpr, CelVars, MAX_CEL_BYTES, MAX_CEL_DEPTH};
pub use emit::to_yaml;
pub use error::{CapsErrors, FieldError, HostError, PathError, PatternError};
pub use host::{normalize_host, HostPattern};
pub use load::{parse, MAX_DOCUMENT_BYTES, MAX_ERRORS};
pub use model::{
    AllowRule, Capability, CapabilityType, Method, Rewrite, Transform, TransformAction,
};
pub use path::{canonicalize_path, PathPattern, MAX_PATH_BYTES};
pub use policy::{
    AuthStep, BudgetRef, Candidate, Decision, Explanation, Policy, Refusal, RequestFacts, Scheme,
    WorkspaceFacts,
};
pub use provider::{
    provider_capability, try_provider_capability, ProviderError, PROVIDER_CAPABILITY,
};
pub use rewrite::{PathRewrite, RewriteError, MAX_REWRITE_PATTERN_BYTES};
pub use transform::{
    apply_transforms, RequestParts, SecretLookup, TransformContext, TransformOutcome, TransformStep,
};
