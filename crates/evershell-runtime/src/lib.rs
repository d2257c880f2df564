//! The local sandbox backend. A *sandbox* is one run of a workspace's agent
//! on this host: a process tree in its own user, mount, PID, UTS, IPC,
//! network and cgroup namespaces, seeing a root filesystem built for it and
//! a network namespace whose only sockets are the egress listeners handed to
//! the proxy.
//!
//! The server side ([`LocalRuntime::start`]) runs on a dedicated thread per
//! sandbox: that thread enters a fresh network namespace, binds the egress
//! listeners there, then spawns `evershell sandbox-init`, which becomes PID 1
//! of the sandbox and builds the rest ([`sandbox_init_main`]).
#![deny(unsafe_code)]

mod config;
mod error;
mod init;
mod keeper;
mod netns;
mod plan;
mod runtime;
mod sandbox;
#[allow(unsafe_code)]
mod sys;

pub use config::{Limits, LocalRuntimeConfig, SandboxSpec, WorkspacePaths};
pub use error::RuntimeError;
pub use init::sandbox_init_main;
pub use runtime::LocalRuntime;
pub use sandbox::Sandbox;
