//! The one-rule shorthand normalises to the canonical form, and the
//! canonical text round-trips.

use evershell_caps::{parse, to_yaml, AllowRule, Capability, HostPattern, Method, TransformAction};

#[test]
fn normalizes_shorthand_to_one_rule_named_like_the_capability() {
    let short = "\
- name: gitlab-read
  domains: [gitlab.com]
  methods: [GET, HEAD]
  paths: [/api/v4/projects/**]
  transforms:
    - name: token
      auth: gitlab-pat
";
    let long = "\
- name: gitlab-read
  type: http
  allow:
    - name: gitlab-read
      domains: [gitlab.com]
      methods: [GET, HEAD]
      paths: [/api/v4/projects/**]
  transforms:
    - name: token
      auth: gitlab-pat
";
    let caps = parse(short).expect("shorthand is valid");
    assert_eq!(caps, parse(long).expect("canonical is valid"));
    assert_eq!(to_yaml(&caps), long);

    let rule = &caps[0].allow[0];
    assert_eq!(rule.name.as_deref(), Some("gitlab-read"));
    assert_eq!(rule.methods, [Method::Get, Method::Head]);
    assert!(!rule.allow_insecure);
}

#[test]
fn accepts_type_http_in_shorthand_and_targets_the_rule_by_the_capability_name() {
    let yaml = "\
- name: pypi
  type: http
  domains: [pypi.org, files.pythonhosted.org]
  methods: [GET]
  transforms:
    - name: mirror-auth
      applies_to: [pypi]
      auth: mirror
";
    let caps = parse(yaml).expect("valid");
    assert_eq!(caps[0].allow.len(), 1);
    assert_eq!(
        caps[0].transforms[0].applies_to,
        Some(vec!["pypi".to_owned()])
    );
}

#[test]
fn round_trips_every_field_through_the_canonical_text() {
    let yaml = "\
- name: mixed
  type: http
  allow:
    - name: api
      domains: [\"*.Example.COM.\", \"**.svc.internal:8443\", 10.0.0.7, \"[FD00::1]:5000\", bücher.example]
      methods: [GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS]
      paths: [/, /api/v4/%70rojects/*, /x/**, \"/a/b%2fc/\"]
      allow_insecure: true
    - name: tls
      domains: [plain.example]
      methods: [GET]
  transforms:
    - name: t1
      applies_to: [tls]
      auth: cred-1
    - name: t2
      applies_to: [tls]
      auth: cred_2
- name: \"null\"
  domains: [\"true.example\"]
  methods: [GET]
";
    let caps = parse(yaml).expect("valid");
    let text = to_yaml(&caps);
    assert_eq!(parse(&text).expect("canonical text parses"), caps, "{text}");
    assert_eq!(
        to_yaml(&parse(&text).expect("valid")),
        text,
        "formatting is idempotent"
    );

    assert!(text.contains("\"*.example.com\""), "{text}");
    assert!(text.contains("xn--bcher-kva.example"), "{text}");
    assert!(text.contains("/api/v4/projects/*"), "{text}");
    assert!(text.contains("/a/b%2Fc/"), "{text}");
    assert!(text.contains("name: \"null\""), "{text}");
    assert_eq!(caps[1].name, "null");
}

#[test]
fn prints_an_empty_list_as_brackets() {
    assert_eq!(to_yaml(&[]), "[]\n");
    assert_eq!(parse(&to_yaml(&[])).expect("valid"), vec![]);
}

#[test]
fn builds_values_with_defaults_for_fields_added_later() {
    let cap = Capability {
        name: "hand".to_owned(),
        allow: vec![AllowRule {
            domains: vec![HostPattern::parse("a.com").expect("valid")],
            methods: vec![Method::Get],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(
        parse(&to_yaml(std::slice::from_ref(&cap))).expect("valid"),
        vec![cap]
    );
}

#[test]
fn keeps_the_auth_credential_name() {
    let caps = parse("- name: a\n  domains: [a.com]\n  methods: [GET]\n  transforms:\n    - name: t\n      auth: my-cred\n")
        .expect("valid");
    match &caps[0].transforms[0].action {
        TransformAction::Auth { credential } => assert_eq!(credential, "my-cred"),
        other => panic!("unexpected action {other:?}"),
    }
}

#[test]
fn round_trips_match_body_budgets_and_every_transform_kind() {
    let yaml = r#"
- name: full
  budgets:
    output_tokens: {limit: 200000, per: workspace, ceiling: clamp}
    requests: {per: task, limit: 500}
  allow:
    - name: commit
      domains: [gitlab.com]
      methods: [POST]
      paths: [/api/v4/projects/*/repository/commits]
      match: 'request.headers["content-type"] == "application/json" && workspace.role != ""'
      body:
        max_bytes: 4096
        json_schema:
          type: object
          required: [branch]
          properties:
            branch: {type: string, pattern: "^evershell/", "x-note": 'a "quoted" value'}
            n: {minimum: -1.5, maximum: 10}
            flag: {const: true}
            none: {const: null}
    - domains: [x.example]
      methods: [GET]
      body: {max_bytes: 0}
  type: http
  transforms:
    - name: token
      applies_to: [commit]
      auth: gitlab-pat
    - name: rewrite
      set_headers: {X-Tenant-Id: 'secrets["tenant-id"]', "x-b": '"b"'}
      remove_headers: [cookie]
      set_query: {api-version: '"2024-10-01"'}
      remove_query: [debug]
      rewrite_path: {from: "^/v1/(.*)$", to: "/api/v1/$1"}
      set_body: {"/metadata/tenant": 'secrets["tenant-id"]', "": 'request.body'}
"#;
    let caps = parse(yaml).unwrap_or_else(|e| panic!("{e}"));
    let text = to_yaml(&caps);
    let again = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(again, caps, "{text}");
    assert_eq!(to_yaml(&again), text, "canonical text is a fixed point");

    assert!(
        text.contains(
            "      match: 'request.headers[\"content-type\"] == \"application/json\" && workspace.role != \"\"'\n"
        ),
        "{text}"
    );
    assert!(text.contains("      body: {max_bytes: 0}\n"), "{text}");
    assert!(text.contains("    output_tokens: {limit: 200000, per: workspace, ceiling: clamp}\n"));
    assert!(text.contains("    requests: {limit: 500, per: task}\n"));
    assert!(
        text.contains("      rewrite_path: {from: \"^/v1/(.*)$\", to: \"/api/v1/$1\"}\n"),
        "{text}"
    );
    assert!(
        text.contains("        x-tenant-id: 'secrets[\"tenant-id\"]'\n"),
        "{text}"
    );
}
