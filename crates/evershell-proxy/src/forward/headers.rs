//! Hop-by-hop header fields (RFC 9110 §7.6.1): they describe one connection,
//! so the proxy drops them on both legs and lets each side frame its own.

use http::header::{HeaderName, CONNECTION, HOST, TE, TRANSFER_ENCODING, UPGRADE};
use http::HeaderMap;

/// Fields that never cross the proxy, besides those `Connection` lists.
const HOP_BY_HOP: [&str; 5] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-authentication-info",
];

/// Prepares the agent's header fields for the upstream leg. `TE: trailers`
/// survives (gRPC needs it over HTTP/2); `Host` is rebuilt from the policy
/// host by the client.
pub(crate) fn strip_request(headers: &mut HeaderMap) {
    let keep_te = headers
        .get_all(TE)
        .iter()
        .all(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    let te = headers.get(TE).cloned();
    strip(headers);
    headers.remove(HOST);
    if let (true, Some(te)) = (keep_te, te) {
        headers.insert(TE, te);
    }
}

/// Prepares the upstream's header fields for the agent's leg.
pub(crate) fn strip_response(headers: &mut HeaderMap) {
    strip(headers);
}

fn strip(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [CONNECTION, TE, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn fields_named_by_connection_are_dropped_with_it() {
        let mut map = headers(&[
            ("connection", "keep-alive, x-session"),
            ("x-session", "abc"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("content-encoding", "gzip"),
            ("host", "agent.example"),
        ]);
        strip_request(&mut map);
        assert_eq!(map.len(), 1, "{map:?}");
        assert_eq!(map["content-encoding"], "gzip");
    }

    #[test]
    fn te_trailers_survives_for_grpc_and_other_te_values_do_not() {
        let mut map = headers(&[("te", "trailers")]);
        strip_request(&mut map);
        assert_eq!(map["te"], "trailers");

        let mut map = headers(&[("te", "gzip")]);
        strip_request(&mut map);
        assert!(map.get("te").is_none());
    }
}
