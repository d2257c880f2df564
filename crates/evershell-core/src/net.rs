//! Sockets that carry a workspace's egress: opened by the runtime inside the
//! workspace's network namespace, served by the egress proxy outside it.

use std::net::{TcpListener, UdpSocket};

/// The listening sockets of one workspace's network namespace. Each TCP
/// listener is paired with its *logical* port: the port the agent dialled
/// (443, 80, or an extra port of the role), which is also the upstream port.
/// The workspace a connection belongs to is the set of listeners that
/// accepted it, which nothing inside the sandbox can forge.
#[derive(Debug, Default)]
pub struct EgressListeners {
    /// TLS listeners (443 by default): the proxy terminates TLS.
    pub https: Vec<(TcpListener, u16)>,
    /// Plain-HTTP listeners (80 by default, plus the role's extra ports).
    pub http: Vec<(TcpListener, u16)>,
    /// The workspace resolver, UDP :53.
    pub dns_udp: Vec<UdpSocket>,
    /// The workspace resolver, TCP :53.
    pub dns_tcp: Vec<TcpListener>,
}
