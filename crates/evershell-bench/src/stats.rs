//! A summary is what a table row shows of a load run: how many requests
//! ended in the window, their rate, and latency percentiles.

use std::time::Duration;

use crate::load::Outcome;

/// The figures of one load run.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub requests: u64,
    /// Requests per second over the measured window.
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub errors: u64,
}

impl Summary {
    /// Summarises `outcome`, measured over `window`.
    pub fn of(outcome: &Outcome, window: Duration) -> Summary {
        let mut latencies = outcome.latencies.clone();
        latencies.sort_unstable();
        let requests = latencies.len() as u64;
        Summary {
            requests,
            rps: requests as f64 / window.as_secs_f64(),
            p50: percentile(&latencies, 50.0),
            p99: percentile(&latencies, 99.0),
            errors: outcome.error_count(),
        }
    }
}

/// The nearest-rank percentile `p` (0 < p ≤ 100) of `sorted`: the smallest
/// value that at least `p` percent of the values do not exceed. Zero for an
/// empty slice.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::ErrorTally;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 50.0), ms(50));
        assert_eq!(percentile(&sorted, 99.0), ms(99));
        assert_eq!(percentile(&sorted, 100.0), ms(100));

        let few = [ms(1), ms(2), ms(3)];
        assert_eq!(percentile(&few, 50.0), ms(2));
        assert_eq!(percentile(&few, 99.0), ms(3));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }

    #[test]
    fn summary_counts_every_request_and_the_errors_among_them() {
        let mut outcome = Outcome {
            latencies: vec![ms(4), ms(1), ms(3), ms(2)],
            ..Outcome::default()
        };
        outcome.errors.insert(
            "status 409".to_string(),
            ErrorTally {
                count: 1,
                sample: String::new(),
            },
        );
        let summary = Summary::of(&outcome, Duration::from_secs(2));
        assert_eq!(summary.requests, 4);
        assert_eq!(summary.rps, 2.0);
        assert_eq!(summary.p50, ms(2));
        assert_eq!(summary.p99, ms(4));
        assert_eq!(summary.errors, 1);
    }
}
