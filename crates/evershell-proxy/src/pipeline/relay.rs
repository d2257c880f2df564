//! The way back: the upstream's response streamed to the agent through a
//! meter that reads token usage as it passes, and, when the body ends,
//! settles the request's budget reservation and writes its row.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use evershell_caps::Counter;
use evershell_core::Decision;
use http::Response;
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::audit::{Exchange, Outcome};
use crate::body::{BodyEnd, Metered, Observer, ProxyBody};
use crate::budget::{Measured, Reservation, UsageTap};
use crate::forward;
use crate::intercept::Workspace;

/// Writes the row of a forwarded request when its response body ends.
pub(super) struct AllowRow {
    /// Where the row's write runs: the body may be dropped outside any
    /// runtime context.
    pub runtime: tokio::runtime::Handle,
    pub ws: Arc<Workspace>,
    pub outcome: Outcome,
    pub started: Instant,
    pub status: u16,
    /// Request body bytes sent upstream.
    pub sent: Arc<AtomicU64>,
    pub account: Option<Account>,
}

/// The budget side of a forwarded request.
pub(super) struct Account {
    pub reservation: Reservation,
    /// Reads token usage from the response, when a token counter is held
    /// and the response's type carries usage.
    pub tap: Option<UsageTap>,
}

/// The upstream's response for the agent: hop-by-hop fields dropped, the
/// body streamed through a meter that settles and writes the row when it
/// ends.
pub(super) fn relay(
    response: Response<Incoming>,
    mut row: AllowRow,
    idle: Duration,
) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    forward::strip_response(&mut parts.headers);
    if let Some(account) = row.account.as_mut() {
        let counts_tokens = account.reservation.counters().iter().any(|c| c.is_token());
        if counts_tokens {
            account.tap = UsageTap::for_response(&parts.headers);
        }
    }
    let body = Metered::new(body, Arc::new(AtomicU64::new(0)), idle)
        .observe(Box::new(row))
        .boxed();
    Response::from_parts(parts, body)
}

impl Observer for AllowRow {
    fn data(&mut self, data: &[u8]) {
        if let Some(tap) = self.account.as_mut().and_then(|a| a.tap.as_mut()) {
            tap.data(data);
        }
    }

    fn ended(self: Box<Self>, end: BodyEnd, bytes: u64) {
        let AllowRow {
            runtime,
            ws,
            mut outcome,
            started,
            status,
            sent,
            account,
        } = *self;
        let sent = sent.load(Ordering::Relaxed);
        outcome.decision = Decision::Allow;
        outcome.exchange = Some(Exchange {
            status_code: Some(status),
            bytes_in: bytes,
            bytes_out: sent,
            latency: started.elapsed(),
        });
        match end {
            BodyEnd::Complete => {}
            BodyEnd::IdleTimeout => outcome.reason = "idle_timeout".into(),
            BodyEnd::Failed => outcome.reason = "upstream_reset".into(),
            BodyEnd::Dropped => outcome.reason = "agent_closed".into(),
        }

        let persist = account.map(|account| {
            let measured = Measured {
                sent,
                received: bytes,
                usage: account.tap.map(UsageTap::finish).unwrap_or_default(),
                success: (200..300).contains(&status),
            };
            settle(account.reservation, &measured, &mut outcome)
        });
        runtime.spawn(async move {
            let _ = ws.proxy.audit.record(&ws.binding, &outcome).await;
            if let Some(persist) = persist {
                ws.budgets.persist(persist).await;
            }
        });
    }
}

/// Replaces the reservation by what the request used; the row gets the
/// debits and what remains. Returns the `per: workspace` counters to save.
fn settle(
    reservation: Reservation,
    measured: &Measured,
    outcome: &mut Outcome,
) -> Vec<(String, Counter, u64)> {
    let debits: Vec<(Counter, u64)> = reservation
        .counters()
        .into_iter()
        .map(|counter| (counter, measured.amount(counter, reservation.held(counter))))
        .collect();
    let committed = reservation.commit(|counter| {
        debits
            .iter()
            .find(|(c, _)| *c == counter)
            .map_or(0, |(_, amount)| *amount)
    });
    for (counter, amount) in &debits {
        let amount = i64::try_from(*amount).unwrap_or(i64::MAX);
        outcome.debits.insert(counter.as_str().to_owned(), amount);
    }
    tracing::debug!(debits = ?outcome.debits, remaining = ?committed.remaining, "budgets settled");
    outcome.budgets = committed.remaining;
    committed.persist
}
