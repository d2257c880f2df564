//! Classification: reducing a request to the *facts* the policy decides on
//! (scheme, host, port, raw target), after refusing what no policy should
//! see: untrusted framing, an oversized header section, tunnels, and names
//! that disagree with the connection (the TLS server name, or on plain HTTP
//! the `Host` header).

pub(crate) mod framing;

use evershell_caps::Scheme;
use http::header::{HOST, UPGRADE};
use http::{HeaderMap, Method, Request};

use crate::intercept::Conn;
use crate::refusal::Denial;

use framing::{Verdict, MAX_HEAD_BYTES};

/// Per-field overhead counted in a header section, as HTTP/2 counts it for
/// `SETTINGS_MAX_HEADER_LIST_SIZE` (RFC 9113 §6.5.2).
const FIELD_OVERHEAD: usize = 32;

/// The longest raw path kept for a row when the policy produced no
/// canonical one.
const MAX_LOGGED_PATH: usize = 2048;

/// What the policy needs to know about a request, owned.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    pub scheme: Scheme,
    /// The normalised host the request is for, verified against the
    /// connection.
    pub host: String,
    /// The listener's logical port: the port the agent dialled.
    pub port: u16,
    /// Path and query exactly as received.
    pub target: String,
}

/// Checks `request` arriving on `conn` and returns its facts.
///
/// Takes the connection's next framing verdict first, whatever happens
/// after, so that verdicts stay aligned with requests.
pub(crate) fn request<B>(conn: &Conn, request: &Request<B>) -> Result<Facts, Denial> {
    check_framing(conn)?;
    check_header_section(request.headers())?;
    check_tunnel(request)?;
    let host = check_names(conn, request)?;

    let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
    Ok(Facts {
        scheme: if conn.listener.tls {
            Scheme::Https
        } else {
            Scheme::Http
        },
        host,
        port: conn.listener.port,
        target: target.to_owned(),
    })
}

/// The path a row names before the policy canonicalised it: the raw path
/// without the query, bounded.
pub(crate) fn raw_path<B>(request: &Request<B>) -> String {
    let path = request.uri().path();
    let mut end = path.len().min(MAX_LOGGED_PATH);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    path[..end].to_owned()
}

/// `host`, with `:port` when `port` is not the scheme's default.
pub(crate) fn destination(host: &str, port: u16, tls: bool) -> String {
    let default = if tls { 443 } else { 80 };
    if port == default {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    }
}

fn check_framing(conn: &Conn) -> Result<(), Denial> {
    let Some(verdicts) = &conn.framing else {
        // HTTP/2 frames every message itself.
        return Ok(());
    };
    match verdicts.next() {
        Some(Verdict::Clean) => Ok(()),
        Some(Verdict::Refused(shape)) => Err(Denial::Malformed { shape }),
        None => Err(Denial::Malformed {
            shape: "unverified_framing",
        }),
    }
}

fn check_header_section(headers: &HeaderMap) -> Result<(), Denial> {
    let size: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + FIELD_OVERHEAD)
        .sum();
    if size > MAX_HEAD_BYTES {
        return Err(Denial::Malformed {
            shape: "header_section_too_large",
        });
    }
    Ok(())
}

/// CONNECT (HTTP/1 tunnels, HTTP/2 extended CONNECT) and protocol upgrades
/// (WebSocket, h2c) are not relayed yet; refusing them keeps them from
/// being passed through undecided.
fn check_tunnel<B>(request: &Request<B>) -> Result<(), Denial> {
    if request.method() == Method::CONNECT {
        return Err(Denial::Unsupported {
            reason: "connect_unsupported",
        });
    }
    if request.headers().contains_key(UPGRADE) {
        return Err(Denial::Unsupported {
            reason: "upgrade_unsupported",
        });
    }
    Ok(())
}

/// Every name the request carries (the target's authority, the `Host`
/// header) must be the connection's host: the SNI on TLS, the first name on
/// plain HTTP. A port, when given, must be the listener's.
fn check_names<B>(conn: &Conn, request: &Request<B>) -> Result<String, Denial> {
    let mut hosts = request.headers().get_all(HOST).iter();
    let host_header = hosts.next();
    if hosts.next().is_some() {
        return Err(Denial::Malformed {
            shape: "duplicate_host",
        });
    }

    let mut names = Vec::with_capacity(2);
    if let Some(authority) = request.uri().authority() {
        names.push(authority.as_str());
    }
    if let Some(value) = host_header {
        names.push(value.to_str().map_err(|_| invalid_host())?);
    }
    if names.is_empty() {
        return Err(Denial::Request {
            reason: "host_missing",
        });
    }

    let mismatch = Denial::Request {
        reason: if conn.listener.tls {
            "sni_host_mismatch"
        } else {
            "host_mismatch"
        },
    };
    let mut expected = conn.sni.clone();
    for name in names {
        let (host, port) = evershell_caps::normalize_host(name).map_err(|_| invalid_host())?;
        if port.is_some_and(|p| p != conn.listener.port) {
            return Err(mismatch);
        }
        match &expected {
            Some(first) if *first != host => return Err(mismatch),
            Some(_) => {}
            None => expected = Some(host),
        }
    }
    Ok(expected.expect("at least one name was checked"))
}

fn invalid_host() -> Denial {
    Denial::Request {
        reason: "invalid_host",
    }
}
