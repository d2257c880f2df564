//! The report: the machine and settings a run used, then one table row per
//! (engine, route) and the errors seen.

use std::fmt::Write as _;
use std::time::Duration;

use crate::load::ErrorTally;
use crate::stats::Summary;

/// One measured route on one engine.
pub struct Row {
    pub engine: &'static str,
    pub route: String,
    pub summary: Summary,
    /// This route's rate divided by the baseline's, on the same server.
    pub ratio: f64,
    pub errors: Vec<(String, ErrorTally)>,
}

/// What the machine is and how busy it was: the figures mean little without
/// them.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".to_string());
    format!(
        "{cores} logical cores ({cpu}), {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// The 1, 5 and 15 minute load averages, if the system reports them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The results table, one line per row, columns aligned.
pub fn table(rows: &[Row]) -> String {
    let route_width = rows
        .iter()
        .map(|r| r.route.len())
        .chain(["route".len()])
        .max()
        .expect("the header is always there");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8}  {:<route_width$}  {:>9}  {:>9}  {:>8}  {:>8}  {:>6}  {:>6}",
        "engine", "route", "requests", "rps", "p50 ms", "p99 ms", "errors", "ratio"
    );
    for row in rows {
        let s = &row.summary;
        let _ = writeln!(
            out,
            "{:<8}  {:<route_width$}  {:>9}  {:>9.0}  {:>8.2}  {:>8.2}  {:>6}  {:>6.2}",
            row.engine,
            row.route,
            s.requests,
            s.rps,
            millis(s.p50),
            millis(s.p99),
            s.errors,
            row.ratio,
        );
    }
    out
}

/// Every error kind of every row, with its count and first sample; empty
/// when there were none.
pub fn errors(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows {
        for (kind, tally) in &row.errors {
            let _ = writeln!(
                out,
                "{} {}: {} × {kind}: {}",
                row.engine, row.route, tally.count, tally.sample
            );
        }
    }
    out
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(route: &str, rps: f64, ratio: f64) -> Row {
        Row {
            engine: "sqlite",
            route: route.to_string(),
            summary: Summary {
                requests: 1234,
                rps,
                p50: Duration::from_micros(1500),
                p99: Duration::from_micros(12_250),
                errors: 0,
            },
            ratio,
            errors: Vec::new(),
        }
    }

    #[test]
    fn table_aligns_rows_under_the_header() {
        let rows = [
            row("GET /healthz", 20000.0, 1.0),
            row("GET /v1/workspaces/{id}", 5000.4, 0.25),
        ];
        let table = table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{table}");
        assert!(lines[0].starts_with("engine    route  "), "{table}");
        assert!(
            lines[2].ends_with("1234       5000      1.50     12.25       0    0.25"),
            "{table}"
        );
    }

    #[test]
    fn errors_name_engine_route_count_and_sample() {
        let mut failing = row("POST /v1/agent-roles", 1.0, 1.0);
        failing.errors.push((
            "status 409".to_string(),
            ErrorTally {
                count: 3,
                sample: "{\"error\":{}}".to_string(),
            },
        ));
        let rows = [row("GET /healthz", 1.0, 1.0), failing];
        assert_eq!(
            errors(&rows),
            "sqlite POST /v1/agent-roles: 3 × status 409: {\"error\":{}}\n"
        );
    }
}
