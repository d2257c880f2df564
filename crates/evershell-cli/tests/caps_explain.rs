//! `evershell caps explain` on the GitLab contributor policy exactly as the
//! user documentation prints it: the intended requests are admitted, and
//! merging, deleting branches, writing to other branches and every other
//! write are denied.

use std::path::PathBuf;
use std::process::Command;

/// The first ```yaml block after the worked example's heading.
fn documented_policy() -> String {
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/caps-yaml.md");
    let text = std::fs::read_to_string(docs).expect("docs/caps-yaml.md");
    let section = text
        .split("## Worked example: a GitLab contributor")
        .nth(1)
        .expect("the worked example");
    let block = section.split("```yaml\n").nth(1).expect("its yaml block");
    block
        .split("```")
        .next()
        .expect("the block ends")
        .to_string()
}

fn explain(
    file: &std::path::Path,
    request: &str,
    body: Option<&str>,
    content_type: bool,
) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_evershell"));
    cmd.args(["caps", "explain"])
        .arg(file)
        .args(["--request", request]);
    let dir = tempfile::tempdir().expect("tempdir");
    if let Some(body) = body {
        let path = dir.path().join("body.json");
        std::fs::write(&path, body).expect("body file");
        cmd.arg("--body").arg(path);
    }
    if content_type {
        cmd.args(["--header", "Content-Type: application/json"]);
    }
    let out = cmd.output().expect("evershell runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_documented_gitlab_policy_admits_exactly_the_contributor_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("gitlab.yaml");
    std::fs::write(&file, documented_policy()).expect("policy file");

    let commit = r#"{"branch":"evershell/fix","commit_message":"fix","actions":[]}"#;
    let commit_main = r#"{"branch":"main","commit_message":"fix","actions":[]}"#;
    let mr = r#"{"source_branch":"evershell/fix","target_branch":"main","title":"Fix"}"#;
    let mr_from_main = r#"{"source_branch":"main","target_branch":"release","title":"x"}"#;
    let p = "https://gitlab.com/api/v4/projects/42";
    let admitted = [
        (format!("GET {p}/repository/tree"), None, false),
        (
            format!("GET {p}/repository/files/README.md/raw?ref=main"),
            None,
            false,
        ),
        (format!("GET {p}/merge_requests/7"), None, false),
        (
            format!("POST {p}/repository/branches?branch=evershell/fix&ref=main"),
            None,
            false,
        ),
        (format!("POST {p}/repository/commits"), Some(commit), true),
        (format!("POST {p}/merge_requests"), Some(mr), true),
        (
            "GET https://gitlab.com/group/project.git/info/refs?service=git-upload-pack"
                .to_string(),
            None,
            false,
        ),
        (
            "POST https://gitlab.com/group/project.git/git-upload-pack".to_string(),
            None,
            false,
        ),
    ];
    for (request, body, json) in &admitted {
        let (ok, out) = explain(&file, request, *body, *json);
        assert!(ok, "{request} should be admitted:\n{out}");
    }
    let denied = [
        (format!("PUT {p}/merge_requests/7/merge"), None, false),
        (
            format!("DELETE {p}/repository/branches/evershell%2Ffix"),
            None,
            false,
        ),
        (
            format!("POST {p}/repository/branches?branch=main&ref=x"),
            None,
            false,
        ),
        (
            format!("POST {p}/repository/branches?branch=evershell/x&branch=main&ref=x"),
            None,
            false,
        ),
        (
            format!("POST {p}/repository/branches?branch=evershell/x;branch=main&ref=main"),
            None,
            false,
        ),
        (
            format!("POST {p}/repository/commits"),
            Some(commit_main),
            true,
        ),
        (
            format!("POST {p}/repository/commits?branch=main"),
            Some(commit),
            true,
        ),
        (format!("POST {p}/merge_requests"), Some(mr_from_main), true),
        (
            format!("PUT {p}/repository/files/README.md"),
            Some(commit),
            true,
        ),
        (
            format!("POST {p}/repository/tags?tag_name=v1&ref=main"),
            None,
            false,
        ),
        (format!("DELETE {p}"), None, false),
        (
            "POST https://gitlab.com/group/project.git/git-receive-pack".to_string(),
            None,
            false,
        ),
        (
            format!("POST {p}/repository/branches/../../merge_requests/7/merge"),
            None,
            false,
        ),
        (
            "GET https://gitlab.com.evil.net/api/v4/projects/42".to_string(),
            None,
            false,
        ),
    ];
    for (request, body, json) in &denied {
        let (ok, out) = explain(&file, request, *body, *json);
        assert!(!ok, "{request} should be denied:\n{out}");
        assert!(out.starts_with("DENY"), "{out}");
    }
}
