//! The workspace network namespace, seen from the agent and from the proxy's
//! side of the listeners.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::thread;

use crate::support::{spec, wait_exit, Fixture};
use std::time::Duration;

/// Python client: connects to each `host port` argument pair and prints
/// `refused`, `open` or the error name.
const PROBE: &str = r#"
import socket, sys
args = sys.argv[1:]
for host, port in zip(args[::2], args[1::2]):
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        print("open")
    except ConnectionRefusedError:
        print("refused")
    except OSError as e:
        print(type(e).__name__)
"#;

#[test]
fn connections_to_ports_without_a_listener_are_refused_inside_the_namespace() {
    let fx = Fixture::new();
    let script = format!(
        "python3 -c '{PROBE}' 127.0.0.1 22 1.2.3.4 9999 ::1 22 2001:db8::1 9999 127.0.0.1 443"
    );
    let (code, out) = fx.run("ws-refused", 200_201, &script);
    assert_eq!(code, 0, "{out}");
    // The last one reaches the (unserved, but listening) 443 listener.
    assert_eq!(out, "refused\nrefused\nrefused\nrefused\nopen\n");
}

#[test]
fn https_listener_accepts_what_the_agent_dials_on_any_address() {
    let fx = Fixture::new();
    let client = r#"
import socket
for host in ("198.18.0.1", "2001:db8::7"):
    s = socket.create_connection((host, 443), timeout=5)
    s.sendall(b"hello\n")
    print(s.makefile().readline().strip())
"#;
    let mut sandbox = fx.start(&spec(
        "ws-https",
        200_202,
        &format!("python3 -c '{client}'"),
    ));
    let listeners = sandbox.take_listeners();
    assert_eq!(listeners.https.len(), 2);
    assert_eq!(listeners.dns_udp.len(), 2);
    let http_ports: Vec<u16> = listeners.http.iter().map(|(_, p)| *p).collect();
    assert_eq!(http_ports, [80, 8080, 80, 8080]);

    let acceptors: Vec<_> = listeners
        .https
        .into_iter()
        .map(|(listener, port)| {
            assert_eq!(port, 443);
            thread::spawn(move || serve_one(listener))
        })
        .collect();
    let code = wait_exit(&sandbox, Duration::from_secs(10));
    let dialled: Vec<SocketAddr> = acceptors
        .into_iter()
        .map(|a| a.join().expect("acceptor"))
        .collect();

    let out = std::fs::read_to_string(fx.runtime.paths("ws-https").console_log()).expect("log");
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "echo hello\necho hello\n");
    let expected: Vec<SocketAddr> = vec![
        "198.18.0.1:443".parse().expect("v4"),
        "[2001:db8::7]:443".parse().expect("v6"),
    ];
    assert_eq!(dialled, expected);
}

#[test]
fn agent_cannot_change_routes_links_or_bind_listener_ports() {
    let fx = Fixture::new();
    let bind = r#"
import socket
for host, port in (("198.18.0.1", 8080), ("0.0.0.0", 443), ("127.0.0.1", 53)):
    try:
        socket.create_server((host, port))
        print("bound", port)
    except OSError:
        pass
"#;
    let script = format!(
        "ip route add 10.0.0.0/8 dev lo 2>/dev/null && echo route-added
         ip link set lo down 2>/dev/null && echo link-down
         python3 -c '{bind}'
         ip -4 route show table local | grep -c '^local default'"
    );
    let (code, out) = fx.run("ws-routes", 200_203, &script);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "1\n");
}

#[test]
fn dns_queries_to_the_configured_resolver_reach_the_udp_listener() {
    let fx = Fixture::new();
    let client = r#"
import socket
ns = open("/etc/resolv.conf").read().split()[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"query", (ns, 53))
"#;
    let mut sandbox = fx.start(&spec("ws-dns", 200_204, &format!("python3 -c '{client}'")));
    let listeners = sandbox.take_listeners();
    let udp = &listeners.dns_udp[0];
    udp.set_nonblocking(false).expect("blocking");
    udp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let (n, _) = udp.recv_from(&mut buf).expect("a datagram");
    assert_eq!(&buf[..n], b"query");
    assert_eq!(wait_exit(&sandbox, Duration::from_secs(10)), 0);
}

/// Accepts one connection, answers `echo <line>`, returns the address the
/// client dialled.
fn serve_one(listener: TcpListener) -> SocketAddr {
    listener.set_nonblocking(false).expect("blocking listener");
    let (stream, _) = listener.accept().expect("accept");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let dialled = stream.local_addr().expect("local addr");
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).expect("read");
    (&stream)
        .write_all(format!("echo {line}").as_bytes())
        .expect("write");
    dialled
}
