//! End-to-end checks of the local sandbox, run as root against the real
//! kernel: each test starts sandboxes and observes them from both sides.

mod filesystem;
mod lifecycle;
mod network;
mod support;
