//! The egress proxy: the only way out of a workspace. It terminates TLS with
//! the platform CA, decides every request against the workspace's compiled
//! capability policy, injects credentials and writes one audit row per
//! decision.
#![forbid(unsafe_code)]

pub mod ca;
