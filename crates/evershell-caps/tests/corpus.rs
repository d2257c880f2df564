//! The corpus: one policy, hundreds of requests and the decision each gets,
//! every transform kind with what it does to a request, and every
//! validation error with its field path and position.

use std::collections::{BTreeMap, HashMap};

use evershell_caps::{
    apply_transforms, parse, Decision, Policy, RequestFacts, RequestParts, Scheme,
    TransformContext, TransformOutcome, WorkspaceFacts,
};
use serde_json::{json, Value};
use zeroize::Zeroizing;

const CAPS: &str = r#"
- name: gitlab
  type: http
  allow:
    - name: read
      domains: [gitlab.com]
      methods: [GET, HEAD]
      paths: [/api/v4/projects/*, /api/v4/projects/*/repository/**]
    - name: create-branch
      domains: [gitlab.com]
      methods: [POST]
      paths: [/api/v4/projects/*/repository/branches]
      match: 'request.query.branch.startsWith("evershell/")'
- name: pypi
  domains: [pypi.org, "*.pythonhosted.org"]
  methods: [GET]
- name: mirror
  domains: ["**.mirror.internal", "registry.local:5000", 10.0.0.7, "[fd00::1]"]
  methods: [GET, PUT]
  allow_insecure: true
- name: idn
  domains: [bücher.example]
  methods: [GET]
- name: api
  type: http
  allow:
    - name: headers
      domains: [api.example.com]
      methods: [GET]
      paths: [/v1/secure/**]
      match: 'request.headers["x-api-version"] == "2" && request.headers.accept.contains("json")'
    - name: search
      domains: [api.example.com]
      methods: [GET]
      paths: [/v1/search]
      match: 'size(request.query_all.q) == 1 && request.query.q.matches("^[a-z]+$")'
    - name: workspace
      domains: [api.example.com]
      methods: [GET]
      paths: [/v1/workspace]
      match: 'workspace.role == "builder" && workspace.environment == "prod" && has(task.id)'
    - name: create-item
      domains: [api.example.com]
      methods: [POST]
      paths: [/v1/items]
      body:
        max_bytes: 64
        json_schema:
          type: object
          required: [name]
          additionalProperties: false
          properties:
            name: {type: string, maxLength: 10}
    - name: update-item
      domains: [api.example.com]
      methods: [PUT]
      paths: [/v1/items/*]
      match: 'request.body.owner == workspace.id'
    - name: delete-item
      domains: [api.example.com]
      methods: [DELETE]
      paths: [/v1/items/*]
      body: {max_bytes: 0}
    - name: facts
      domains: [api.example.com]
      methods: [GET]
      paths: [/v1/facts]
      match: 'request.port == 443 && request.scheme == "https" && request.host == "api.example.com" && request.method == "GET" && request.path == "/v1/facts" && workspace.id == "ws_1" && task.id == "t_1"'
    - name: broken
      domains: [api.example.com]
      methods: [GET]
      paths: [/v1/broken]
      match: 'request.query.missing == "x"'
    - name: not-bool
      domains: [api.example.com]
      methods: [GET]
      paths: [/v1/not-bool]
      match: 'request.path'
"#;

/// One request and the decision it must get.
struct Case {
    req: &'static str,
    want: &'static str,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    role: &'static str,
    environment: &'static str,
    task: Option<&'static str>,
}

/// `req` is `METHOD URL`, or `METHOD URL @PORT` when the connection port
/// differs from the URL's; `METHOD scheme://authority|TARGET` gives a raw
/// target. `want` is the reason (`cel_error` matches any CEL error).
fn c(req: &'static str, want: &'static str) -> Case {
    Case {
        req,
        want,
        headers: Vec::new(),
        body: None,
        role: "builder",
        environment: "prod",
        task: Some("t_1"),
    }
}

impl Case {
    fn h(mut self, name: &str, value: &str) -> Case {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Case {
        self.body = Some(body.into());
        self
    }

    fn ws(
        mut self,
        role: &'static str,
        environment: &'static str,
        task: Option<&'static str>,
    ) -> Case {
        self.role = role;
        self.environment = environment;
        self.task = task;
        self
    }
}

/// Splits a request line into method, scheme, raw host, port, target.
fn split(req: &str) -> (&str, Scheme, &str, u16, String) {
    let (method, rest) = req.split_once(' ').expect("METHOD URL");
    let (url, port_override) = match rest.rsplit_once(" @") {
        Some((url, port)) => (url, Some(port.parse::<u16>().expect("port"))),
        None => (rest, None),
    };
    let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
        (Scheme::Https, r)
    } else {
        (
            Scheme::Http,
            url.strip_prefix("http://").expect("http or https"),
        )
    };
    let (authority, target) = match rest.split_once('|') {
        Some((a, t)) => (a, t.to_owned()),
        None => match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_owned()),
            None => (rest, "/".to_owned()),
        },
    };
    let default = if scheme == Scheme::Https { 443 } else { 80 };
    let url_port = authority
        .rsplit_once(':')
        .filter(|(h, _)| !h.ends_with('[') && !authority.ends_with(']'))
        .and_then(|(_, p)| p.parse::<u16>().ok());
    let port = port_override.or(url_port).unwrap_or(default);
    (method, scheme, authority, port, target)
}

/// Decides as the proxy does: from the head, then with the body when the
/// head decision asks for it (an absent body is an empty one).
fn decide(p: &Policy, case: &Case) -> Decision {
    let (method, scheme, host, port, target) = split(case.req);
    let ws = WorkspaceFacts {
        id: "ws_1",
        role: case.role,
        environment: case.environment,
    };
    let facts = RequestFacts::new(method, scheme, host, port, &target)
        .with_headers(&case.headers)
        .with_workspace(ws)
        .with_task_id(case.task);
    let head = p.decide(&facts);
    assert_eq!(head, p.explain(&facts, None).decision, "{}", case.req);
    match head.needs_body {
        None => head,
        Some(limit) => {
            let body = case.body.as_deref().unwrap_or(b"");
            let body = &body[..body.len().min(limit + 1)];
            let full = p.decide_with_body(&facts, body);
            assert_eq!(full, p.explain(&facts, Some(body)).decision, "{}", case.req);
            full
        }
    }
}

fn cases() -> Vec<Case> {
    let long_path = format!("GET https://pypi.org|/{}", "a".repeat(9000));
    let long_path: &'static str = Box::leak(long_path.into_boxed_str());
    vec![
        // Hosts: exact names on label boundaries, normalisation.
        c("GET https://gitlab.com/api/v4/projects/1", "allowed"),
        c("GET https://GITLAB.COM./api/v4/projects/1", "allowed"),
        c("GET https://GitLab.Com/api/v4/projects/1", "allowed"),
        c("GET https://gitlab.com:443/api/v4/projects/1", "allowed"),
        c("GET https://gitlab.com./api/v4/projects/1", "allowed"),
        c("GET https://ｇｉｔｌａｂ.com/api/v4/projects/1", "allowed"),
        c("GET https://gitlab。com/api/v4/projects/1", "allowed"),
        c("GET https://evilgitlab.com/api/v4/projects/1", "host_not_allowed"),
        c("GET https://gitlab.com.evil.net/api/v4/projects/1", "host_not_allowed"),
        c("GET https://api.gitlab.com/api/v4/projects/1", "host_not_allowed"),
        c("GET https://gitlab.co/api/v4/projects/1", "host_not_allowed"),
        c("GET https://gitlab.comm/api/v4/projects/1", "host_not_allowed"),
        c("GET https://xgitlab.com/api/v4/projects/1", "host_not_allowed"),
        c("GET https://gitlab-com/api/v4/projects/1", "host_not_allowed"),
        c("GET https://gitlab.com.com/api/v4/projects/1", "host_not_allowed"),
        c("GET https://gitlаb.com/api/v4/projects/1", "host_not_allowed"),
        c("GET https://gitlab.com:8443/api/v4/projects/1", "host_not_allowed"),
        c("GET https://gitlab.com:8443/api/v4/projects/1 @443", "invalid_host"),
        c("GET https://gitlab.com/api/v4/projects/1 @8443", "host_not_allowed"),
        c("GET https://gitlab.com@evil.net/api/v4/projects/1", "invalid_host"),
        c("GET https://evil.net#gitlab.com/api/v4/projects/1", "invalid_host"),
        c("GET https://gitlab.com:0/api/v4/projects/1", "invalid_host"),
        c("GET https://gitlab.com:99999/api/v4/projects/1", "invalid_host"),
        c("GET https://gitlab.com:+443/api/v4/projects/1", "invalid_host"),
        c("GET https://gitlab..com/api/v4/projects/1", "invalid_host"),
        c("GET https://.gitlab.com/api/v4/projects/1", "invalid_host"),
        c("GET https://gitlab.com../api/v4/projects/1", "invalid_host"),
        c("GET https://gitlab%2Ecom/api/v4/projects/1", "invalid_host"),
        c("GET https://gitlab.com\\/api/v4/projects/1", "invalid_host"),
        c("GET https://gitlab com/api/v4/projects/1", "invalid_host"),
        c("GET https:///api/v4/projects/1", "invalid_host"),
        c("GET https://*.gitlab.com/api/v4/projects/1", "invalid_host"),
        c("GET https://127.0.0.1/api/v4/projects/1", "host_not_allowed"),
        c("GET https://127.1/api/v4/projects/1", "invalid_host"),
        c("GET https://0x7f.1/api/v4/projects/1", "invalid_host"),
        c("GET https://2130706433/api/v4/projects/1", "invalid_host"),
        c("GET https://gitlab.123/api/v4/projects/1", "invalid_host"),
        // Internationalised names: one name, Unicode or punycode.
        c("GET https://bücher.example/", "allowed"),
        c("GET https://BÜCHER.example/", "allowed"),
        c("GET https://xn--bcher-kva.example/", "allowed"),
        c("GET https://XN--BCHER-KVA.EXAMPLE./", "allowed"),
        c("GET https://bucher.example/", "host_not_allowed"),
        c("GET https://xn--bcher-kva.example.evil/", "host_not_allowed"),
        c("GET https://www.xn--bcher-kva.example/", "host_not_allowed"),
        c("GET https://xn--.example/", "invalid_host"),
        c("GET https://xn--bcher-kva!.example/", "invalid_host"),
        // Wildcards: one label, many labels, never the apex.
        c("GET https://pypi.org/simple/requests/", "allowed"),
        c("GET https://www.pypi.org/simple/", "host_not_allowed"),
        c("GET https://files.pythonhosted.org/packages/x.whl", "allowed"),
        c("GET https://FILES.PYTHONHOSTED.ORG./packages/x.whl", "allowed"),
        c("GET https://a.files.pythonhosted.org/x", "host_not_allowed"),
        c("GET https://pythonhosted.org/x", "host_not_allowed"),
        c("GET https://evilpythonhosted.org/x", "host_not_allowed"),
        c("GET https://files.pythonhosted.org.evil.net/x", "host_not_allowed"),
        c("GET https://a.mirror.internal/x", "allowed"),
        c("GET https://a.b.c.mirror.internal/x", "allowed"),
        c("GET https://mirror.internal/x", "host_not_allowed"),
        c("GET https://amirror.internal/x", "host_not_allowed"),
        c("GET https://a.mirror.internal.evil/x", "host_not_allowed"),
        // Ports and IP literals.
        c("GET https://registry.local:5000/v2/", "allowed"),
        c("PUT https://registry.local:5000/v2/blob", "allowed"),
        c("GET https://registry.local/v2/", "host_not_allowed"),
        c("GET https://registry.local:5001/v2/", "host_not_allowed"),
        c("GET http://registry.local:5000/v2/", "allowed"),
        c("GET https://10.0.0.7/x", "allowed"),
        c("GET https://10.0.0.8/x", "host_not_allowed"),
        c("GET https://010.0.0.7/x", "invalid_host"),
        c("GET https://[fd00::1]/x", "allowed"),
        c("GET https://[FD00:0::1]/x", "allowed"),
        c("GET https://[fd00::1]:443/x", "allowed"),
        c("GET https://[fd00::2]/x", "host_not_allowed"),
        c("GET https://[fd00::1/x", "invalid_host"),
        c("GET https://[zz::1]/x", "invalid_host"),
        // Plain HTTP only with allow_insecure.
        c("GET http://a.mirror.internal/x", "allowed"),
        c("GET http://10.0.0.7/x", "allowed"),
        c("GET http://gitlab.com/api/v4/projects/1", "insecure_not_allowed"),
        c("GET http://pypi.org/simple/", "insecure_not_allowed"),
        c("GET http://gitlab.com:443/api/v4/projects/1", "host_not_allowed"),
        c("GET http://a.mirror.internal:443/x", "host_not_allowed"),
        c("GET https://a.mirror.internal:80/x", "host_not_allowed"),
        // Methods are case-sensitive and from a closed set.
        c("HEAD https://gitlab.com/api/v4/projects/1", "allowed"),
        c("get https://gitlab.com/api/v4/projects/1", "method_not_allowed"),
        c("Get https://gitlab.com/api/v4/projects/1", "method_not_allowed"),
        c("FETCH https://gitlab.com/api/v4/projects/1", "method_not_allowed"),
        c("DELETE https://gitlab.com/api/v4/projects/1", "method_not_allowed"),
        c("PATCH https://gitlab.com/api/v4/projects/1", "method_not_allowed"),
        c("OPTIONS https://pypi.org/", "method_not_allowed"),
        c("POST https://pypi.org/", "method_not_allowed"),
        c("get https://pypi.org/", "method_not_allowed"),
        c("DELETE https://a.mirror.internal/x", "method_not_allowed"),
        c("PUT https://a.mirror.internal/x", "allowed"),
        c("put https://a.mirror.internal/x", "method_not_allowed"),
        // The furthest stage any candidate reached names the reason.
        c("POST https://gitlab.com/api/v4/projects/1", "path_not_allowed"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/tree", "path_not_allowed"),
        // Paths: canonical form, dot segments, encoded slashes.
        c("GET https://gitlab.com/api/v4/projects/1/repository/tree", "allowed"),
        c("GET https://gitlab.com/api/v4/projects/1/repository", "allowed"),
        c("GET https://gitlab.com/api/v4/projects/group%2Fproject", "allowed"),
        c("GET https://gitlab.com/api/v4/projects/group%2fproject/repository/tree", "allowed"),
        c("GET https://gitlab.com/api/v4/projects/group/project", "path_not_allowed"),
        c("GET https://gitlab.com/api/v4/projects/1/../2", "allowed"),
        c("GET https://gitlab.com/api/v4/projects/1/./repository/tree", "allowed"),
        c("GET https://gitlab.com//api//v4///projects/1", "allowed"),
        c("GET https://gitlab.com/%61pi/v4/projects/1", "allowed"),
        c("GET https://gitlab.com/api/v4/%70rojects/1", "allowed"),
        c("GET https://gitlab.com/api/v4/projects/1%2F..%2F2", "allowed"),
        c("GET https://gitlab.com/api/v4/projects/%00", "allowed"),
        c("GET https://gitlab.com/api/v4/projects/1?statistics=true", "allowed"),
        c("GET https://gitlab.com/api/v4/projects/../../../etc/passwd", "path_not_allowed"),
        c("GET https://gitlab.com/api/v4/projects/%2e%2e/users", "path_not_allowed"),
        c("GET https://gitlab.com/api/v4/projects/1/%2E%2E/%2E%2E/users", "path_not_allowed"),
        c("GET https://gitlab.com/api/v4/projects/.%2e/users", "path_not_allowed"),
        c("GET https://gitlab.com/api/v4/Projects/1", "path_not_allowed"),
        c("GET https://gitlab.com/API/v4/projects/1", "path_not_allowed"),
        c("GET https://gitlab.com/api/v4/projects", "path_not_allowed"),
        c("GET https://gitlab.com/api/v4/projects/", "path_not_allowed"),
        c("GET https://gitlab.com/api/v4/projects/1/", "path_not_allowed"),
        c("GET https://gitlab.com/api/v4/users", "path_not_allowed"),
        c("GET https://gitlab.com/", "path_not_allowed"),
        c("GET https://gitlab.com/api/v4/../../../etc", "invalid_path"),
        c("GET https://gitlab.com/..", "invalid_path"),
        c("GET https://gitlab.com/%2e%2e/x", "invalid_path"),
        c("GET https://gitlab.com|api/v4/projects/1", "invalid_path"),
        c("GET https://gitlab.com|*", "invalid_path"),
        c("GET https://gitlab.com|", "invalid_path"),
        c("GET https://gitlab.com/api/v4/projects/1\\..\\2", "invalid_path"),
        c("GET https://gitlab.com/api/v4/projects/1%ZZ", "invalid_path"),
        c("GET https://gitlab.com/api/v4/projects/1%2", "invalid_path"),
        c("GET https://gitlab.com/api/v4/projects/1#frag", "invalid_path"),
        c("GET https://gitlab.com/api/v4/projects/1?a=b c", "invalid_path"),
        c("GET https://gitlab.com/api/v4/projects/1?a=b#c", "invalid_path"),
        c("GET https://gitlab.com/api/v4/projects/é", "invalid_path"),
        c("GET https://gitlab.com/api/v4/projects/1\t", "invalid_path"),
        c(long_path, "invalid_path"),
        c("GET https://pypi.org/a/../../b", "invalid_path"),
        c("GET https://pypi.org/a/../b", "allowed"),
        c("GET https://pypi.org/%7Euser", "allowed"),
        // CEL on the query: first value, decoded; errors never admit.
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches?branch=evershell/x", "allowed"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches?branch=evershell%2Fx&ref=main", "allowed"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches?branch=%65vershell/x", "allowed"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches?ref=main&branch=evershell/x", "allowed"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches?branch=evershell/x&branch=main", "allowed"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches?branch=main&branch=evershell/x", "match_not_satisfied"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches?branch=main", "match_not_satisfied"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches?branch=Evershell/x", "match_not_satisfied"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches?branch=evershell", "match_not_satisfied"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches?branch=+evershell/x", "match_not_satisfied"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches?branch", "match_not_satisfied"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches?Branch=evershell/x", "cel_error"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches?ref=main", "cel_error"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches", "cel_error"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches?=evershell/x", "cel_error"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches?branch=evershell/x%ZZ", "cel_error"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches?branch=evershell/%FF", "cel_error"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches/?branch=evershell/x", "path_not_allowed"),
        c("POST https://gitlab.com/api/v4/projects/1/repository/branches/../branches?branch=evershell/x", "allowed"),
        c("post https://gitlab.com/api/v4/projects/1/repository/branches?branch=evershell/x", "method_not_allowed"),
        c("POST http://gitlab.com/api/v4/projects/1/repository/branches?branch=evershell/x", "insecure_not_allowed"),
        c("POST https://gitlab.com.evil.net/api/v4/projects/1/repository/branches?branch=evershell/x", "host_not_allowed"),
        // CEL on query_all and matches().
        c("GET https://api.example.com/v1/search?q=abc", "allowed"),
        c("GET https://api.example.com/v1/search?q=a%62c", "allowed"),
        c("GET https://api.example.com/v1/search?lang=en&q=abc", "allowed"),
        c("GET https://api.example.com/v1/search?q=abc&q=def", "match_not_satisfied"),
        c("GET https://api.example.com/v1/search?q=ABC", "match_not_satisfied"),
        c("GET https://api.example.com/v1/search?q=abc1", "match_not_satisfied"),
        c("GET https://api.example.com/v1/search?q=", "match_not_satisfied"),
        c("GET https://api.example.com/v1/search?q=ab%0Ac", "match_not_satisfied"),
        c("GET https://api.example.com/v1/search", "cel_error"),
        c("GET https://api.example.com/v1/search?Q=abc", "cel_error"),
        // CEL on headers: lower-cased names, repeats joined.
        c("GET https://api.example.com/v1/secure/x", "cel_error"),
        c("GET https://api.example.com/v1/secure/x", "allowed")
            .h("x-api-version", "2")
            .h("accept", "application/json"),
        c("GET https://api.example.com/v1/secure/a/b/c", "allowed")
            .h("X-API-Version", "2")
            .h("Accept", "application/json"),
        c("GET https://api.example.com/v1/secure/x", "allowed")
            .h("x-api-version", "2")
            .h("accept", "text/html")
            .h("accept", "application/json"),
        c("GET https://api.example.com/v1/secure/x", "match_not_satisfied")
            .h("x-api-version", "3")
            .h("accept", "application/json"),
        c("GET https://api.example.com/v1/secure/x", "match_not_satisfied")
            .h("x-api-version", "2")
            .h("x-api-version", "2")
            .h("accept", "application/json"),
        c("GET https://api.example.com/v1/secure/x", "match_not_satisfied")
            .h("x-api-version", "2")
            .h("accept", "text/html"),
        c("GET https://api.example.com/v1/secure/x", "cel_error").h("x-api-version", "2"),
        c("GET https://api.example.com/v1/secure/x", "cel_error").h("accept", "application/json"),
        c("GET https://api.example.com/v1/secure/x", "match_not_satisfied")
            .h("x-api-version", " 2")
            .h("accept", "application/json"),
        c("GET https://api.example.com/v1/secure-x", "path_not_allowed").h("x-api-version", "2"),
        c("GET https://api.example.com/v1/secure", "cel_error").h("x-api-version", "2"),
        // CEL on workspace and task.
        c("GET https://api.example.com/v1/workspace", "allowed"),
        c("GET https://api.example.com/v1/workspace", "match_not_satisfied").ws("viewer", "prod", Some("t_1")),
        c("GET https://api.example.com/v1/workspace", "match_not_satisfied").ws("builder", "staging", Some("t_1")),
        c("GET https://api.example.com/v1/workspace", "match_not_satisfied").ws("builder", "prod", None),
        c("GET https://api.example.com/v1/workspace", "match_not_satisfied").ws("", "", None),
        c("GET https://api.example.com/v1/facts", "allowed"),
        c("GET https://api.example.com:443/v1/facts", "allowed"),
        c("GET https://API.EXAMPLE.COM./v1/facts", "allowed"),
        c("GET https://api.example.com//v1/./facts", "allowed"),
        c("GET https://api.example.com/v1/facts", "cel_error").ws("builder", "prod", None),
        c("GET https://api.example.com/v1/broken", "cel_error"),
        c("GET https://api.example.com/v1/broken?missing=x", "allowed"),
        c("GET https://api.example.com/v1/broken?missing=y", "match_not_satisfied"),
        c("GET https://api.example.com/v1/not-bool", "cel_error"),
        // Body schema: size first, then JSON, then the schema.
        c("POST https://api.example.com/v1/items", "allowed").body(r#"{"name":"a"}"#),
        c("POST https://api.example.com/v1/items", "allowed").body(r#"{"name":"abcdefghij"}"#),
        c("POST https://api.example.com/v1/items", "allowed").body(format!("{{\"name\":\"a\"}}{}", " ".repeat(52))),
        c("POST https://api.example.com/v1/items", "body_too_large").body(format!("{{\"name\":\"a\"}}{}", " ".repeat(53))),
        c("POST https://api.example.com/v1/items", "body_too_large").body(vec![b' '; 10_000]),
        c("POST https://api.example.com/v1/items", "body_invalid").body(r#"{"name":"abcdefghijk"}"#),
        c("POST https://api.example.com/v1/items", "body_invalid").body(r#"{"name":1}"#),
        c("POST https://api.example.com/v1/items", "body_invalid").body(r#"{}"#),
        c("POST https://api.example.com/v1/items", "body_invalid").body(r#"{"name":"a","x":1}"#),
        c("POST https://api.example.com/v1/items", "body_invalid").body(r#"[{"name":"a"}]"#),
        c("POST https://api.example.com/v1/items", "body_invalid").body("null"),
        c("POST https://api.example.com/v1/items", "body_not_json").body("name=a"),
        c("POST https://api.example.com/v1/items", "body_not_json").body(r#"{"name":"a""#),
        c("POST https://api.example.com/v1/items", "body_not_json").body(vec![0xff, 0xfe]),
        c("POST https://api.example.com/v1/items", "body_not_json"),
        c("POST https://api.example.com/v1/items/", "path_not_allowed").body(r#"{"name":"a"}"#),
        // CEL on the body.
        c("PUT https://api.example.com/v1/items/1", "allowed").body(r#"{"owner":"ws_1"}"#),
        c("PUT https://api.example.com/v1/items/1", "allowed").body(r#"{"owner":"ws_1","owner2":"x"}"#),
        c("PUT https://api.example.com/v1/items/1", "match_not_satisfied").body(r#"{"owner":"ws_2"}"#),
        c("PUT https://api.example.com/v1/items/1", "match_not_satisfied").body(r#"{"owner":"WS_1"}"#),
        c("PUT https://api.example.com/v1/items/1", "match_not_satisfied").body(r#"{"owner":1}"#),
        c("PUT https://api.example.com/v1/items/1", "cel_error").body(r#"{}"#),
        c("PUT https://api.example.com/v1/items/1", "cel_error").body("owner=ws_1"),
        c("PUT https://api.example.com/v1/items/1", "cel_error"),
        c("PUT https://api.example.com/v1/items/1", "body_too_large").body(format!(
            "{{\"owner\":\"ws_1\",\"pad\":\"{}\"}}",
            "x".repeat(1024 * 1024)
        )),
        // An empty body, and nothing more.
        c("DELETE https://api.example.com/v1/items/1", "allowed"),
        c("DELETE https://api.example.com/v1/items/1", "allowed").body(""),
        c("DELETE https://api.example.com/v1/items/1", "body_too_large").body("x"),
        c("DELETE https://api.example.com/v1/items/1", "body_too_large").body("{}"),
        c("DELETE https://api.example.com/v1/items", "path_not_allowed"),
        c("PATCH https://api.example.com/v1/items/1", "method_not_allowed"),
        // Hosts no rule names.
        c("GET https://example.com/", "host_not_allowed"),
        c("GET https://example.com/", "host_not_allowed").h("host", "gitlab.com"),
        c("GET https://localhost/", "host_not_allowed"),
        c("GET https://metadata.google.internal/computeMetadata/v1/", "host_not_allowed"),
        c("GET http://169.254.169.254/latest/meta-data/", "host_not_allowed"),
        c("GET https://[::1]/", "host_not_allowed"),
        c("GET https://[::ffff:10.0.0.7]/x", "host_not_allowed"),
    ]
}

#[test]
fn decides_every_request_of_the_corpus() {
    let p = Policy::compile(Vec::new(), parse(CAPS).unwrap_or_else(|e| panic!("{e}")));
    let cases = cases();
    assert!(cases.len() >= 200, "only {} cases", cases.len());

    let mut wrong = Vec::new();
    for case in &cases {
        let d = decide(&p, case);
        let ok = if case.want == "cel_error" {
            d.reason.starts_with("cel_error: ")
        } else {
            d.reason == case.want
        };
        if !ok || d.allowed != (case.want == "allowed") {
            wrong.push(format!("{} => {} (want {})", case.req, d.reason, case.want));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn denies_every_request_when_the_policy_has_no_rules() {
    let p = Policy::compile(Vec::new(), Vec::new());
    for req in [
        "GET https://gitlab.com/",
        "POST https://a.b/c?d",
        "GET http://10.0.0.7/",
    ] {
        let d = decide(&p, &c(req, "no_matching_rule"));
        assert_eq!(
            (d.allowed, d.reason.as_str()),
            (false, "no_matching_rule"),
            "{req}"
        );
    }
}

// ---------------------------------------------------------------------
// Transforms: each kind, applied to a request by the pure engine.
// ---------------------------------------------------------------------

/// One transform case: the `transforms:` block, the request, the secrets
/// and what the engine must produce.
struct T {
    name: &'static str,
    transforms: &'static str,
    req: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: Option<Value>,
    secrets: &'static [(&'static str, &'static str)],
    want_headers: &'static [(&'static str, &'static str)],
    want_path: &'static str,
    want_query: Option<&'static str>,
    want_body: Option<Value>,
    want_failed: &'static [(&'static str, &'static str)],
    want_auth: &'static [&'static str],
}

const T0: T = T {
    name: "",
    transforms: "",
    req: "GET https://t.example/v1/items?a=1",
    headers: &[],
    body: None,
    secrets: &[],
    want_headers: &[],
    want_path: "/v1/items",
    want_query: Some("a=1"),
    want_body: None,
    want_failed: &[],
    want_auth: &[],
};

fn transform_cases() -> Vec<T> {
    vec![
        T {
            name: "auth hands the credential back",
            transforms: "    - name: t\n      auth: cred\n",
            want_auth: &["cred"],
            ..T0
        },
        T {
            name: "set_headers replaces every value, lower-cased",
            transforms: "    - name: t\n      set_headers: {X-Api-Version: '\"2\"'}\n",
            headers: &[("X-API-VERSION", "1"), ("accept", "*/*"), ("x-api-version", "0")],
            want_headers: &[("accept", "*/*"), ("x-api-version", "2")],
            ..T0
        },
        T {
            name: "set_headers reads secrets",
            transforms: "    - name: t\n      set_headers: {x-tenant: 'secrets[\"tenant-id\"]'}\n",
            secrets: &[("tenant-id", "acme")],
            want_headers: &[("x-tenant", "acme")],
            ..T0
        },
        T {
            name: "set_headers reads the request as decided",
            transforms: "    - name: t\n      set_headers: {x-echo: 'request.method + \" \" + request.host + request.path + \" \" + request.query.a'}\n",
            req: "GET https://T.EXAMPLE./v1/./items?a=1",
            want_headers: &[("x-echo", "GET t.example/v1/items 1")],
            ..T0
        },
        T {
            name: "a missing secret fails the step",
            transforms: "    - name: t\n      set_headers: {x-tenant: 'secrets[\"tenant-id\"]'}\n",
            want_failed: &[("t", "auth_unavailable")],
            ..T0
        },
        T {
            name: "a value that is not a string fails the step",
            transforms: "    - name: t\n      set_headers: {x-n: '1 + 1'}\n",
            want_failed: &[("t", "cel_error: expression evaluated to int, not string")],
            ..T0
        },
        T {
            name: "a failing value that reads a secret never quotes it",
            transforms: "    - name: t\n      set_headers: {x-sig: 'secrets[\"k\"] + request.port'}\n",
            secrets: &[("k", "s3cret-value")],
            want_failed: &[("t", "cel_error: evaluation failed (message withheld: the transform reads secrets)")],
            ..T0
        },
        T {
            name: "a header value with a line break fails the step",
            transforms: "    - name: t\n      set_headers: {x-n: '\"a\\nb\"'}\n",
            want_failed: &[("t", "invalid_header_value")],
            ..T0
        },
        T {
            name: "remove_headers removes every value, any case",
            transforms: "    - name: t\n      remove_headers: [cookie, X-Debug]\n",
            headers: &[("Cookie", "a"), ("accept", "*/*"), ("cookie", "b"), ("x-debug", "1")],
            want_headers: &[("accept", "*/*")],
            ..T0
        },
        T {
            name: "remove then set in one transform",
            transforms: "    - name: t\n      remove_headers: [authorization]\n      set_headers: {authorization: '\"Bearer \" + secrets[\"tok\"]'}\n",
            headers: &[("Authorization", "Basic x")],
            secrets: &[("tok", "abc")],
            want_headers: &[("authorization", "Bearer abc")],
            ..T0
        },
        T {
            name: "set_query replaces a parameter and keeps the others",
            transforms: "    - name: t\n      set_query: {api-version: '\"2024-10-01\"'}\n",
            req: "GET https://t.example/v1/items?a=1&api-version=old&b=%20",
            want_query: Some("a=1&b=%20&api-version=2024-10-01"),
            ..T0
        },
        T {
            name: "set_query encodes its value",
            transforms: "    - name: t\n      set_query: {q: '\"a b&c=d\"'}\n",
            req: "GET https://t.example/v1/items",
            want_query: Some("q=a%20b%26c%3Dd"),
            ..T0
        },
        T {
            name: "remove_query removes every value, names compared decoded",
            transforms: "    - name: t\n      remove_query: [debug]\n",
            req: "GET https://t.example/v1/items?debug=1&a=1&de%62ug=3",
            want_query: Some("a=1"),
            ..T0
        },
        T {
            name: "remove_query of the last parameter leaves no query",
            transforms: "    - name: t\n      remove_query: [a]\n",
            want_query: None,
            ..T0
        },
        T {
            name: "rewrite_path replaces the first match",
            transforms: "    - name: t\n      rewrite_path: {from: \"^/v1/\", to: /api/v1/}\n",
            want_path: "/api/v1/items",
            ..T0
        },
        T {
            name: "rewrite_path expands groups",
            transforms: "    - name: t\n      rewrite_path: {from: \"^/v1/([a-z]+)$\", to: \"/$1/all\"}\n",
            want_path: "/items/all",
            ..T0
        },
        T {
            name: "rewrite_path without a match keeps the path",
            transforms: "    - name: t\n      rewrite_path: {from: \"^/v2/\", to: /x/}\n",
            ..T0
        },
        T {
            name: "rewrite_path keeps the path canonical",
            transforms: "    - name: t\n      rewrite_path: {from: \"^/v1\", to: \"/a/./b//c\"}\n",
            want_path: "/a/b/c/items",
            ..T0
        },
        T {
            name: "rewrite_path above the root fails the step",
            transforms: "    - name: t\n      rewrite_path: {from: \"^/v1/items\", to: /../..}\n",
            want_path: "/v1/items",
            want_failed: &[("t", "invalid_path")],
            ..T0
        },
        T {
            name: "set_body sets a member from a secret",
            transforms: "    - name: t\n      set_body: {/metadata/tenant: 'secrets[\"tenant-id\"]'}\n",
            req: "POST https://t.example/v1/items",
            body: Some(json!({"metadata": {"a": 1}})),
            secrets: &[("tenant-id", "acme")],
            want_query: None,
            want_body: Some(json!({"metadata": {"a": 1, "tenant": "acme"}})),
            ..T0
        },
        T {
            name: "set_body appends and inserts into arrays",
            transforms: "    - name: t\n      set_body: {/items/-: '\"last\"', /items/0: '\"first\"'}\n",
            req: "POST https://t.example/v1/items",
            body: Some(json!({"items": ["x"]})),
            want_query: None,
            want_body: Some(json!({"items": ["first", "x", "last"]})),
            ..T0
        },
        T {
            name: "set_body replaces the whole document from the body as decided",
            transforms: "    - name: t\n      set_body: {\"\": '{\"wrapped\": request.body, \"n\": size(request.body.items)}'}\n",
            req: "POST https://t.example/v1/items",
            body: Some(json!({"items": [1, 2]})),
            want_query: None,
            want_body: Some(json!({"wrapped": {"items": [1, 2]}, "n": 2})),
            ..T0
        },
        T {
            name: "set_body under a missing parent fails the step",
            transforms: "    - name: t\n      set_body: {/metadata/tenant: '\"x\"'}\n",
            req: "POST https://t.example/v1/items",
            body: Some(json!({"a": 1})),
            want_query: None,
            want_body: Some(json!({"a": 1})),
            want_failed: &[("t", "invalid_pointer")],
            ..T0
        },
        T {
            name: "set_body without a JSON body fails the step",
            transforms: "    - name: t\n      set_body: {/a: '\"x\"'}\n",
            req: "POST https://t.example/v1/items",
            want_query: None,
            want_failed: &[("t", "body_not_json")],
            ..T0
        },
        T {
            name: "applies_to leaves other rules alone",
            transforms: "    - name: t\n      applies_to: [other]\n      set_headers: {x: '\"1\"'}\n",
            ..T0
        },
        T {
            name: "steps run in order and later ones see the request as decided",
            transforms: "    - name: one\n      set_headers: {x: '\"1\"'}\n    - name: two\n      set_headers: {y: 'has(request.headers.x) ? \"seen\" : \"unseen\"'}\n",
            want_headers: &[("x", "1"), ("y", "unseen")],
            ..T0
        },
        T {
            name: "a failed step does not stop the others",
            transforms: "    - name: one\n      set_headers: {x: 'secrets[\"gone\"]'}\n    - name: two\n      auth: cred\n",
            want_failed: &[("one", "auth_unavailable")],
            want_auth: &["cred"],
            ..T0
        },
    ]
}

#[test]
fn applies_every_transform_kind() {
    for t in transform_cases() {
        let yaml = format!(
            "- name: cap\n  type: http\n  allow:\n    - name: main\n      domains: [t.example]\n      methods: [GET, POST]\n    - name: other\n      domains: [other.example]\n      methods: [GET]\n  transforms:\n{}",
            t.transforms
        );
        let caps = parse(&yaml).unwrap_or_else(|e| panic!("{}: {e}\n{yaml}", t.name));
        let p = Policy::compile(Vec::new(), caps);
        let (method, scheme, host, port, target) = split(t.req);
        let facts = RequestFacts::new(method, scheme, host, port, &target);
        let raw_body = t.body.as_ref().map(|b| b.to_string()).unwrap_or_default();
        let mut d = p.decide(&facts);
        if d.needs_body.is_some() {
            d = p.decide_with_body(&facts, raw_body.as_bytes());
        }
        assert!(d.allowed, "{}: {d:#?}", t.name);

        let mut parts = RequestParts {
            headers: t
                .headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            path: d
                .canonical_path
                .clone()
                .expect("allowed requests have a path"),
            query: target.split_once('?').map(|(_, q)| q.to_owned()),
            body: t.body.clone(),
        };
        let secrets: HashMap<String, Zeroizing<String>> = t
            .secrets
            .iter()
            .map(|(k, v)| (k.to_string(), Zeroizing::new(v.to_string())))
            .collect();
        let out = apply_transforms(
            &d.transforms,
            &mut parts,
            &TransformContext {
                facts: &facts,
                secrets: &secrets,
            },
        );

        let want_failed: BTreeMap<String, String> = t
            .want_failed
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let want = TransformOutcome {
            applied: u32::try_from(d.transforms.len() - want_failed.len()).expect("few"),
            failed: want_failed,
            auth: out.auth.clone(),
        };
        assert_eq!(out, want, "{}", t.name);
        let auth: Vec<&str> = out.auth.iter().map(|a| a.credential.as_str()).collect();
        assert_eq!(auth, t.want_auth, "{}", t.name);
        let headers: Vec<(&str, &str)> = parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(headers, t.want_headers, "{}", t.name);
        assert_eq!(parts.path, t.want_path, "{}", t.name);
        assert_eq!(parts.query.as_deref(), t.want_query, "{}", t.name);
        assert_eq!(parts.body, t.want_body.or(t.body), "{}", t.name);
    }
}

// ---------------------------------------------------------------------
// Validation: every error, with its field path, line and column.
// ---------------------------------------------------------------------

const HEAD: &str = "- name: c\n  type: http\n  allow:\n    - name: r\n      domains: [a.com]\n      methods: [GET]\n";

/// A rule with `extra` at line 7 (rule keys are indented six spaces).
fn rule(extra: &str) -> String {
    format!("{HEAD}{extra}\n")
}

/// A capability with `extra` at line 7 (capability keys: two spaces).
fn cap(extra: &str) -> String {
    format!("{HEAD}{extra}\n")
}

/// A capability whose first transform's keys start at line 9.
fn tr(extra: &str) -> String {
    format!("{HEAD}  transforms:\n    - name: t\n{extra}\n")
}

fn validation_cases() -> Vec<(
    &'static str,
    String,
    &'static str,
    usize,
    usize,
    &'static str,
)> {
    let r = "capabilities[0].allow[0]";
    let long_cel = format!("      match: 'request.path == \"{}\"'", "a".repeat(5000));
    let deep_cel = format!("      match: '{}true{}'", "(".repeat(33), ")".repeat(33));
    let chain_cel = format!(
        "      match: 'request.path{} == \"\"'",
        " + \"a\"".repeat(70)
    );
    let long_from = format!(
        "      rewrite_path: {{from: \"{}\", to: /}}",
        "a".repeat(1025)
    );
    let deep_yaml = format!("{}{}", "[".repeat(70), "]".repeat(70));
    let big_doc = format!("# {}\n[]\n", "x".repeat(1024 * 1024));
    vec![
        // The document.
        ("not yaml", "- name: [\n".to_owned(), "capabilities", 2, 1, "invalid YAML"),
        ("root not a list", "name: x\n".to_owned(), "capabilities", 1, 1, "expected a list"),
        ("anchor", "- &a {name: x}\n".to_owned(), "capabilities", 1, 6, "anchors (&name) are not allowed"),
        ("alias", "- {name: &a x, type: *a}\n".to_owned(), "capabilities", 1, 13, "anchors"),
        ("tag", "- !!map {name: x}\n".to_owned(), "capabilities", 1, 9, "tags (!tag) are not allowed"),
        ("two documents", "[]\n---\n[]\n".to_owned(), "capabilities", 2, 1, "only one YAML document"),
        ("mapping key", "- {[a]: b}\n".to_owned(), "capabilities", 1, 4, "mapping keys must be plain strings"),
        ("deep nesting", deep_yaml, "capabilities", 1, 65, "nesting is deeper than 64"),
        ("over 1 MiB", big_doc, "capabilities", 1, 1, "over the 1 MiB limit"),
        // Capabilities.
        ("missing name", "- type: http\n  allow: []\n".to_owned(), "capabilities[0]", 1, 3, "missing \"name\""),
        ("missing type", "- name: c\n  allow: [{domains: [a.com], methods: [GET]}]\n".to_owned(), "capabilities[0]", 1, 3, "missing \"type\""),
        ("missing allow", "- name: c\n  type: http\n".to_owned(), "capabilities[0]", 1, 3, "missing \"allow\""),
        ("unknown type", HEAD.replace("http", "grpc"), "capabilities[0].type", 2, 9, "unknown type \"grpc\""),
        ("reserved name", HEAD.replace("name: c", "name: _c"), "capabilities[0].name", 1, 9, "reserved for the platform"),
        ("invalid name", HEAD.replace("name: c", "name: 9c"), "capabilities[0].name", 1, 9, "invalid name"),
        ("duplicate capability", format!("{HEAD}{HEAD}"), "capabilities[1].name", 7, 9, "duplicate capability name \"c\""),
        ("unknown capability key", cap("  colour: red"), "capabilities[0].colour", 7, 3, "unknown key \"colour\""),
        ("rule key beside allow", cap("  paths: [/]"), "capabilities[0].paths", 7, 3, "belongs inside an allow rule"),
        // Allow rules.
        ("missing domains", HEAD.replace("      domains: [a.com]\n", ""), r, 4, 7, "missing \"domains\""),
        ("missing methods", HEAD.replace("      methods: [GET]\n", ""), r, 4, 7, "missing \"methods\""),
        ("lowercase method", HEAD.replace("[GET]", "[get]"), "capabilities[0].allow[0].methods[0]", 6, 17, "methods are upper-case: GET"),
        ("unknown method", HEAD.replace("[GET]", "[FETCH]"), "capabilities[0].allow[0].methods[0]", 6, 17, "unknown method \"FETCH\""),
        ("duplicate method", HEAD.replace("[GET]", "[GET, GET]"), "capabilities[0].allow[0].methods[1]", 6, 22, "duplicate method"),
        ("bare wildcard", HEAD.replace("[a.com]", "[\"*\"]"), "capabilities[0].allow[0].domains[0]", 5, 17, "list the domains explicitly"),
        ("partial wildcard", HEAD.replace("[a.com]", "[\"a*.com\"]"), "capabilities[0].allow[0].domains[0]", 5, 17, "whole leftmost label"),
        ("wildcard ip", HEAD.replace("[a.com]", "[\"*.10.0.0.1\"]"), "capabilities[0].allow[0].domains[0]", 5, 17, "cannot carry a wildcard"),
        ("invalid domain", HEAD.replace("[a.com]", "[a..com]"), "capabilities[0].allow[0].domains[0]", 5, 17, "empty label"),
        ("duplicate domain", HEAD.replace("[a.com]", "[a.com, A.COM.]"), "capabilities[0].allow[0].domains[1]", 5, 24, "duplicate domain"),
        ("relative path", rule("      paths: [a/b]"), "capabilities[0].allow[0].paths[0]", 7, 15, "must start with '/'"),
        ("partial path wildcard", rule("      paths: [/a*]"), "capabilities[0].allow[0].paths[0]", 7, 15, "whole path segment"),
        ("dot path", rule("      paths: [/a/../b]"), "capabilities[0].allow[0].paths[0]", 7, 15, "\"..\""),
        ("path escape", rule("      paths: [/a%zz]"), "capabilities[0].allow[0].paths[0]", 7, 15, "malformed percent escape"),
        ("duplicate path", rule("      paths: [/a, /%61]"), "capabilities[0].allow[0].paths[1]", 7, 19, "duplicate path"),
        ("duplicate rule name", format!("{HEAD}    - name: r\n      domains: [b.com]\n      methods: [GET]\n"), "capabilities[0].allow[1].name", 7, 13, "duplicate rule name"),
        ("allow_insecure", rule("      allow_insecure: yes"), "capabilities[0].allow[0].allow_insecure", 7, 23, "expected true or false"),
        ("unknown rule key", rule("      path: [/]"), "capabilities[0].allow[0].path", 7, 7, "unknown key \"path\""),
        // match:
        ("match syntax", rule("      match: 'request.path =='"), "capabilities[0].allow[0].match", 7, 14, "invalid CEL expression: col"),
        ("match too long", rule(&long_cel), "capabilities[0].allow[0].match", 7, 14, "over the 4 KiB limit"),
        ("match lines", rule("      match: |\n        request.path == \"/\"\n        && true"), "capabilities[0].allow[0].match", 8, 9, "single line"),
        ("match too deep", rule(&deep_cel), "capabilities[0].allow[0].match", 7, 14, "deeper than 32 levels"),
        ("match tree too deep", rule(&chain_cel), "capabilities[0].allow[0].match", 7, 14, "tree is deeper than 64"),
        ("match variable", rule("      match: 'foo == 1'"), "capabilities[0].allow[0].match", 7, 14, "unknown variable \"foo\""),
        ("match field", rule("      match: 'request.bogus == 1'"), "capabilities[0].allow[0].match", 7, 14, "unknown field request.bogus"),
        ("match secrets", rule("      match: 'secrets[\"a\"] == \"b\"'"), "capabilities[0].allow[0].match", 7, 14, "secrets can only be read in transforms"),
        ("match bare variable", rule("      match: 'size(request) > 0'"), "capabilities[0].allow[0].match", 7, 14, "request can only be read through one of its fields"),
        ("match computed index", rule("      match: 'request[request.path] == 1'"), "capabilities[0].allow[0].match", 7, 14, "request can only be read through one of its fields"),
        ("match pattern", rule("      match: 'request.path.matches(request.query.p)'"), "capabilities[0].allow[0].match", 7, 14, "string literal pattern"),
        ("match bad regex", rule("      match: 'request.path.matches(\"(\")'"), "capabilities[0].allow[0].match", 7, 14, "matches() pattern: unclosed group"),
        ("match nested loops", rule("      match: 'request.query_all.all(k, request.query_all[k].exists(v, v == \"\"))'"), "capabilities[0].allow[0].match", 7, 14, "nested comprehensions"),
        ("match not bool", rule("      match: '\"yes\"'"), "capabilities[0].allow[0].match", 7, 14, "must evaluate to bool"),
        ("match message", rule("      match: 'Foo{a: 1} == 1'"), "capabilities[0].allow[0].match", 7, 14, "message construction"),
        ("match not a string", rule("      match: [a]"), "capabilities[0].allow[0].match", 7, 14, "expected a string"),
        // body:
        ("body scalar", rule("      body: 5"), "capabilities[0].allow[0].body", 7, 13, "expected a body check"),
        ("body key", rule("      body: {max: 1}"), "capabilities[0].allow[0].body.max", 7, 14, "unknown key \"max\""),
        ("body max_bytes text", rule("      body: {max_bytes: ten}"), "capabilities[0].allow[0].body.max_bytes", 7, 25, "expected a non-negative integer"),
        ("body max_bytes negative", rule("      body: {max_bytes: -1}"), "capabilities[0].allow[0].body.max_bytes", 7, 25, "expected a non-negative integer"),
        ("body max_bytes over", rule("      body: {max_bytes: 100000000}"), "capabilities[0].allow[0].body.max_bytes", 7, 25, "over the limit of 67108864"),
        ("schema not a mapping", rule("      body: {json_schema: [1]}"), "capabilities[0].allow[0].body.json_schema", 7, 27, "expected a JSON Schema object"),
        ("schema remote ref", rule("      body: {json_schema: {$ref: \"https://schemas.example/s.json\"}}"), "capabilities[0].allow[0].body.json_schema", 7, 27, "only local references"),
        ("schema nested remote ref", rule("      body: {json_schema: {properties: {a: {$ref: \"other.json#/x\"}}}}"), "capabilities[0].allow[0].body.json_schema", 7, 27, "at /properties/a"),
        ("schema invalid", rule("      body: {json_schema: {type: 5}}"), "capabilities[0].allow[0].body.json_schema", 7, 27, "invalid JSON Schema"),
        ("schema pattern too big", rule("      body: {json_schema: {pattern: \"a{1000}{1000}\"}}"), "capabilities[0].allow[0].body.json_schema", 7, 27, "invalid JSON Schema"),
        ("schema infinity", rule("      body: {json_schema: {maximum: .inf}}"), "capabilities[0].allow[0].body.json_schema.maximum", 7, 37, "JSON cannot represent"),
        // budgets:
        ("budgets not a mapping", cap("  budgets: [requests]"), "capabilities[0].budgets", 7, 12, "expected a mapping of counter to budget"),
        ("budget counter", cap("  budgets: {tokens: {limit: 1, per: task}}"), "capabilities[0].budgets.tokens", 7, 13, "unknown counter \"tokens\""),
        ("budget limit zero", cap("  budgets: {requests: {limit: 0, per: task}}"), "capabilities[0].budgets.requests.limit", 7, 31, "positive integer"),
        ("budget limit float", cap("  budgets: {requests: {limit: 1.5, per: task}}"), "capabilities[0].budgets.requests.limit", 7, 31, "expected a non-negative integer"),
        ("budget missing limit", cap("  budgets: {requests: {per: task}}"), "capabilities[0].budgets.requests", 7, 23, "missing \"limit\""),
        ("budget missing per", cap("  budgets: {requests: {limit: 1}}"), "capabilities[0].budgets.requests", 7, 23, "missing \"per\""),
        ("budget per", cap("  budgets: {requests: {limit: 1, per: org}}"), "capabilities[0].budgets.requests.per", 7, 39, "unknown per \"org\""),
        ("budget ceiling", cap("  budgets: {requests: {limit: 1, per: task, ceiling: warn}}"), "capabilities[0].budgets.requests.ceiling", 7, 54, "unknown ceiling \"warn\""),
        ("budget clamp", cap("  budgets: {requests: {limit: 1, per: task, ceiling: clamp}}"), "capabilities[0].budgets.requests.ceiling", 7, 54, "applies to output_tokens only"),
        ("budget key", cap("  budgets: {requests: {limit: 1, per: task, reset: daily}}"), "capabilities[0].budgets.requests.reset", 7, 45, "unknown key \"reset\""),
        // transforms:
        ("transforms not a list", cap("  transforms: {name: t}"), "capabilities[0].transforms", 7, 15, "expected a list"),
        ("transform missing name", format!("{HEAD}  transforms:\n    - auth: cred\n"), "capabilities[0].transforms[0]", 8, 7, "missing \"name\""),
        ("transform missing action", tr(""), "capabilities[0].transforms[0]", 8, 7, "missing an action"),
        ("transform auth and rewrite", tr("      auth: cred\n      set_headers: {x: '\"1\"'}"), "capabilities[0].transforms[0].set_headers", 10, 7, "cannot be combined with \"auth\""),
        ("transform key", tr("      auth: cred\n      colour: red"), "capabilities[0].transforms[0].colour", 10, 7, "unknown key \"colour\""),
        ("transform duplicate name", tr("      auth: a\n    - name: t\n      auth: b"), "capabilities[0].transforms[1].name", 10, 13, "duplicate transform name"),
        ("auth credential name", tr("      auth: \"a b\""), "capabilities[0].transforms[0].auth", 9, 13, "invalid name"),
        ("applies_to unknown rule", tr("      applies_to: [x]\n      auth: a"), "capabilities[0].transforms[0].applies_to[0]", 9, 20, "\"x\" is not an allow rule"),
        ("secret over plain http", format!("{HEAD}      allow_insecure: true\n  transforms:\n    - name: t\n      set_headers: {{x-k: 'secrets[\"k\"]'}}\n"), "capabilities[0].transforms[0]", 9, 13, "secret \"k\" would be sent over plain HTTP"),
        ("auth over plain http", format!("{HEAD}      allow_insecure: true\n  transforms:\n    - name: t\n      auth: a\n"), "capabilities[0].transforms[0]", 9, 13, "would be sent over plain HTTP"),
        ("applies_to empty", tr("      applies_to: []\n      auth: a"), "capabilities[0].transforms[0].applies_to", 9, 19, "must not be empty"),
        ("header name", tr("      set_headers: {\"x y\": '\"1\"'}"), "capabilities[0].transforms[0].set_headers.x y", 9, 21, "not a valid header name"),
        ("reserved header", tr("      set_headers: {Host: '\"a\"'}"), "capabilities[0].transforms[0].set_headers.Host", 9, 21, "belongs to the proxy"),
        ("duplicate header", tr("      set_headers: {X-A: '\"1\"', x-a: '\"2\"'}"), "capabilities[0].transforms[0].set_headers.x-a", 9, 33, "duplicate name"),
        ("set_headers empty", tr("      set_headers: {}"), "capabilities[0].transforms[0].set_headers", 9, 20, "must not be empty"),
        ("set_headers list", tr("      set_headers: [a]"), "capabilities[0].transforms[0].set_headers", 9, 20, "expected a mapping of name to CEL expression"),
        ("value variable", tr("      set_headers: {x: 'foo'}"), "capabilities[0].transforms[0].set_headers.x", 9, 24, "unknown variable \"foo\""),
        ("value secret index", tr("      set_headers: {x: 'secrets[request.path]'}"), "capabilities[0].transforms[0].set_headers.x", 9, 24, "literal name"),
        ("value syntax", tr("      set_query: {x: '1 +'}"), "capabilities[0].transforms[0].set_query.x", 9, 22, "invalid CEL expression"),
        ("query name", tr("      set_query: {\"a&b\": '\"1\"'}"), "capabilities[0].transforms[0].set_query.a&b", 9, 19, "not a valid query parameter name"),
        ("remove_query duplicate", tr("      remove_query: [a, a]"), "capabilities[0].transforms[0].remove_query[1]", 9, 25, "duplicate name"),
        ("remove_headers empty", tr("      remove_headers: []"), "capabilities[0].transforms[0].remove_headers", 9, 23, "must not be empty"),
        ("remove_headers reserved", tr("      remove_headers: [Content-Length]"), "capabilities[0].transforms[0].remove_headers[0]", 9, 24, "belongs to the proxy"),
        ("rewrite missing to", tr("      rewrite_path: {from: a}"), "capabilities[0].transforms[0].rewrite_path", 9, 21, "missing \"to\""),
        ("rewrite missing from", tr("      rewrite_path: {to: a}"), "capabilities[0].transforms[0].rewrite_path", 9, 21, "missing \"from\""),
        ("rewrite key", tr("      rewrite_path: {from: a, to: b, flags: i}"), "capabilities[0].transforms[0].rewrite_path.flags", 9, 38, "unknown key \"flags\""),
        ("rewrite regex", tr("      rewrite_path: {from: \"(\", to: x}"), "capabilities[0].transforms[0].rewrite_path.from", 9, 28, "invalid pattern: unclosed group"),
        ("rewrite too big", tr("      rewrite_path: {from: \"a{1000}{1000}\", to: x}"), "capabilities[0].transforms[0].rewrite_path.from", 9, 28, "256 KiB program size limit"),
        ("rewrite too long", tr(&long_from), "capabilities[0].transforms[0].rewrite_path.from", 9, 28, "over the 1 KiB limit"),
        ("rewrite group", tr("      rewrite_path: {from: \"^/a\", to: \"/$1\"}"), "capabilities[0].transforms[0].rewrite_path.from", 9, 28, "group \"1\""),
        ("pointer relative", tr("      set_body: {\"a/b\": '\"x\"'}"), "capabilities[0].transforms[0].set_body.a/b", 9, 18, "must be empty or start with '/'"),
        ("pointer escape", tr("      set_body: {\"/a~2\": '\"x\"'}"), "capabilities[0].transforms[0].set_body./a~2", 9, 18, "'~' must be followed by 0 or 1"),
    ]
}

#[test]
fn reports_every_validation_error_at_its_field_and_position() {
    let mut wrong = Vec::new();
    for (what, yaml, path, line, col, message) in validation_cases() {
        let errs = match parse(&yaml) {
            Ok(_) => {
                wrong.push(format!("{what}: parsed"));
                continue;
            }
            Err(e) => e.0,
        };
        let found = errs.iter().any(|e| {
            e.path == path && e.line == line && e.column == col && e.message.contains(message)
        });
        if !found {
            wrong.push(format!(
                "{what}: want {path} {line}:{col} {message:?}, got {errs:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
