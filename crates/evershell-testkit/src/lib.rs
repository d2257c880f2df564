//! Local stand-ins for the parts of the world a test machine cannot reach:
//! a scripted model server speaking a provider's wire format, a git
//! smart-HTTP server backed by the real `git http-backend`, and a test CA
//! for their TLS; plus throwaway PostgreSQL databases for running the
//! platform on its fleet engine. The demo (`evershell demo`) and the
//! end-to-end tests run the product against these; production code paths
//! are the same.
#![forbid(unsafe_code)]

pub mod git;
pub mod model;
pub mod postgres;
pub mod tls;
