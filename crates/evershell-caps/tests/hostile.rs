//! Hostile input: every case is refused (or decided) with a clear answer
//! in bounded time and memory, and nothing overflows a stack.

use std::time::{Duration, Instant};

use evershell_caps::{parse, Policy, RequestFacts, Scheme, MAX_DOCUMENT_BYTES};

/// Generous for a debug build on a shared two-core machine.
const BOUND: Duration = Duration::from_secs(2);

/// Runs `f`, asserting it finishes within [`BOUND`].
fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    assert!(took < BOUND, "{what} took {took:?}");
    out
}

fn first_message(yaml: &str) -> String {
    match parse(yaml) {
        Ok(_) => panic!("hostile document parsed"),
        Err(e) => e.0[0].message.clone(),
    }
}

fn rule_with_match(expr: &str) -> String {
    format!(
        "- name: c\n  domains: [a.com]\n  methods: [GET]\n  match: '{}'\n",
        expr.replace('\'', "''")
    )
}

#[test]
fn rejects_a_ten_thousand_deep_cel_expression_on_size_and_depth() {
    let deep = format!("{}true{}", "(".repeat(10_000), ")".repeat(10_000));
    let msg = timed("10 000-deep match", || {
        first_message(&rule_with_match(&deep))
    });
    assert!(msg.contains("over the 4 KiB limit"), "{msg}");

    // Within 4 KiB, the depth count refuses it before any parser runs.
    let deep = format!("{}true{}", "(".repeat(2_000), ")".repeat(2_000));
    let msg = timed("2 000-deep match", || {
        first_message(&rule_with_match(&deep))
    });
    assert!(msg.contains("deeper than 32 levels"), "{msg}");

    let unary = format!("{}true", "!".repeat(4_000));
    let msg = timed("4 000 prefix operators", || {
        first_message(&rule_with_match(&unary))
    });
    assert!(msg.contains("deeper than 32 levels"), "{msg}");

    let ternary = format!("{}true", "true ? true : ".repeat(250));
    let msg = timed("250 nested conditionals", || {
        first_message(&rule_with_match(&ternary))
    });
    assert!(msg.contains("deeper than 32 levels"), "{msg}");
}

#[test]
fn rejects_long_chains_that_are_not_brackets_by_tree_depth() {
    let cases = [
        format!("request.path{} == \"\"", " + \"a\"".repeat(600)),
        format!("request.query{} == 1", ".a".repeat(1_300)),
        format!("{} 1 == 1", "1 +".repeat(1_300)),
    ];
    for expr in cases {
        assert!(expr.len() <= 4096, "{}", expr.len());
        let msg = timed("chain", || first_message(&rule_with_match(&expr)));
        assert!(msg.contains("tree is deeper than 64"), "{msg}");
    }
}

#[test]
fn rejects_a_hundred_megabyte_document_before_parsing_it() {
    let huge = format!(
        "- name: a\n  domains: [a.com]\n  methods: [GET]\n#{}\n",
        "x".repeat(100 * 1024 * 1024)
    );
    let msg = timed("100 MB document", || first_message(&huge));
    assert!(msg.contains("over the 1 MiB limit"), "{msg}");
    assert!(MAX_DOCUMENT_BYTES < huge.len());
}

#[test]
fn rejects_a_yaml_alias_bomb_at_its_first_anchor() {
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let mut prev = 'a';
    for name in 'b'..='j' {
        let refs = vec![format!("*{prev}"); 9].join(",");
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
        prev = name;
    }
    let msg = timed("alias bomb", || first_message(&bomb));
    assert!(msg.contains("anchors (&name) are not allowed"), "{msg}");
}

#[test]
fn rewrites_with_a_catastrophic_backtracking_pattern_in_linear_time() {
    let yaml = "- name: c\n  domains: [a.com]\n  methods: [GET]\n  transforms:\n    - name: t\n      rewrite_path: {from: \"(a+)+$\", to: /x}\n";
    let caps = parse(yaml).expect("(a+)+$ is a valid, small pattern");
    let evershell_caps::TransformAction::Rewrite(r) = &caps[0].transforms[0].action else {
        panic!("a rewrite transform");
    };
    let rw = r.rewrite_path.as_ref().expect("rewrite_path");
    let input = format!("/{}b", "a".repeat(100_000));
    let out = timed("(a+)+$ on 100 000 characters", || rw.apply(&input));
    assert_eq!(out, input, "no match: the path is unchanged");
    assert_eq!(rw.apply("/aaaa"), "//x");
}

#[test]
fn rejects_rewrite_patterns_over_the_size_limits() {
    let too_big = "- name: c\n  domains: [a.com]\n  methods: [GET]\n  transforms:\n    - name: t\n      rewrite_path: {from: \"(\\\\w{100}){100}\", to: /x}\n";
    let msg = timed("huge program", || first_message(too_big));
    assert!(msg.contains("256 KiB program size limit"), "{msg}");

    let long = too_big.replace("(\\\\w{100}){100}", &"a".repeat(2_000));
    let msg = timed("long pattern", || first_message(&long));
    assert!(msg.contains("over the 1 KiB limit"), "{msg}");
}

#[test]
fn decides_hostile_bodies_in_bounded_time() {
    let yaml = "- name: c\n  domains: [a.com]\n  methods: [POST]\n  match: 'request.body.items.exists(i, i == 99999)'\n";
    let p = Policy::compile(Vec::new(), parse(yaml).expect("valid"));
    let facts = RequestFacts::new("POST", Scheme::Https, "a.com", 443, "/");

    // Nesting past serde_json's limit is "not JSON": request.body is null.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let d = timed("deep body", || p.decide_with_body(&facts, deep.as_bytes()));
    assert!(d.reason.starts_with("cel_error: "), "{}", d.reason);

    // A large array is scanned once.
    let items: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
    let body = format!("{{\"items\":[{}]}}", items.join(","));
    let d = timed("100 000 items", || {
        p.decide_with_body(&facts, body.as_bytes())
    });
    assert!(d.allowed, "{}", d.reason);
}

#[test]
fn decides_hostile_heads_in_bounded_time() {
    let yaml = "- name: c\n  domains: [\"**.a.com\"]\n  methods: [GET]\n  paths: [/x/**/y]\n  match: 'request.query.q.matches(\"^(a+)+$\")'\n";
    let p = Policy::compile(Vec::new(), parse(yaml).expect("valid"));
    let long_host = format!("{}a.com", "b.".repeat(50_000));
    let deep_path = format!("/x{}", "/z".repeat(4_000));
    let dots = format!("/x{}", "/..".repeat(2_000));
    let query = format!("/x/y?q={}b", "a".repeat(100_000));
    let cases = [
        ("GET", long_host.as_str(), "/x/y", "invalid_host"),
        ("GET", "c.a.com", deep_path.as_str(), "path_not_allowed"),
        ("GET", "c.a.com", dots.as_str(), "invalid_path"),
        ("GET", "c.a.com", query.as_str(), "match_not_satisfied"),
    ];
    for (method, host, target, reason) in cases {
        let facts = RequestFacts::new(method, Scheme::Https, host, 443, target);
        let d = timed(reason, || p.decide(&facts));
        assert_eq!(d.reason, reason);
    }
}

#[test]
fn evaluates_the_deepest_accepted_expressions_on_a_bounded_stack() {
    // At the limits: 32 brackets, and expression trees 64 deep.
    let chain = " + \"a\"".repeat(28);
    let shapes = [
        format!(
            "{}request.path{chain} != \"\"{}",
            "(".repeat(32),
            ")".repeat(32)
        ),
        format!("request.path{} != \"\"", " + \"a\"".repeat(61)),
        format!(
            "{}request.path{}.size() > 0",
            "[".repeat(31),
            "]".repeat(31)
        ),
        format!(
            "request.query_all.all(k, {}k{}{} != \"\")",
            "(".repeat(30),
            " + \"a\"".repeat(50),
            ")".repeat(30)
        ),
    ];
    // Release frames are small; debug frames of the CEL evaluator are about
    // fifteen times larger.
    let stack = if cfg!(debug_assertions) {
        16 << 20
    } else {
        256 << 10
    };
    for expr in shapes {
        let yaml = rule_with_match(&expr);
        let caps = parse(&yaml).unwrap_or_else(|e| panic!("{e}\n{expr}"));
        let p = Policy::compile(Vec::new(), caps);
        let target = "/p?k=v";
        let d = std::thread::Builder::new()
            .stack_size(stack)
            .spawn(move || {
                p.decide(&RequestFacts::new(
                    "GET",
                    Scheme::Https,
                    "a.com",
                    443,
                    target,
                ))
            })
            .expect("spawn")
            .join()
            .expect("no stack overflow");
        assert!(
            d.allowed || d.reason == "match_not_satisfied",
            "{}: {expr}",
            d.reason
        );
    }
}

#[test]
fn rejects_four_kilobytes_of_garbage_quickly() {
    let cases = [
        ")".repeat(4_000),
        "]}".repeat(2_000),
        "a ? ".repeat(1_000),
        "1 == == ".repeat(500),
        "\"unterminated ".repeat(290),
        "'''".repeat(1_300),
        "request.".repeat(500),
        "f(,".repeat(1_300),
        "{:".repeat(2_000),
    ];
    for expr in cases {
        assert!(expr.len() <= 4096);
        let msg = timed("garbage", || first_message(&rule_with_match(&expr)));
        assert!(msg.starts_with("invalid CEL expression: "), "{msg}");
    }
}
