//! End-to-end behaviour of the egress proxy: real TLS, real curl, loopback
//! only. One binary, one file per behaviour.

mod support;

mod bodies;
mod budgets;
mod dns;
mod forwarding;
mod lifecycle;
mod plain_http;
mod refusals;
mod smuggling;
mod streaming;
mod tls_gate;
mod transforms;
