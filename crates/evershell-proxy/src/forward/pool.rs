//! Upstream connection pools, one per (scheme, host, port, credential
//! identity), so that a connection that carried one workspace's injected
//! credentials is never reused for another's requests.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use lru::LruCache;

use super::connector::Connector;
use crate::body::ProxyBody;

/// Pools kept at once; the least recently used is dropped beyond this, its
/// idle connections with it.
const MAX_POOLS: usize = 1024;

/// How long an idle upstream connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

pub(crate) type UpstreamClient = Client<Connector, ProxyBody>;

/// Which pool a request's connection comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// `None` when no credential is stamped; otherwise the workspace and
    /// the credential names.
    pub identity: Option<String>,
}

/// The proxy's upstream clients.
pub(crate) struct Pools {
    connector: Connector,
    clients: Mutex<LruCache<PoolKey, UpstreamClient>>,
}

impl Pools {
    pub(crate) fn new(connector: Connector) -> Pools {
        Pools {
            connector,
            clients: Mutex::new(LruCache::new(
                NonZeroUsize::new(MAX_POOLS).expect("pool capacity is not zero"),
            )),
        }
    }

    /// The client whose pool serves `key`.
    pub(crate) fn client(&self, key: &PoolKey) -> UpstreamClient {
        // Every critical section is one cache operation.
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.get_or_insert(key.clone(), || self.build()).clone()
    }

    fn build(&self) -> UpstreamClient {
        Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(self.connector.clone())
    }
}
