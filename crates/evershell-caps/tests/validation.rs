//! Every validation error names its field path, line and column.

use evershell_caps::{parse, FieldError, MAX_DOCUMENT_BYTES};

fn errors(yaml: &str) -> Vec<FieldError> {
    match parse(yaml) {
        Ok(caps) => panic!("expected errors, parsed {caps:?}\n{yaml}"),
        Err(e) => e.0,
    }
}

/// Asserts the document's first error: path, line, column, message part.
fn first_error(yaml: &str, path: &str, line: usize, col: usize, message: &str) {
    let errs = errors(yaml);
    let e = &errs[0];
    assert_eq!(
        (e.path.as_str(), e.line, e.column),
        (path, line, col),
        "{errs:#?}\n{yaml}"
    );
    assert!(
        e.message.contains(message),
        "{:?} lacks {message:?}",
        e.message
    );
}

const GOOD: &str = "\
- name: gitlab
  type: http
  allow:
    - name: read
      domains: [gitlab.com]
      methods: [GET]
      paths: [/api/v4/projects/**]
";

#[test]
fn reports_lowercase_method_with_upper_case_hint() {
    let yaml = GOOD.replace("[GET]", "[get]");
    let errs = errors(&yaml);
    assert_eq!(errs.len(), 1);
    assert_eq!(
        errs[0].to_string(),
        "line 6, col 17: unknown method \"get\" (methods are upper-case: GET)"
    );
    assert_eq!(errs[0].path, "capabilities[0].allow[0].methods[0]");
}

#[test]
fn reports_each_problem_at_its_position() {
    let table: &[(&str, &str, &str, usize, usize, &str)] = &[
        ("unknown method", "[GET]", "[GET, FETCH]", 6, 22, "unknown method \"FETCH\" (expected one of"),
        ("duplicate method", "[GET]", "[GET, GET]", 6, 22, "duplicate method"),
        ("empty methods", "[GET]", "[]", 6, 16, "must not be empty"),
        ("methods not a list", "[GET]", "GET", 6, 16, "expected a list"),
        ("partial host wildcard", "[gitlab.com]", "[\"*gitlab.com\"]", 5, 17, "whole leftmost label"),
        ("bare host wildcard", "[gitlab.com]", "[\"*\"]", 5, 17, "explicitly"),
        ("userinfo host", "[gitlab.com]", "[gitlab.com@evil.net]", 5, 17, "not allowed in a host"),
        ("relative path", "[/api/v4/projects/**]", "[api/**]", 7, 15, "must start with '/'"),
        ("partial path wildcard", "[/api/v4/projects/**]", "[/api/v4/pro*]", 7, 15, "whole path segment"),
        ("reserved name", "name: gitlab", "name: _gitlab", 1, 9, "reserved for the platform"),
        ("bad identifier", "name: gitlab", "name: 9lab", 1, 9, "invalid name"),
        ("long identifier", "name: read", "name: r12345678901234567890123456789012345678901234567890123456789012345", 4, 13, "invalid name"),
        ("bad type", "type: http", "type: grpc", 2, 9, "unknown type \"grpc\""),
        ("bad bool", "paths: [/api/v4/projects/**]", "allow_insecure: yes", 7, 23, "expected true or false"),
        ("match syntax", "paths: [/api/v4/projects/**]", "match: request.path ==", 7, 14, "invalid CEL expression"),
        ("body max_bytes text", "paths: [/api/v4/projects/**]", "body: {max_bytes: ten}", 7, 25, "expected a non-negative integer"),
        ("unknown rule key", "paths: [/api/v4/projects/**]", "path: [/x]", 7, 7, "unknown key \"path\""),
        ("unknown capability key", "type: http", "type: http\n  kind: x", 3, 3, "unknown key \"kind\""),
        ("unknown budget counter", "type: http", "type: http\n  budgets: {tokens: {limit: 1, per: task}}", 3, 13, "unknown counter \"tokens\""),
        ("rule field beside allow", "type: http", "type: http\n  methods: [GET]", 3, 3, "belongs inside an allow rule"),
        ("missing domains", "      domains: [gitlab.com]\n", "", 4, 7, "missing \"domains\""),
        ("duplicate key", "      methods: [GET]\n", "      methods: [GET]\n      methods: [POST]\n", 7, 7, "duplicate key \"methods\""),
        ("empty allow", "  allow:\n    - name: read\n      domains: [gitlab.com]\n      methods: [GET]\n      paths: [/api/v4/projects/**]\n", "  allow: []\n", 3, 10, "must not be empty"),
    ];
    for (what, from, to, line, col, message) in table {
        let yaml = GOOD.replace(from, to);
        assert_ne!(yaml, GOOD, "{what}: replacement did not apply");
        let errs = errors(&yaml);
        let e = &errs[0];
        assert_eq!((e.line, e.column), (*line, *col), "{what}: {errs:#?}");
        assert!(e.message.contains(message), "{what}: {:?}", e.message);
    }
}

#[test]
fn names_the_field_path_of_nested_errors() {
    let yaml = "\
- name: a
  domains: [a.com]
  methods: [GET]
- name: b
  type: http
  allow:
    - domains: [b.com]
      methods: [GET]
    - domains: [b.com]
      methods: [POST, get]
";
    first_error(
        yaml,
        "capabilities[1].allow[1].methods[1]",
        10,
        23,
        "upper-case: GET",
    );
}

#[test]
fn collects_every_error_not_just_the_first() {
    let yaml = "\
- name: _a
  domains: [\"*\"]
  methods: [get]
  paths: [x]
- name: b
  type: ftp
  allow: []
";
    let errs = errors(yaml);
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "capabilities[0].name",
            "capabilities[0].domains[0]",
            "capabilities[0].methods[0]",
            "capabilities[0].paths[0]",
            "capabilities[1].type",
            "capabilities[1].allow",
        ]
    );
}

#[test]
fn caps_the_error_list_at_100() {
    let mut yaml = String::new();
    for i in 0..150 {
        yaml.push_str(&format!(
            "- name: c{i}\n  domains: [a.com]\n  methods: [get]\n"
        ));
    }
    assert_eq!(errors(&yaml).len(), 100);
}

#[test]
fn rejects_duplicate_capability_and_rule_names() {
    let yaml = "\
- name: a
  domains: [a.com]
  methods: [GET]
- name: a
  domains: [b.com]
  methods: [GET]
";
    first_error(
        yaml,
        "capabilities[1].name",
        4,
        9,
        "duplicate capability name \"a\" (first at line 1)",
    );

    let yaml = "\
- name: a
  type: http
  allow:
    - name: r
      domains: [a.com]
      methods: [GET]
    - name: r
      domains: [a.com]
      methods: [POST]
";
    first_error(
        yaml,
        "capabilities[0].allow[1].name",
        7,
        13,
        "duplicate rule name \"r\"",
    );
}

#[test]
fn requires_applies_to_to_name_rules_of_the_same_capability() {
    let yaml = "\
- name: a
  type: http
  allow:
    - name: read
      domains: [a.com]
      methods: [GET]
  transforms:
    - name: tok
      applies_to: [read, write]
      auth: cred
";
    first_error(
        yaml,
        "capabilities[0].transforms[0].applies_to[1]",
        9,
        26,
        "\"write\" is not an allow rule of capability \"a\"",
    );
}

#[test]
fn rejects_mixed_action_groups_and_unknown_transform_keys() {
    let base = "\
- name: a
  domains: [a.com]
  methods: [GET]
  transforms:
    - name: t
";
    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "      auth: cred\n      set_headers: {X-A: '\"b\"'}\n",
            7,
            7,
            "cannot be combined with \"auth\"",
        ),
        (
            "      remove_headers: [host]\n",
            6,
            24,
            "belongs to the proxy",
        ),
        (
            "      rewrite_path: {from: \"(\", to: b}\n",
            6,
            28,
            "invalid pattern",
        ),
        (
            "      auth: cred\n      colour: red\n",
            7,
            7,
            "unknown key \"colour\"",
        ),
    ];
    for (tail, line, col, message) in cases {
        let yaml = format!("{base}{tail}");
        first_error(&yaml, &errors(&yaml)[0].path, *line, *col, message);
    }
    first_error(
        base,
        "capabilities[0].transforms[0]",
        5,
        7,
        "missing an action",
    );
}

#[test]
fn requires_name_type_and_allow_in_canonical_form() {
    first_error(
        "- type: http\n  allow: []\n",
        "capabilities[0]",
        1,
        3,
        "missing \"name\"",
    );
    first_error(
        "- name: a\n  allow: []\n",
        "capabilities[0]",
        1,
        3,
        "missing \"type\"",
    );
    let errs = errors("- name: a\n  allow: []\n");
    assert!(
        errs.iter().any(|e| e.message.contains("must not be empty")),
        "{errs:#?}"
    );
    first_error(
        "- name: a\n  type: http\n",
        "capabilities[0]",
        1,
        3,
        "missing \"allow\"",
    );
}

#[test]
fn rejects_documents_that_are_not_a_list() {
    first_error("name: a\n", "capabilities", 1, 1, "expected a list");
    first_error(
        "- just-a-string\n",
        "capabilities[0]",
        1,
        3,
        "expected a capability",
    );
}

#[test]
fn rejects_anchors_aliases_and_tags() {
    let anchor = "- name: a\n  domains: &d [a.com]\n  methods: [GET]\n";
    first_error(
        anchor,
        "capabilities",
        2,
        15,
        "anchors (&name) are not allowed",
    );

    let alias = "- name: a\n  domains: [a.com]\n  methods: [GET]\n- name: b\n  domains: *d\n  methods: [GET]\n";
    assert!(
        errors(alias)[0].message.contains("anchor"),
        "{:#?}",
        errors(alias)
    );

    let tag = "- name: !!str a\n  domains: [a.com]\n  methods: [GET]\n";
    first_error(tag, "capabilities", 1, 15, "tags (!tag) are not allowed");
}

#[test]
fn defeats_alias_bombs_without_expanding_them() {
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b]\n";
    let errs = errors(bomb);
    assert_eq!(errs.len(), 1);
    assert!(errs[0].message.contains("anchors"));
}

#[test]
fn rejects_documents_over_1_mib_and_deep_nesting() {
    let big = format!("# {}\n", "x".repeat(MAX_DOCUMENT_BYTES));
    first_error(&big, "capabilities", 1, 1, "over the 1 MiB limit");

    let mut deep = String::new();
    for depth in 0..100 {
        deep.push_str(&format!("{:width$}- \n", "", width = depth * 2));
    }
    first_error(
        &deep,
        "capabilities",
        65,
        129,
        "nesting is deeper than 64 levels",
    );

    // The parser's own limit stops flow nesting before it reaches ours.
    let flow = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(errors(&flow)[0].message.contains("recursion limit"));
}

#[test]
fn reports_yaml_syntax_errors_with_position() {
    let errs = errors("- name: a\n  domains: [a.com\n  methods: [GET]\n");
    assert_eq!(errs[0].path, "capabilities");
    assert!(errs[0].message.starts_with("invalid YAML"), "{errs:#?}");
    assert!(errs[0].line >= 2);
}

#[test]
fn rejects_several_documents() {
    let two = "- name: a\n  domains: [a.com]\n  methods: [GET]\n---\n- name: b\n  domains: [b.com]\n  methods: [GET]\n";
    assert!(errors(two)[0].message.contains("only one YAML document"));
}

#[test]
fn accepts_empty_documents_as_no_capabilities() {
    assert_eq!(parse("").expect("empty is valid"), vec![]);
    assert_eq!(parse("# nothing\n").expect("comment only is valid"), vec![]);
    assert_eq!(parse("[]").expect("empty list is valid"), vec![]);
}

#[test]
fn maps_errors_to_api_fields() {
    let yaml = GOOD.replace("[GET]", "[get]");
    let fields = parse(&yaml).unwrap_err().fields();
    assert_eq!(
        fields
            .get("capabilities[0].allow[0].methods[0]")
            .map(String::as_str),
        Some("line 6, col 17: unknown method \"get\" (methods are upper-case: GET)")
    );
}
