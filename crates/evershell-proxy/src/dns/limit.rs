//! Rate limiting of DNS denial rows, per workspace: the first
//! [`ROWS_PER_NAME`] denials of a name in a [`WINDOW`] get a row each; the
//! rest are counted and reported as one aggregated row when the window
//! closes, so that a lookup storm cannot flood the audit store and nothing
//! goes unrecorded.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Rows per name and window before aggregation.
pub(crate) const ROWS_PER_NAME: u32 = 10;

/// The aggregation window.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// Names tracked at once; denials of further names are aggregated under
/// the empty name until windows close.
const MAX_NAMES: usize = 4096;

/// Per-name windows of one workspace.
#[derive(Debug, Default)]
pub(crate) struct AuditLimiter {
    windows: Mutex<HashMap<String, Window>>,
}

#[derive(Debug)]
struct Window {
    opened: Instant,
    recorded: u32,
    suppressed: u64,
    reason: &'static str,
}

/// Whether a denial gets its own row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Record,
    Suppress,
}

/// An aggregated row: `suppressed` denials of `name` without a row of
/// their own; the last one's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Summary {
    pub name: String,
    pub reason: &'static str,
    pub suppressed: u64,
}

impl AuditLimiter {
    /// Counts a denial of `name` at `now`. A window of `name` that has
    /// closed is returned as a summary (when it suppressed anything) and a
    /// new one opens.
    pub(crate) fn admit(
        &self,
        name: &str,
        reason: &'static str,
        now: Instant,
    ) -> (Admission, Option<Summary>) {
        let mut windows = self.lock();
        let key = if windows.len() >= MAX_NAMES && !windows.contains_key(name) {
            ""
        } else {
            name
        };

        let mut summary = None;
        if let Some(window) = windows.get(key) {
            if now.duration_since(window.opened) >= WINDOW {
                let closed = windows.remove(key).expect("window was just found");
                summary = closed.summary(key);
            }
        }

        let window = windows.entry(key.to_owned()).or_insert_with(|| Window {
            opened: now,
            recorded: 0,
            suppressed: 0,
            reason,
        });
        window.reason = reason;
        let admission = if key == name && window.recorded < ROWS_PER_NAME {
            window.recorded += 1;
            Admission::Record
        } else {
            window.suppressed += 1;
            Admission::Suppress
        };
        (admission, summary)
    }

    /// Closes every window older than [`WINDOW`] at `now` and returns the
    /// summaries of those that suppressed rows.
    pub(crate) fn close_expired(&self, now: Instant) -> Vec<Summary> {
        let mut windows = self.lock();
        let expired: Vec<String> = windows
            .iter()
            .filter(|(_, w)| now.duration_since(w.opened) >= WINDOW)
            .map(|(name, _)| name.clone())
            .collect();
        expired
            .into_iter()
            .filter_map(|name| {
                let window = windows.remove(&name)?;
                window.summary(&name)
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Window>> {
        // Every critical section leaves the map consistent.
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Window {
    fn summary(&self, name: &str) -> Option<Summary> {
        (self.suppressed > 0).then(|| Summary {
            name: name.to_owned(),
            reason: self.reason,
            suppressed: self.suppressed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_ten_denials_of_a_name_per_minute_get_rows_and_the_rest_are_summarised() {
        let limiter = AuditLimiter::default();
        let start = Instant::now();
        let admissions: Vec<_> = (0..25)
            .map(|_| limiter.admit("leak.example", "host_not_allowed", start).0)
            .collect();
        assert_eq!(
            admissions
                .iter()
                .filter(|a| **a == Admission::Record)
                .count(),
            10
        );
        assert_eq!(
            limiter.admit("other.example", "host_not_allowed", start).0,
            Admission::Record
        );

        let later = start + WINDOW;
        let (admission, summary) = limiter.admit("leak.example", "host_not_allowed", later);
        assert_eq!(admission, Admission::Record);
        let summary = summary.expect("the closed window suppressed rows");
        assert_eq!(summary.suppressed, 15);
        assert_eq!(
            limiter.close_expired(later),
            Vec::new(),
            "other.example suppressed nothing"
        );
    }

    #[test]
    fn closing_expired_windows_reports_what_they_suppressed() {
        let limiter = AuditLimiter::default();
        let start = Instant::now();
        for _ in 0..12 {
            limiter.admit("storm.example", "query_type_refused", start);
        }
        assert!(limiter.close_expired(start + WINDOW / 2).is_empty());
        let summaries = limiter.close_expired(start + WINDOW);
        assert_eq!(
            summaries,
            vec![Summary {
                name: "storm.example".into(),
                reason: "query_type_refused",
                suppressed: 2,
            }]
        );
    }
}
