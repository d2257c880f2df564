//! Host normalisation and label-boundary domain patterns.

use evershell_caps::{normalize_host, HostPattern, PatternError};

#[test]
fn normalizes_case_trailing_dot_port_and_idna() {
    let cases: &[(&str, &str, Option<u16>)] = &[
        ("gitlab.com", "gitlab.com", None),
        ("GITLAB.COM.", "gitlab.com", None),
        ("GitLab.com:443", "gitlab.com", Some(443)),
        ("gitlab.com.:8443", "gitlab.com", Some(8443)),
        ("bücher.example", "xn--bcher-kva.example", None),
        ("BÜCHER.example", "xn--bcher-kva.example", None),
        ("xn--bcher-kva.example", "xn--bcher-kva.example", None),
        ("10.0.0.7", "10.0.0.7", None),
        ("10.0.0.7:5000", "10.0.0.7", Some(5000)),
        ("[FD00::1]", "[fd00::1]", None),
        ("[fd00:0:0::1]:8443", "[fd00::1]", Some(8443)),
        ("under_score.example", "under_score.example", None),
    ];
    for (raw, host, port) in cases {
        let got = normalize_host(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
        assert_eq!(got, (host.to_string(), *port), "{raw}");
    }
}

#[test]
fn rejects_hosts_that_could_be_read_as_another_name() {
    let bad = [
        "",
        ".",
        "gitlab.com@evil.net",
        "user:pw@gitlab.com",
        "evil.net#gitlab.com",
        "evil.net/gitlab.com",
        "evil.net\\gitlab.com",
        "evil.net?gitlab.com",
        "gitlab%2ecom",
        "gitlab..com",
        ".gitlab.com",
        "gitlab.com..",
        "gitlab .com",
        "gitlab.com\n",
        "gitlab.com:",
        "gitlab.com:0",
        "gitlab.com:65536",
        "gitlab.com:+443",
        "gitlab.com:443:443",
        "[fd00::1",
        "[not-an-ip]",
        "fd00::1",
        "127.1",
        "0x7f.0.0.1",
        "1.2.3.256",
        "*.gitlab.com",
    ];
    for raw in bad {
        assert!(normalize_host(raw).is_err(), "{raw:?} should be refused");
    }
}

#[test]
fn rejects_over_long_names_and_labels() {
    let label = "a".repeat(64);
    assert!(normalize_host(&format!("{label}.com")).is_err());
    let long = format!("{}com", "abcdefghi.".repeat(26));
    assert!(long.len() > 253);
    assert!(normalize_host(&long).is_err());
}

fn pattern(p: &str) -> HostPattern {
    HostPattern::parse(p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[test]
fn matches_hosts_on_label_boundaries_only() {
    let cases: &[(&str, &str, bool)] = &[
        ("gitlab.com", "gitlab.com", true),
        ("gitlab.com", "evilgitlab.com", false),
        ("gitlab.com", "gitlab.com.evil.net", false),
        ("gitlab.com", "api.gitlab.com", false),
        ("*.example.com", "api.example.com", true),
        ("*.example.com", "example.com", false),
        ("*.example.com", "a.b.example.com", false),
        ("*.example.com", "apiexample.com", false),
        ("*.example.com", "api.example.com.evil.net", false),
        ("**.example.com", "api.example.com", true),
        ("**.example.com", "a.b.example.com", true),
        ("**.example.com", "example.com", false),
        ("**.example.com", "badexample.com", false),
        ("10.0.0.7", "10.0.0.7", true),
        ("10.0.0.7", "10.0.0.70", false),
        ("[fd00::1]", "[fd00::1]", true),
        ("BÜCHER.example", "xn--bcher-kva.example", true),
    ];
    for (pat, host, want) in cases {
        assert_eq!(pattern(pat).matches_host(host), *want, "{pat} vs {host}");
    }
}

#[test]
fn drops_default_ports_and_keeps_explicit_ones() {
    assert_eq!(pattern("gitlab.com:443"), pattern("gitlab.com"));
    assert_eq!(pattern("gitlab.com:80"), pattern("gitlab.com"));
    assert_eq!(pattern("GitLab.com.:443").to_string(), "gitlab.com");

    let p = pattern("registry.local:5000");
    assert_eq!(p.port(), Some(5000));
    assert!(p.admits_port(5000, true));
    assert!(p.admits_port(5000, false));
    assert!(!p.admits_port(443, true));

    let d = pattern("gitlab.com");
    assert!(d.admits_port(443, true));
    assert!(d.admits_port(80, false));
    assert!(!d.admits_port(8443, true));
    assert!(!d.admits_port(80, true));
}

#[test]
fn rejects_wildcards_that_are_not_a_whole_leftmost_label() {
    let cases: &[(&str, PatternError)] = &[
        ("*", PatternError::BareWildcard),
        ("**", PatternError::BareWildcard),
        ("*example.com", PatternError::PartialWildcard),
        ("ex*.com", PatternError::PartialWildcard),
        ("api.*.com", PatternError::PartialWildcard),
        ("*.*.com", PatternError::PartialWildcard),
        ("*.10.0.0.7", PatternError::WildcardIp),
    ];
    for (raw, want) in cases {
        assert_eq!(&HostPattern::parse(raw).unwrap_err(), want, "{raw}");
    }
    assert!(HostPattern::parse("gitlab.com@evil.net").is_err());
    assert!(HostPattern::parse("*.").is_err());
}

/// Regression: a label whose fourth byte fell inside a multi-byte character
/// (`ｇｉｔｌａｂ`) panicked the `xn--` prefix check.
#[test]
fn normalizes_labels_with_multibyte_characters_without_panicking() {
    let (host, _) = normalize_host("ｇｉｔｌａｂ.com").expect("UTS #46 maps full-width letters");
    assert_eq!(host, "gitlab.com");
    assert_eq!(
        normalize_host("ÉÉÉ.example").map(|(h, _)| h),
        Ok("xn--9caaa.example".to_owned())
    );
}
