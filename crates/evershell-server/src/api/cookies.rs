//! The console's cookies. `evershell_session` carries a session token for
//! browsers (`HttpOnly`, so page scripts never read it; `Secure`;
//! `SameSite=Lax`, so other sites' forms and scripts do not send it).
//! `evershell_oidc_state` binds an OpenID Connect sign-in to the browser
//! that started it.
//!
//! A browser attaches cookies on its own, so a request authenticated by the
//! session cookie that changes something must also prove it comes from a
//! page of this server: its `Origin` (or, lacking one, its `Referer`) must
//! be the public URL's origin. Requests with an `Authorization` header are
//! not concerned: browsers never add one by themselves.

use axum::http::header::{COOKIE, ORIGIN, REFERER};
use axum::http::{HeaderMap, HeaderValue, Method};
use reqwest::Url;

/// The session cookie's name.
pub const SESSION: &str = "evershell_session";
/// The OpenID Connect flow-binding cookie's name.
pub const OIDC_STATE: &str = "evershell_oidc_state";

/// `Set-Cookie` for a session token valid `max_age_seconds`.
pub fn set_session(token: &str, max_age_seconds: i64) -> HeaderValue {
    set(SESSION, token, "/", max_age_seconds)
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session() -> HeaderValue {
    set(SESSION, "", "/", 0)
}

/// `Set-Cookie` binding a sign-in flow's `state` to this browser, sent
/// only to the callback.
pub fn set_oidc_state(state: &str, max_age_seconds: i64) -> HeaderValue {
    set(OIDC_STATE, state, "/auth/oidc", max_age_seconds)
}

pub fn clear_oidc_state() -> HeaderValue {
    set(OIDC_STATE, "", "/auth/oidc", 0)
}

fn set(name: &str, value: &str, path: &str, max_age_seconds: i64) -> HeaderValue {
    let text = format!(
        "{name}={value}; HttpOnly; Secure; SameSite=Lax; Path={path}; Max-Age={max_age_seconds}"
    );
    HeaderValue::from_str(&text).expect("cookie values are base64url or jwt text")
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn read<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v).filter(|v| !v.is_empty())
        })
}

/// Whether a cookie-authenticated request with `method` may proceed: safe
/// methods always; others only from a page of `public_url`'s origin.
pub fn same_origin_or_safe(method: &Method, headers: &HeaderMap, public_url: &str) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    let Some(ours) = origin_of(public_url) else {
        return false;
    };
    let theirs = match headers.get(ORIGIN) {
        Some(origin) => origin.to_str().ok().and_then(origin_of),
        None => headers
            .get(REFERER)
            .and_then(|r| r.to_str().ok())
            .and_then(origin_of),
    };
    theirs.is_some_and(|theirs| theirs == ours)
}

/// `scheme://host[:port]` of `url` (RFC 6454), default ports dropped;
/// `None` for opaque origins such as `null`.
fn origin_of(url: &str) -> Option<String> {
    let origin = Url::parse(url).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn reads_a_cookie_among_others_and_across_headers() {
        let h = headers(&[
            ("cookie", "a=1; evershell_session=eyJ.x.y"),
            ("cookie", "evershell_oidc_state=abc"),
        ]);
        assert_eq!(read(&h, SESSION), Some("eyJ.x.y"));
        assert_eq!(read(&h, OIDC_STATE), Some("abc"));
        assert_eq!(read(&h, "missing"), None);
        assert_eq!(
            read(&headers(&[("cookie", "evershell_session=")]), SESSION),
            None
        );
    }

    #[test]
    fn unsafe_cookie_requests_need_the_public_origin() {
        let public = "http://127.0.0.1:8080";
        let post = Method::POST;
        assert!(same_origin_or_safe(&Method::GET, &headers(&[]), public));
        assert!(!same_origin_or_safe(&post, &headers(&[]), public));
        let ok = headers(&[("origin", "http://127.0.0.1:8080")]);
        assert!(same_origin_or_safe(&post, &ok, public));
        let referer = headers(&[("referer", "http://127.0.0.1:8080/workspaces?x=1")]);
        assert!(same_origin_or_safe(&Method::DELETE, &referer, public));
        for (name, value) in [
            ("origin", "http://127.0.0.1:8081"),
            ("origin", "https://127.0.0.1:8080"),
            ("origin", "null"),
            ("origin", "http://evil.test"),
            ("referer", "http://evil.test/http://127.0.0.1:8080"),
        ] {
            let h = headers(&[(name, value)]);
            assert!(!same_origin_or_safe(&post, &h, public), "{name}: {value}");
        }
        // Default ports are the same origin.
        let https = headers(&[("origin", "https://evershell.acme.test")]);
        assert!(same_origin_or_safe(
            &post,
            &https,
            "https://evershell.acme.test:443/"
        ));
    }

    #[test]
    fn cookies_are_http_only_secure_and_lax() {
        let set = set_session("eyJ.a.b", 43200);
        assert_eq!(
            set.to_str().unwrap(),
            "evershell_session=eyJ.a.b; HttpOnly; Secure; SameSite=Lax; Path=/; Max-Age=43200"
        );
        assert!(clear_session().to_str().unwrap().contains("Max-Age=0"));
    }
}
