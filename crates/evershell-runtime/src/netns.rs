//! The workspace network namespace: only `lo`, with "any-IP" local routes so
//! that every destination address is local, and the egress listeners bound
//! in it. Whatever the agent dials either reaches a listener (and so the
//! proxy) or is refused; nothing leaves the namespace.
//!
//! Every function here acts on the *calling thread's* network namespace and
//! must run on the sandbox's keeper thread.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};

use evershell_core::net::EgressListeners;
use nix::sched::CloneFlags;
use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrIn, SockaddrIn6,
};

/// Where `ip` lives on the distributions we run on, in lookup order.
const IP_CANDIDATES: [&str; 4] = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"];

/// Moves the calling thread (only it) into a new, empty network namespace.
pub(crate) fn enter_new() -> io::Result<()> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNET)?;
    Ok(())
}

/// Brings `lo` up and makes every IPv4 and IPv6 address local to it.
/// `ip` runs as a child of the calling thread, so it acts on its namespace.
pub(crate) fn route_everything_locally() -> io::Result<()> {
    let ip = IP_CANDIDATES
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no `ip` binary (iproute2)"))?;
    run_ip(ip, &["link", "set", "lo", "up"])?;
    run_ip(
        ip,
        &["-4", "route", "add", "local", "0.0.0.0/0", "dev", "lo"],
    )?;
    run_ip(ip, &["-6", "route", "add", "local", "::/0", "dev", "lo"])
}

/// Binds the egress listeners on both address families: TCP 443 (https),
/// TCP 80 and `extra_tcp_ports` (http), UDP and TCP 53 (dns).
///
/// Every socket is close-on-exec (so the sandbox never inherits one),
/// non-blocking (ready for `tokio::net::*::from_std`), has `SO_REUSEADDR`,
/// and, for UDP, packet-info reception enabled so the resolver can learn
/// the address a query was sent to. IPv6 sockets are v6-only.
pub(crate) fn bind_listeners(extra_tcp_ports: &[u16]) -> io::Result<EgressListeners> {
    let mut http_ports = vec![80];
    for &port in extra_tcp_ports {
        if port != 443 && !http_ports.contains(&port) {
            http_ports.push(port);
        }
    }

    let mut listeners = EgressListeners::default();
    for any in [Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()] {
        listeners
            .https
            .push((tcp_listener(SocketAddr::new(any, 443))?, 443));
        for &port in &http_ports {
            listeners
                .http
                .push((tcp_listener(SocketAddr::new(any, port))?, port));
        }
        listeners
            .dns_tcp
            .push(tcp_listener(SocketAddr::new(any, 53))?);
        listeners
            .dns_udp
            .push(udp_socket(SocketAddr::new(any, 53))?);
    }
    Ok(listeners)
}

fn run_ip(ip: &Path, args: &[&str]) -> io::Result<()> {
    let out = Command::new(ip)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(io::Error::other(format!(
        "ip {}: {} ({})",
        args.join(" "),
        stderr.trim(),
        out.status
    )))
}

fn tcp_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let fd = bound_socket(addr, SockType::Stream)?;
    listen(&fd, Backlog::MAXCONN)?;
    Ok(TcpListener::from(fd))
}

fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let fd = bound_socket(addr, SockType::Datagram)?;
    match addr {
        SocketAddr::V4(_) => setsockopt(&fd, sockopt::Ipv4PacketInfo, &true)?,
        SocketAddr::V6(_) => setsockopt(&fd, sockopt::Ipv6RecvPacketInfo, &true)?,
    }
    Ok(UdpSocket::from(fd))
}

fn bound_socket(addr: SocketAddr, ty: SockType) -> io::Result<OwnedFd> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let fd = socket(family, ty, flags, None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    match addr {
        SocketAddr::V4(v4) => bind(fd.as_raw_fd(), &SockaddrIn::from(v4))?,
        SocketAddr::V6(v6) => {
            // Without v6-only, `[::]:443` would also claim IPv4 and the
            // separate `0.0.0.0:443` bind would fail.
            setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
            bind(fd.as_raw_fd(), &SockaddrIn6::from(v6))?;
        }
    }
    Ok(fd)
}
