//! Decision time over a generated 1 000-rule policy across 200 hosts:
//! `Policy::decide` (host index) next to a linear scan over the same rules
//! built from the public matching primitives, without and with a CEL
//! predicate on every rule.
//!
//! Criterion measures each variant; afterwards the p50 of single
//! decisions over a mixed request set is printed with the ratio.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use evershell_caps::{
    canonicalize_path, normalize_host, parse, CelVars, Method, Policy, RequestFacts, Scheme,
};

const HOSTS: usize = 200;
const RULES: usize = 1_000;
const REQUESTS: usize = 1_000;

/// `RULES` rules, `RULES / HOSTS` per host, each with its own method and
/// path family; with `cel`, each also needs `?team=t<i>`.
fn policy_yaml(cel: bool) -> String {
    let mut out = String::from("- name: bench\n  type: http\n  allow:\n");
    for i in 0..RULES {
        let method = ["GET", "POST", "PUT", "DELETE", "PATCH"][i % 5];
        out.push_str(&format!(
            "    - name: r{i}\n      domains: [svc{}.bench.example]\n      methods: [{method}]\n      paths: [/api/v{i}/items/*, /api/v{i}/items/*/sub/**]\n",
            i % HOSTS
        ));
        if cel {
            out.push_str(&format!("      match: 'request.query.team == \"t{i}\"'\n"));
        }
    }
    out
}

/// A deterministic mix: most requests hit a rule, some miss on path or
/// host.
fn requests() -> Vec<(String, String, String)> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..REQUESTS)
        .map(|_| {
            let i = (next() % RULES as u64) as usize;
            let method = ["GET", "POST", "PUT", "DELETE", "PATCH"][i % 5].to_owned();
            let host = match next() % 10 {
                0 => "unknown.bench.example".to_owned(),
                _ => format!("svc{}.bench.example", i % HOSTS),
            };
            let target = match next() % 10 {
                0 => format!("/api/v{i}/other?team=t{i}"),
                _ => format!("/api/v{i}/items/{}/sub/x?team=t{i}", next() % 1000),
            };
            (method, host, target)
        })
        .collect()
}

/// The baseline: every rule of every capability in document order, with
/// the same primitives the policy uses; the first admitting rule wins.
fn linear_scan(p: &Policy, facts: &RequestFacts<'_>) -> Option<(usize, usize)> {
    let (host, _) = normalize_host(facts.host).ok()?;
    let raw_path = facts
        .target
        .split_once('?')
        .map_or(facts.target, |(p, _)| p);
    let path = canonicalize_path(raw_path).ok()?;
    let method = Method::parse(facts.method)?;
    let mut vars: Option<CelVars> = None;
    for (ci, cap) in p.capabilities().iter().enumerate() {
        for (ri, rule) in cap.allow.iter().enumerate() {
            let host_ok = rule
                .domains
                .iter()
                .any(|d| d.matches_host(&host) && d.admits_port(facts.port, true));
            let head_ok = host_ok
                && rule.methods.contains(&method)
                && (rule.paths.is_empty() || rule.paths.iter().any(|pp| pp.matches(&path)));
            if !head_ok {
                continue;
            }
            let admitted = match &rule.match_expr {
                None => true,
                Some(expr) => {
                    if vars.is_none() {
                        vars = Some(CelVars::new(facts, None).ok()?);
                    }
                    let vars = vars.as_ref().expect("set just above");
                    expr.evaluate(vars) == Ok(true)
                }
            };
            if admitted {
                return Some((ci, ri));
            }
        }
    }
    None
}

fn facts<'a>(r: &'a (String, String, String)) -> RequestFacts<'a> {
    RequestFacts::new(&r.0, Scheme::Https, &r.1, 443, &r.2)
}

/// The median time of one call of `f` over every request, each timed over
/// a small batch to rise above the clock's resolution.
fn p50(reqs: &[(String, String, String)], f: impl Fn(&RequestFacts<'_>) -> bool) -> Duration {
    const BATCH: u32 = 16;
    let mut samples: Vec<Duration> = Vec::with_capacity(reqs.len() * 3);
    for _round in 0..3 {
        for r in reqs {
            let facts = facts(r);
            let start = Instant::now();
            for _ in 0..BATCH {
                black_box(f(black_box(&facts)));
            }
            samples.push(start.elapsed() / BATCH);
        }
    }
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn main() {
    let reqs = requests();
    let plain = Policy::compile(
        Vec::new(),
        parse(&policy_yaml(false)).expect("bench policy"),
    );
    let cel = Policy::compile(Vec::new(), parse(&policy_yaml(true)).expect("bench policy"));

    // Both implementations agree on every request.
    for r in &reqs {
        for p in [&plain, &cel] {
            let d = p.decide(&facts(r));
            assert_eq!(d.allowed, linear_scan(p, &facts(r)).is_some(), "{r:?}");
        }
    }
    let admitted = reqs
        .iter()
        .filter(|r| plain.decide(&facts(r)).allowed)
        .count();

    let mut c = Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .configure_from_args();
    for (name, p) in [("host+method+path", &plain), ("with CEL", &cel)] {
        let mut group = c.benchmark_group(name);
        group.bench_function("decide", |b| {
            b.iter(|| reqs.iter().filter(|r| p.decide(&facts(r)).allowed).count())
        });
        group.bench_function("linear scan", |b| {
            b.iter(|| {
                reqs.iter()
                    .filter(|r| linear_scan(p, &facts(r)).is_some())
                    .count()
            })
        });
        group.finish();
    }
    c.final_summary();

    println!();
    println!("{RULES} rules, {HOSTS} hosts, {REQUESTS} requests ({admitted} admitted)");
    for (name, p) in [("host+method+path", &plain), ("with CEL", &cel)] {
        let indexed = p50(&reqs, |f| p.decide(f).allowed);
        let scan = p50(&reqs, |f| linear_scan(p, f).is_some());
        println!(
            "{name:>18}: decide p50 {indexed:>9.2?}   linear scan p50 {scan:>9.2?}   ratio {:.1}x",
            scan.as_secs_f64() / indexed.as_secs_f64()
        );
    }
}
