//! The proxy: what every workspace it serves shares (the platform CA and its
//! leaf cache, upstream pools, the audit sink, the credential source).

use std::sync::Arc;

use evershell_core::net::EgressListeners;
use evershell_core::AuditSink;

use crate::audit::AuditWriter;
use crate::binding::WorkspaceBinding;
use crate::ca::{CertificateAuthority, LeafCache};
use crate::config::ProxyConfig;
use crate::credentials::CredentialSource;
use crate::forward::Upstreams;
use crate::intercept::{self, ServeHandle};

/// The egress proxy of an installation.
pub struct Proxy {
    pub(crate) config: ProxyConfig,
    pub(crate) leaves: LeafCache,
    pub(crate) audit: AuditWriter,
    pub(crate) credentials: Arc<dyn CredentialSource>,
    pub(crate) upstreams: Upstreams,
}

impl Proxy {
    /// A proxy presenting leaves signed by `ca`, writing rows to `audit`
    /// and stamping credentials from `credentials`. Loads the OS trust
    /// store once, here.
    pub fn new(
        config: ProxyConfig,
        ca: CertificateAuthority,
        audit: Arc<dyn AuditSink>,
        credentials: Arc<dyn CredentialSource>,
    ) -> Arc<Proxy> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(Proxy {
            leaves: LeafCache::new(ca, provider.clone()),
            upstreams: Upstreams::new(&config, provider),
            audit: AuditWriter::new(audit),
            credentials,
            config,
        })
    }

    /// Serves one workspace's egress on `listeners` until the returned
    /// handle is dropped, which ends every task of the workspace (accept
    /// loops, connections, streams, the resolver). Must be called inside a
    /// tokio runtime. A listener that cannot be registered with the runtime
    /// is logged and skipped.
    pub fn serve(
        self: &Arc<Self>,
        binding: Arc<WorkspaceBinding>,
        listeners: EgressListeners,
    ) -> ServeHandle {
        intercept::serve(self.clone(), binding, listeners)
    }
}
