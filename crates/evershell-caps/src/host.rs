//! Hosts: normalisation of the names the agent presents (Host header, SNI,
//! DNS query) and the domain patterns of allow rules, matched on DNS label
//! boundaries only.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{HostError, PatternError};

/// RFC 1035 §2.3.4 limits, applied to the ASCII (punycode) form.
const MAX_NAME_BYTES: usize = 253;
const MAX_LABEL_BYTES: usize = 63;

/// A domain pattern of an allow rule, normalised at load.
///
/// Forms: `example.com` (exactly that name), `*.example.com` (exactly one
/// more label), `**.example.com` (one or more labels; never the apex), an
/// IP literal (`10.0.0.7`, `[fd00::1]`), each with an optional non-default
/// port. Ports 443 and 80 are dropped at load and then mean "the default
/// port of the request's scheme"; any other port matches only itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPattern {
    shape: Shape,
    /// The normalised host part: the whole name for `Exact`, the suffix
    /// after the wildcard label otherwise.
    host: String,
    port: Option<u16>,
}

/// How a pattern's host part relates to a request host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Shape {
    Exact,
    OneLabel,
    ManyLabels,
}

/// Normalises a raw host as a client presents it and splits off its port.
///
/// Lower-cases, maps internationalised names to ASCII (UTS #46, punycode),
/// strips one trailing dot, canonicalises IP literals (IPv6 keeps its
/// brackets: `[fd00::1]`). Refuses userinfo (`@`), `#`, `/`, `\`, `%`,
/// whitespace, control characters, empty labels, over-long names and
/// numeric names that are not dotted-quad IPv4 (`127.1`, `0x7f.1`), which
/// some resolvers would read as addresses.
pub fn normalize_host(raw: &str) -> Result<(String, Option<u16>), HostError> {
    if raw.is_empty() {
        return Err(HostError::Empty);
    }
    if let Some(ch) = raw.chars().find(|c| forbidden_char(*c)) {
        return Err(HostError::InvalidChar {
            host: raw.to_owned(),
            ch,
        });
    }

    let (host, port) = split_port(raw)?;
    if host.starts_with('[') {
        return Ok((normalize_ipv6(raw, host)?, port));
    }

    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return Err(HostError::Empty);
    }
    Ok((normalize_name(raw, host)?, port))
}

impl HostPattern {
    /// Parses and normalises one `domains` entry.
    pub fn parse(raw: &str) -> Result<HostPattern, PatternError> {
        let (shape, rest) = if let Some(rest) = raw.strip_prefix("**.") {
            (Shape::ManyLabels, rest)
        } else if let Some(rest) = raw.strip_prefix("*.") {
            (Shape::OneLabel, rest)
        } else {
            (Shape::Exact, raw)
        };
        if raw == "*" || raw == "**" {
            return Err(PatternError::BareWildcard);
        }
        if rest.contains('*') {
            return Err(PatternError::PartialWildcard);
        }

        let (host, port) = normalize_host(rest)?;
        if shape != Shape::Exact && is_ip(&host) {
            return Err(PatternError::WildcardIp);
        }
        let port = port.filter(|p| *p != 443 && *p != 80);
        Ok(HostPattern { shape, host, port })
    }

    /// The explicit port, `None` for the scheme's default port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether this pattern admits the normalised `host` (no port; as
    /// returned by [`normalize_host`]). Ports are checked separately with
    /// [`HostPattern::admits_port`].
    pub fn matches_host(&self, host: &str) -> bool {
        match self.shape {
            Shape::Exact => host == self.host,
            Shape::OneLabel => {
                strip_label_suffix(host, &self.host).is_some_and(|prefix| !prefix.contains('.'))
            }
            Shape::ManyLabels => strip_label_suffix(host, &self.host).is_some(),
        }
    }

    /// Whether a connection to `port` with or without TLS fits this
    /// pattern's port: the written port, or 443 (TLS) / 80 (plain) when
    /// none was written.
    pub fn admits_port(&self, port: u16, tls: bool) -> bool {
        port_fits(self.port, port, tls)
    }

    pub(crate) fn shape(&self) -> Shape {
        self.shape
    }

    /// The normalised host part (whole name, or the suffix after the
    /// wildcard label).
    pub(crate) fn host_part(&self) -> &str {
        &self.host
    }
}

impl std::fmt::Display for HostPattern {
    /// The canonical pattern text; parses back to an equal pattern.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.shape {
            Shape::Exact => {}
            Shape::OneLabel => f.write_str("*.")?,
            Shape::ManyLabels => f.write_str("**.")?,
        }
        f.write_str(&self.host)?;
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

/// Whether `port` fits a pattern port (`None` = scheme default).
pub(crate) fn port_fits(pattern: Option<u16>, port: u16, tls: bool) -> bool {
    match pattern {
        Some(p) => p == port,
        None => port == if tls { 443 } else { 80 },
    }
}

/// Whether a normalised host is an IP literal.
pub(crate) fn is_ip(host: &str) -> bool {
    host.starts_with('[') || host.parse::<Ipv4Addr>().is_ok()
}

/// The part of `host` before `.suffix`, when `host` ends with `suffix` on a
/// label boundary and has at least one more label.
fn strip_label_suffix<'h>(host: &'h str, suffix: &str) -> Option<&'h str> {
    let prefix = host.strip_suffix(suffix)?.strip_suffix('.')?;
    (!prefix.is_empty()).then_some(prefix)
}

/// Characters that never belong to a host (with optional port), checked
/// before anything else so that `gitlab.com@evil.net` or
/// `evil.net#gitlab.com` can never be read as one name.
fn forbidden_char(c: char) -> bool {
    c.is_control()
        || c.is_whitespace()
        || matches!(
            c,
            '@' | '#' | '/' | '\\' | '?' | '%' | '*' | '"' | '<' | '>' | '^' | '|' | '`'
        )
}

/// Splits `host[:port]` / `[v6][:port]`.
fn split_port(raw: &str) -> Result<(&str, Option<u16>), HostError> {
    let (host, port) = if raw.starts_with('[') {
        match raw.find(']') {
            Some(end) if end + 1 == raw.len() => (raw, None),
            Some(end) => match raw[end + 1..].strip_prefix(':') {
                Some(port) => (&raw[..=end], Some(port)),
                None => {
                    return Err(HostError::InvalidIp {
                        host: raw.to_owned(),
                    })
                }
            },
            None => {
                return Err(HostError::InvalidIp {
                    host: raw.to_owned(),
                })
            }
        }
    } else {
        match raw.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (raw, None),
        }
    };

    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p).ok_or_else(|| HostError::InvalidPort {
            host: raw.to_owned(),
        })?),
    };
    Ok((host, port))
}

/// A decimal port in 1..=65535, digits only (no sign, no spaces).
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p != 0)
}

fn normalize_ipv6(raw: &str, bracketed: &str) -> Result<String, HostError> {
    let inner = &bracketed[1..bracketed.len() - 1];
    let addr: Ipv6Addr = inner.parse().map_err(|_| HostError::InvalidIp {
        host: raw.to_owned(),
    })?;
    Ok(format!("[{addr}]"))
}

/// Normalises a DNS name or dotted-quad IPv4 (no port, no trailing dot).
fn normalize_name(raw: &str, host: &str) -> Result<String, HostError> {
    if host.contains(':') || host.contains('[') || host.contains(']') {
        return Err(HostError::InvalidChar {
            host: raw.to_owned(),
            ch: ':',
        });
    }
    if let Ok(v4) = host.parse::<Ipv4Addr>() {
        return Ok(v4.to_string());
    }

    let ascii = to_ascii(raw, host)?;
    check_labels(raw, &ascii)?;
    Ok(ascii)
}

/// Lower-cases plain ASCII names directly; anything else (non-ASCII, or an
/// `xn--` label that must decode) goes through UTS #46 processing.
fn to_ascii(raw: &str, host: &str) -> Result<String, HostError> {
    let plain = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    let has_ace = host.split('.').any(|l| {
        l.as_bytes()
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"xn--"))
    });
    if plain && !has_ace {
        return Ok(host.to_ascii_lowercase());
    }

    let out = idna::uts46::Uts46::new()
        .to_ascii(
            host.as_bytes(),
            idna::uts46::AsciiDenyList::URL,
            idna::uts46::Hyphens::Allow,
            idna::uts46::DnsLength::Ignore,
        )
        .map_err(|_| HostError::Idna {
            host: raw.to_owned(),
        })?;

    // UTS #46 maps some characters to '.', or keeps ones a name cannot hold
    // (full-width dots, for instance): re-check the ASCII result.
    let ok = out
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !ok {
        return Err(HostError::Idna {
            host: raw.to_owned(),
        });
    }
    Ok(out.into_owned())
}

/// Label and name lengths, no empty label, and no all-numeric last label
/// (which is an address, not a name, in WHATWG URL parsing).
fn check_labels(raw: &str, ascii: &str) -> Result<(), HostError> {
    if ascii.len() > MAX_NAME_BYTES {
        return Err(HostError::TooLong {
            host: raw.to_owned(),
        });
    }
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(HostError::EmptyLabel {
                host: raw.to_owned(),
            });
        }
        if label.len() > MAX_LABEL_BYTES {
            return Err(HostError::LabelTooLong {
                host: raw.to_owned(),
            });
        }
    }

    let last = ascii
        .rsplit('.')
        .next()
        .expect("split yields at least one label");
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || (last.starts_with("0x") && last[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        return Err(HostError::AmbiguousNumeric {
            host: raw.to_owned(),
        });
    }
    Ok(())
}
