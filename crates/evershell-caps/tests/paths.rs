//! Request path canonicalisation and path patterns.

use evershell_caps::{canonicalize_path, PathError, PathPattern, PatternError, MAX_PATH_BYTES};

#[test]
fn canonicalizes_paths_to_one_form() {
    let cases: &[(&str, &str)] = &[
        ("/", "/"),
        ("/api/v4/projects", "/api/v4/projects"),
        ("/api/v4/projects/", "/api/v4/projects/"),
        ("//api", "/api"),
        ("/api//v4///projects", "/api/v4/projects"),
        ("/api/v4/%70rojects", "/api/v4/projects"),
        ("/api/%7e%41%2d%5F", "/api/~A-_"),
        (
            "/api/v4/projects/group%2fproject",
            "/api/v4/projects/group%2Fproject",
        ),
        ("/a%20b/%c3%a9", "/a%20b/%C3%A9"),
        ("/api/./v4/./projects", "/api/v4/projects"),
        ("/api/v4/projects/../../admin", "/api/admin"),
        ("/api/v4/%2e%2e/admin", "/api/admin"),
        ("/api/%2E/v4", "/api/v4"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("/a/..", "/"),
        ("/a//../b", "/b"),
        ("/a/.../b", "/a/.../b"),
        ("/a/..b/c", "/a/..b/c"),
        ("/Api/V4", "/Api/V4"),
    ];
    for (raw, want) in cases {
        assert_eq!(canonicalize_path(raw).as_deref(), Ok(*want), "{raw}");
    }
}

#[test]
fn refuses_paths_that_escape_root_or_hold_forbidden_bytes() {
    let cases: &[(&str, PathError)] = &[
        ("", PathError::NotAbsolute),
        ("api/v4", PathError::NotAbsolute),
        ("*", PathError::NotAbsolute),
        ("http://evil.net/", PathError::NotAbsolute),
        ("/..", PathError::AboveRoot),
        ("/%2e%2e/", PathError::AboveRoot),
        ("/api/../../admin", PathError::AboveRoot),
        ("/api/%2E%2e/%2e%2E/x", PathError::AboveRoot),
        ("/a\\b", PathError::InvalidByte { byte: b'\\', at: 2 }),
        ("/a\tb", PathError::InvalidByte { byte: b'\t', at: 2 }),
        ("/a b", PathError::InvalidByte { byte: b' ', at: 2 }),
        ("/a#b", PathError::InvalidByte { byte: b'#', at: 2 }),
        ("/a\u{7f}", PathError::InvalidByte { byte: 0x7f, at: 2 }),
        ("/%", PathError::BadEscape { at: 1 }),
        ("/%4", PathError::BadEscape { at: 1 }),
        ("/%zz", PathError::BadEscape { at: 1 }),
    ];
    for (raw, want) in cases {
        assert_eq!(canonicalize_path(raw).as_ref(), Err(want), "{raw:?}");
    }
    assert!(canonicalize_path("/é").is_err());
}

#[test]
fn refuses_paths_over_8_kib() {
    let ok = format!("/{}", "a".repeat(MAX_PATH_BYTES - 1));
    assert!(canonicalize_path(&ok).is_ok());
    let long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
    assert_eq!(
        canonicalize_path(&long),
        Err(PathError::TooLong {
            len: MAX_PATH_BYTES + 1
        })
    );
}

fn matches(pattern: &str, path: &str) -> bool {
    let p = PathPattern::parse(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"));
    p.matches(&canonicalize_path(path).expect("test path is valid"))
}

#[test]
fn matches_segment_wildcards() {
    let cases: &[(&str, &str, bool)] = &[
        ("/api/v4/projects/**", "/api/v4/projects", true),
        ("/api/v4/projects/**", "/api/v4/projects/", true),
        (
            "/api/v4/projects/**",
            "/api/v4/projects/42/repository/branches",
            true,
        ),
        ("/api/v4/projects/**", "/api/v4/projectsx", false),
        ("/api/v4/projects/**", "/api/v4", false),
        ("/api/v4/projects/*", "/api/v4/projects/42", true),
        (
            "/api/v4/projects/*",
            "/api/v4/projects/group%2Fproject",
            true,
        ),
        (
            "/api/v4/projects/*",
            "/api/v4/projects/group/project",
            false,
        ),
        ("/api/v4/projects/*", "/api/v4/projects/", false),
        ("/api/v4/projects/*", "/api/v4/projects", false),
        ("/api/*/x", "/api/v4/x", true),
        ("/api/*/x", "/api/x", false),
        ("/**/raw", "/raw", true),
        ("/**/raw", "/a/b/c/raw", true),
        ("/**/raw", "/a/b/c/raw/x", false),
        ("/a/**/b/**/c", "/a/x/b/y/z/c", true),
        ("/a/**/b/**/c", "/a/b/c", true),
        ("/a/**/b/**/c", "/a/c/b", false),
        ("/**", "/", true),
        ("/**", "/anything/at/all", true),
        ("/", "/", true),
        ("/", "/x", false),
        ("/api/", "/api/", true),
        ("/api/", "/api", false),
        ("/api/v4/%70rojects/*", "/api/v4/projects/1", true),
        ("/api/v4/projects/*", "/api/v4/%70rojects/1", true),
        ("/API/v4", "/api/v4", false),
    ];
    for (pattern, path, want) in cases {
        assert_eq!(matches(pattern, path), *want, "{pattern} vs {path}");
    }
}

#[test]
fn rejects_malformed_path_patterns() {
    let cases: &[(&str, PatternError)] = &[
        ("api/**", PatternError::PathNotAbsolute),
        ("/api/v*", PatternError::PartialPathWildcard),
        ("/api/***", PatternError::PartialPathWildcard),
        ("/api/../x", PatternError::PathDotOrEmpty),
        ("/api/./x", PatternError::PathDotOrEmpty),
        ("/api//x", PatternError::PathDotOrEmpty),
        ("/api/%zz", PatternError::PathEscape),
        ("/api?x=1", PatternError::PathChar { ch: '?' }),
        ("/api#x", PatternError::PathChar { ch: '#' }),
    ];
    for (raw, want) in cases {
        assert_eq!(&PathPattern::parse(raw).unwrap_err(), want, "{raw}");
    }
}

#[test]
fn matches_long_paths_against_many_globstars_quickly() {
    let pattern = PathPattern::parse("/**/a/**/a/**/a/**/b").expect("valid pattern");
    let path = format!("/{}c", "a/".repeat(3000));
    let start = std::time::Instant::now();
    assert!(!pattern.matches(&path));
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
}
