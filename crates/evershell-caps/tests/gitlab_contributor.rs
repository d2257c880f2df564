//! The GitLab contributor fixture admits exactly the intended requests:
//! reads, branch creation and commits under `evershell/`, merge requests
//! from those branches, and git fetch. Every other write is denied.

use evershell_caps::{parse, Explanation, Policy, RequestFacts, Scheme};

const FIXTURE: &str = include_str!("fixtures/gitlab-contributor.yaml");

/// Method, target, headers, body, and the expected rule or reason.
type Row<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str, &'a str);

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];
const FORM: &[(&str, &str)] = &[("content-type", "application/x-www-form-urlencoded")];

fn policy() -> Policy {
    let caps = parse(FIXTURE).unwrap_or_else(|e| panic!("fixture is valid: {e}"));
    Policy::compile(Vec::new(), caps)
}

/// Explains a request the way the proxy decides it: from the head, then
/// with the body when the head decision asks for it.
fn explain(
    p: &Policy,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Explanation {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let facts =
        RequestFacts::new(method, Scheme::Https, "gitlab.com", 443, target).with_headers(&headers);
    let head = p.explain(&facts, None);
    assert_eq!(
        head.decision,
        p.decide(&facts),
        "explain agrees with decide"
    );
    let Some(limit) = head.decision.needs_body else {
        return head;
    };
    let body = &body.as_bytes()[..body.len().min(limit + 1)];
    let full = p.explain(&facts, Some(body));
    assert_eq!(full.decision, p.decide_with_body(&facts, body));
    full
}

#[test]
fn admits_reads_branch_creation_commits_and_merge_requests_under_evershell() {
    let p = policy();
    let commit = r#"{"branch":"evershell/fix-1","commit_message":"fix","actions":[]}"#;
    let mr = r#"{"source_branch":"evershell/fix-1","target_branch":"main","title":"Fix"}"#;
    let cases: &[Row] = &[
        ("GET", "/api/v4/projects/42", &[], "", "read"),
        (
            "GET",
            "/api/v4/projects/group%2Fproject/repository/tree?ref=main",
            &[],
            "",
            "read",
        ),
        (
            "GET",
            "/api/v4/projects/42/repository/files/src%2Fmain.rs/raw?ref=main",
            &[],
            "",
            "read",
        ),
        (
            "GET",
            "/api/v4/projects/42/repository/branches",
            &[],
            "",
            "read",
        ),
        (
            "GET",
            "/api/v4/projects/42/repository/compare?from=main&to=evershell/x",
            &[],
            "",
            "read",
        ),
        (
            "GET",
            "/api/v4/projects/42/merge_requests/7/changes",
            &[],
            "",
            "read",
        ),
        (
            "POST",
            "/api/v4/projects/42/repository/branches?branch=evershell/fix-1&ref=main",
            &[],
            "",
            "create-branch",
        ),
        (
            "POST",
            "/api/v4/projects/42/repository/branches?branch=evershell%2Ffix-1&ref=main",
            &[],
            "",
            "create-branch",
        ),
        (
            "POST",
            "/api/v4/projects/42/repository/commits",
            JSON,
            commit,
            "commit",
        ),
        (
            "POST",
            "/api/v4/projects/42/merge_requests",
            JSON,
            mr,
            "open-merge-request",
        ),
        (
            "GET",
            "/evershell/demo.git/info/refs?service=git-upload-pack",
            &[],
            "",
            "git-fetch-refs",
        ),
        (
            "POST",
            "/evershell/demo.git/git-upload-pack",
            &[],
            "",
            "git-fetch-pack",
        ),
    ];
    for (method, target, headers, body, rule) in cases {
        let e = explain(&p, method, target, headers, body);
        let d = &e.decision;
        assert!(d.allowed, "{method} {target}: {e:#?}");
        assert_eq!(d.rule.as_deref(), Some(*rule), "{method} {target}");
        assert_eq!(d.auth[0].credential, "gitlab-pat");
        assert_eq!(e.transforms, ["gitlab-token: stamp credential gitlab-pat"]);
        assert!(e
            .candidates
            .last()
            .is_some_and(|c| c.admitted && c.rule == *rule));
    }
}

#[test]
fn denies_merge_branch_deletion_pushes_and_every_other_write() {
    let p = policy();
    let to_main = r#"{"branch":"main","commit_message":"x","actions":[]}"#;
    let evershell = r#"{"branch":"evershell/x","commit_message":"x","actions":[]}"#;
    let mr_from_main = r#"{"source_branch":"main","target_branch":"evershell/x","title":"x"}"#;
    let cases: &[Row] = &[
        // Merging, deleting branches, changing settings.
        (
            "PUT",
            "/api/v4/projects/42/merge_requests/7/merge",
            &[],
            "",
            "method_not_allowed",
        ),
        (
            "POST",
            "/api/v4/projects/42/merge_requests/7/merge",
            &[],
            "",
            "path_not_allowed",
        ),
        (
            "DELETE",
            "/api/v4/projects/42/repository/branches/evershell%2Fx",
            &[],
            "",
            "method_not_allowed",
        ),
        (
            "DELETE",
            "/api/v4/projects/42/repository/merged_branches",
            &[],
            "",
            "method_not_allowed",
        ),
        ("PUT", "/api/v4/projects/42", &[], "", "method_not_allowed"),
        (
            "PUT",
            "/api/v4/projects/42/merge_requests/7",
            &[],
            "",
            "method_not_allowed",
        ),
        // Branches outside evershell/, or named twice, or through the body.
        (
            "POST",
            "/api/v4/projects/42/repository/branches?branch=main&ref=evershell/x",
            &[],
            "",
            "match_not_satisfied",
        ),
        (
            "POST",
            "/api/v4/projects/42/repository/branches?branch=evershell/x&branch=main&ref=main",
            &[],
            "",
            "match_not_satisfied",
        ),
        (
            "POST",
            "/api/v4/projects/42/repository/branches?branch=evershell/x&ref=main&force=true",
            &[],
            "",
            "match_not_satisfied",
        ),
        (
            "POST",
            "/api/v4/projects/42/repository/branches?branch=evershell/x&ref=main",
            FORM,
            "branch=main",
            "body_too_large",
        ),
        (
            "POST",
            "/api/v4/projects/42/repository/branches?ref=main",
            &[],
            "",
            "cel_error",
        ),
        // Commits to main, through the body or the query.
        (
            "POST",
            "/api/v4/projects/42/repository/commits",
            JSON,
            to_main,
            "body_invalid",
        ),
        (
            "POST",
            "/api/v4/projects/42/repository/commits?branch=main",
            JSON,
            evershell,
            "match_not_satisfied",
        ),
        (
            "POST",
            "/api/v4/projects/42/repository/commits",
            FORM,
            "branch=evershell/x",
            "body_not_json",
        ),
        (
            "POST",
            "/api/v4/projects/42/repository/commits",
            &[],
            evershell,
            "cel_error",
        ),
        (
            "POST",
            "/api/v4/projects/42/repository/commits",
            JSON,
            "not json",
            "body_not_json",
        ),
        // Merge requests from other branches.
        (
            "POST",
            "/api/v4/projects/42/merge_requests",
            JSON,
            mr_from_main,
            "body_invalid",
        ),
        // Other writes: files API, tags, notes, protected branches.
        (
            "PUT",
            "/api/v4/projects/42/repository/files/README.md",
            JSON,
            evershell,
            "method_not_allowed",
        ),
        (
            "POST",
            "/api/v4/projects/42/repository/files/README.md",
            JSON,
            evershell,
            "path_not_allowed",
        ),
        (
            "POST",
            "/api/v4/projects/42/repository/tags?tag_name=v1&ref=main",
            &[],
            "",
            "path_not_allowed",
        ),
        (
            "POST",
            "/api/v4/projects/42/merge_requests/7/notes",
            JSON,
            "{}",
            "path_not_allowed",
        ),
        (
            "POST",
            "/api/v4/projects/42/protected_branches?name=main",
            &[],
            "",
            "path_not_allowed",
        ),
        // git push over smart HTTP, and path tricks toward it.
        (
            "GET",
            "/evershell/demo.git/info/refs?service=git-receive-pack",
            &[],
            "",
            "match_not_satisfied",
        ),
        (
            "POST",
            "/evershell/demo.git/git-receive-pack",
            &[],
            "",
            "path_not_allowed",
        ),
        (
            "POST",
            "/evershell/demo.git/git-upload-pack/../git-receive-pack",
            &[],
            "",
            "path_not_allowed",
        ),
        (
            "POST",
            "/api/v4/projects/42/repository/branches/../../merge_requests/7/merge",
            &[],
            "",
            "path_not_allowed",
        ),
    ];
    for (method, target, headers, body, reason) in cases {
        let e = explain(&p, method, target, headers, body);
        let d = &e.decision;
        assert!(!d.allowed, "{method} {target}: {e:#?}");
        assert!(
            d.reason.starts_with(reason),
            "{method} {target}: {} != {reason}",
            d.reason
        );
        assert!(e.transforms.is_empty());
        assert!(
            e.candidates.iter().all(|c| !c.admitted),
            "{method} {target}"
        );
        assert!(d.auth.is_empty() && d.transforms.is_empty());
    }
}

#[test]
fn explains_each_candidate_refusal_in_document_order() {
    let p = policy();
    let e = explain(
        &p,
        "PUT",
        "/api/v4/projects/42/merge_requests/7/merge",
        &[],
        "",
    );
    let rules: Vec<&str> = e.candidates.iter().map(|c| c.rule.as_str()).collect();
    assert_eq!(
        rules,
        [
            "read",
            "create-branch",
            "commit",
            "open-merge-request",
            "git-fetch-refs",
            "git-fetch-pack"
        ]
    );
    assert!(e.candidates[0]
        .why
        .contains("method \"PUT\" is not one of [GET, HEAD]"));
}

#[test]
fn asks_for_the_body_before_judging_body_rules() {
    let p = policy();
    let headers = [("content-type".to_owned(), "application/json".to_owned())];
    let facts = RequestFacts::new(
        "POST",
        Scheme::Https,
        "gitlab.com",
        443,
        "/api/v4/projects/42/repository/commits",
    )
    .with_headers(&headers);
    let d = p.decide(&facts);
    assert_eq!((d.allowed, d.reason.as_str()), (false, "body_required"));
    assert_eq!(d.needs_body, Some(4 * 1024 * 1024));
    let e = p.explain(&facts, None);
    let last = e.candidates.last().expect("the pending rule is listed");
    assert_eq!(last.rule, "commit");
    assert!(last.why.starts_with("needs the request body"));
}

#[test]
fn reports_the_task_budget_of_the_capability() {
    let p = policy();
    let e = explain(&p, "GET", "/api/v4/projects/42", &[], "");
    let b = &e.decision.budgets;
    assert_eq!(b.len(), 1);
    assert_eq!(
        (b[0].counter.as_str(), b[0].budget.limit),
        ("requests", 5000)
    );
}
