//! Route handlers, one module per resource.

pub mod api_keys;
pub mod audit;
pub mod config;
pub mod credentials;
pub mod lifecycle;
pub mod members;
pub mod oidc;
pub mod providers;
pub mod roles;
pub mod secrets;
pub mod sign_in;
pub mod stream;
pub mod tasks;
pub mod workspaces;
