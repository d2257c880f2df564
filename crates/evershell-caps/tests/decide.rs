//! Policy::decide: the proxy's per-request decision.

use evershell_caps::{parse, AuthStep, Decision, Policy, RequestFacts, Scheme};

const CAPS: &str = "\
- name: gitlab
  type: http
  allow:
    - name: read
      domains: [gitlab.com]
      methods: [GET]
      paths: [/api/v4/projects/**]
    - name: create-branch
      domains: [gitlab.com]
      methods: [POST]
      paths: [/api/v4/projects/*/repository/branches]
  transforms:
    - name: gitlab-token
      auth: gitlab-pat
    - name: branch-extra
      applies_to: [create-branch]
      auth: branch-cred
- name: pypi
  domains: [pypi.org, \"*.pythonhosted.org\"]
  methods: [GET]
- name: mirror
  domains: [\"**.mirror.internal\", \"registry.local:5000\", 10.0.0.7, \"[fd00::1]\"]
  methods: [GET, PUT]
  allow_insecure: true
";

fn policy() -> Policy {
    Policy::compile(Vec::new(), parse(CAPS).expect("test caps are valid"))
}

fn decide(method: &str, scheme: Scheme, host: &str, port: u16, target: &str) -> Decision {
    policy().decide(&RequestFacts::new(method, scheme, host, port, target))
}

fn https(method: &str, host: &str, target: &str) -> Decision {
    decide(method, Scheme::Https, host, 443, target)
}

#[test]
fn allows_and_denies_by_host_on_label_boundaries() {
    let cases: &[(&str, &str)] = &[
        ("gitlab.com", "allowed"),
        ("GITLAB.COM.", "allowed"),
        ("GitLab.com:443", "allowed"),
        ("evilgitlab.com", "host_not_allowed"),
        ("gitlab.com.evil.net", "host_not_allowed"),
        ("api.gitlab.com", "host_not_allowed"),
        ("gitlab.com@evil.net", "invalid_host"),
        ("evil.net#gitlab.com", "invalid_host"),
        ("gitlab.com:8443", "invalid_host"),
        ("", "invalid_host"),
    ];
    for (host, reason) in cases {
        let d = https("GET", host, "/api/v4/projects/1");
        assert_eq!(d.reason, *reason, "{host}: {d:#?}");
        assert_eq!(d.allowed, *reason == "allowed", "{host}");
    }
    assert_eq!(
        https("GET", "GITLAB.COM.", "/api/v4/projects").host,
        "gitlab.com"
    );
}

#[test]
fn matches_wildcard_domains_and_idna_hosts() {
    assert!(https("GET", "files.pythonhosted.org", "/x").allowed);
    assert!(!https("GET", "a.files.pythonhosted.org", "/x").allowed);
    assert!(!https("GET", "pythonhosted.org", "/x").allowed);
    assert!(https("GET", "a.b.mirror.internal", "/x").allowed);
    assert!(!https("GET", "mirror.internal", "/x").allowed);

    let p = Policy::compile(
        Vec::new(),
        parse("- name: b\n  domains: [bücher.example]\n  methods: [GET]\n").expect("valid"),
    );
    for host in ["bücher.example", "BÜCHER.example.", "xn--bcher-kva.example"] {
        let d = p.decide(&RequestFacts::new("GET", Scheme::Https, host, 443, "/"));
        assert!(d.allowed, "{host}: {d:#?}");
        assert_eq!(d.host, "xn--bcher-kva.example");
    }
}

#[test]
fn denies_methods_not_listed_and_never_uppercases_them() {
    assert!(https("GET", "gitlab.com", "/api/v4/projects/1").allowed);
    let d = https("get", "gitlab.com", "/api/v4/projects/1");
    assert_eq!(d.reason, "method_not_allowed");
    assert_eq!(
        https("DELETE", "gitlab.com", "/api/v4/projects/1").reason,
        "method_not_allowed"
    );
    assert_eq!(
        https("TRACE", "gitlab.com", "/api/v4/projects/1").reason,
        "method_not_allowed"
    );
}

#[test]
fn decides_on_the_canonical_path_and_forwards_exactly_it() {
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("/api/v4/projects/1", "allowed", Some("/api/v4/projects/1")),
        (
            "/api/v4/projects/../../admin",
            "path_not_allowed",
            Some("/api/admin"),
        ),
        (
            "/api/v4/projects/1/../../../../../admin",
            "invalid_path",
            None,
        ),
        (
            "/api/v4/projects/1/../../../../admin",
            "path_not_allowed",
            Some("/admin"),
        ),
        ("/%2e%2e/api/v4/projects", "invalid_path", None),
        ("//api/v4/projects", "allowed", Some("/api/v4/projects")),
        (
            "/api/v4/%70rojects/1",
            "allowed",
            Some("/api/v4/projects/1"),
        ),
        (
            "/api/v4/projects/1?per_page=5&x=%2f",
            "allowed",
            Some("/api/v4/projects/1?per_page=5&x=%2f"),
        ),
        ("/api/v4/projects/a\\..\\b", "invalid_path", None),
        ("http://evil.net/api/v4/projects", "invalid_path", None),
        ("/api/v4/projects?a b", "invalid_path", None),
        ("/api/v4/admin", "path_not_allowed", Some("/api/v4/admin")),
    ];
    for (target, reason, forward) in cases {
        let d = https("GET", "gitlab.com", target);
        assert_eq!(d.reason, *reason, "{target}: {d:#?}");
        assert_eq!(d.forward_target.as_deref(), *forward, "{target}");
    }
    let d = https("GET", "gitlab.com", "/api/v4/projects/1?q=1");
    assert_eq!(d.canonical_path.as_deref(), Some("/api/v4/projects/1"));
}

#[test]
fn keeps_encoded_slashes_inside_one_segment() {
    let d = https(
        "POST",
        "gitlab.com",
        "/api/v4/projects/group%2fproject/repository/branches",
    );
    assert!(d.allowed, "{d:#?}");
    assert_eq!(
        d.forward_target.as_deref(),
        Some("/api/v4/projects/group%2Fproject/repository/branches")
    );
    let d = https(
        "POST",
        "gitlab.com",
        "/api/v4/projects/group/project/repository/branches",
    );
    assert_eq!(d.reason, "path_not_allowed");
}

#[test]
fn admits_plain_http_only_with_allow_insecure() {
    let d = decide("GET", Scheme::Http, "gitlab.com", 80, "/api/v4/projects/1");
    assert_eq!(d.reason, "insecure_not_allowed");
    let d = decide("GET", Scheme::Http, "a.mirror.internal", 80, "/x");
    assert!(d.allowed, "{d:#?}");
    assert_eq!(d.capability.as_deref(), Some("mirror"));
    assert_eq!(d.rule.as_deref(), Some("mirror"));
}

#[test]
fn matches_explicit_ports_only_and_default_ports_per_scheme() {
    assert!(decide("PUT", Scheme::Http, "registry.local:5000", 5000, "/v2/x").allowed);
    assert!(decide("PUT", Scheme::Https, "registry.local", 5000, "/v2/x").allowed);
    assert_eq!(
        decide("GET", Scheme::Https, "registry.local", 443, "/").reason,
        "host_not_allowed"
    );
    assert_eq!(
        decide("GET", Scheme::Https, "gitlab.com", 8443, "/api/v4/projects").reason,
        "host_not_allowed"
    );
    assert_eq!(
        decide("GET", Scheme::Https, "gitlab.com", 80, "/api/v4/projects").reason,
        "host_not_allowed"
    );
}

#[test]
fn matches_ip_literals_exactly() {
    assert!(decide("GET", Scheme::Http, "10.0.0.7", 80, "/").allowed);
    assert!(!decide("GET", Scheme::Http, "10.0.0.70", 80, "/").allowed);
    assert!(decide("GET", Scheme::Https, "[FD00:0::1]", 443, "/").allowed);
    assert_eq!(
        decide("GET", Scheme::Http, "127.1", 80, "/").reason,
        "invalid_host"
    );
}

#[test]
fn stamps_auth_transforms_in_order_for_the_admitting_rule() {
    let d = https("GET", "gitlab.com", "/api/v4/projects/1");
    assert_eq!(d.rule.as_deref(), Some("read"));
    assert_eq!(
        d.auth,
        [AuthStep {
            transform: "gitlab-token".into(),
            credential: "gitlab-pat".into()
        }]
    );

    let d = https(
        "POST",
        "gitlab.com",
        "/api/v4/projects/42/repository/branches?branch=main",
    );
    assert_eq!(d.rule.as_deref(), Some("create-branch"));
    let creds: Vec<&str> = d.auth.iter().map(|a| a.credential.as_str()).collect();
    assert_eq!(creds, ["gitlab-pat", "branch-cred"]);

    assert!(https("GET", "pypi.org", "/simple/").auth.is_empty());
    assert!(https("GET", "evil.net", "/").auth.is_empty());
}

#[test]
fn explains_why_each_candidate_rule_refused() {
    let d = https("POST", "gitlab.com", "/api/v4/projects/42");
    assert!(!d.allowed);
    assert_eq!(d.reason, "path_not_allowed");
    let refusals: Vec<(&str, &str)> = d
        .refusals
        .iter()
        .map(|r| (r.capability.as_str(), r.rule.as_str()))
        .collect();
    assert_eq!(refusals, [("gitlab", "read"), ("gitlab", "create-branch")]);
    assert!(
        d.refusals[0]
            .why
            .contains("method \"POST\" is not one of [GET]"),
        "{d:#?}"
    );
    assert!(d.refusals[1].why.contains("matches none of"), "{d:#?}");

    assert!(https("GET", "evil.net", "/").refusals.is_empty());
}

#[test]
fn picks_the_first_admitting_rule_in_document_order() {
    let yaml = "\
- name: first
  domains: [a.example]
  methods: [GET]
  paths: [/x/**]
- name: second
  domains: [\"*.example\", a.example]
  methods: [GET]
";
    let p = Policy::compile(Vec::new(), parse(yaml).expect("valid"));
    let at = |target| {
        p.decide(&RequestFacts::new(
            "GET",
            Scheme::Https,
            "a.example",
            443,
            target,
        ))
    };
    assert_eq!(at("/x/1").capability.as_deref(), Some("first"));
    let d = at("/y");
    assert_eq!(d.capability.as_deref(), Some("second"));
    assert_eq!(d.refusals.len(), 1);
}

#[test]
fn denies_everything_under_an_empty_policy() {
    let p = Policy::compile(Vec::new(), Vec::new());
    let d = p.decide(&RequestFacts::new("GET", Scheme::Https, "a.com", 443, "/"));
    assert_eq!((d.allowed, d.reason.as_str()), (false, "no_matching_rule"));
    assert!(!p.admits_name("a.com"));
}

#[test]
fn answers_dns_and_connection_level_questions() {
    let p = policy();
    assert!(p.admits_name("gitlab.com"));
    assert!(p.admits_name("GITLAB.COM."));
    assert!(p.admits_name("registry.local"));
    assert!(p.admits_name("x.y.mirror.internal"));
    assert!(!p.admits_name("evilgitlab.com"));
    assert!(!p.admits_name("gitlab.com.evil.net"));
    assert!(!p.admits_name("gitlab.com@evil.net"));

    assert!(p.admits_host("gitlab.com", 443, true));
    assert!(!p.admits_host("gitlab.com", 80, false));
    assert!(!p.admits_host("gitlab.com", 8443, true));
    assert!(p.admits_host("a.mirror.internal", 80, false));
    assert!(p.admits_host("registry.local", 5000, false));
    assert!(p.admits_host("registry.local:5000", 5000, true));
    assert!(!p.admits_host("registry.local:5000", 443, true));
    assert!(!p.admits_host("registry.local", 443, true));
}

#[test]
fn shares_a_policy_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Policy>();
}
