//! Evershell's shared vocabulary: identifiers, scopes, API error codes, the
//! audit event, and the contract between the control plane and the agent
//! service that runs inside every workspace.
//!
//! Nothing here does I/O; every other crate depends on this one.
#![forbid(unsafe_code)]

pub mod agent;
pub mod audit;
pub mod error;
pub mod id;
pub mod model;
pub mod net;
pub mod scope;

pub use audit::{
    Actor, AuditError, AuditEvent, AuditSink, Category, Decision, EventType, Phase, PolicyType,
};
pub use error::ErrorCode;
pub use scope::Scope;
