//! The budget stage: before an allowed request is transformed and sent,
//! its estimated usage is reserved against its capability's budgets, all
//! or nothing. A request that does not fit is refused with
//! `budget_exceeded:<counter>`, unless an output-token budget clamps: then
//! the request's own cap is lowered to what is left.

use evershell_caps::{Counter, Decision};
use evershell_core::Phase;
use http::header::CONTENT_LENGTH;
use http::HeaderMap;
use hyper::body::Incoming;

use crate::audit::Outcome;
use crate::authorize;
use crate::body::AgentBody;
use crate::budget::{self, Reservation, TOKEN_BODY_LIMIT};
use crate::intercept::Workspace;
use crate::refusal::Denial;

/// Reserves `decision`'s budgets for the request with `headers` and
/// `body`; `None` when its capability has none.
pub(super) async fn reserve(
    ws: &Workspace,
    decision: &Decision,
    headers: &HeaderMap,
    body: &mut AgentBody<Incoming>,
    outcome: &mut Outcome,
) -> Result<Option<Reservation>, Denial> {
    if decision.budgets.is_empty() {
        return Ok(None);
    }
    if !ws.budgets.ready().await {
        return Err(Denial::BudgetUnavailable);
    }
    let declared = content_length(headers);
    if budget::counts_tokens(&decision.budgets) {
        read_for_tokens(ws, declared, body, outcome).await?;
    }

    let length = if body.is_complete() {
        body.held().len() as u64
    } else {
        declared.unwrap_or(0)
    };
    let whole = body.is_complete().then(|| body.held());
    if decision
        .budgets
        .iter()
        .any(|b| b.counter == Counter::OutputTokens)
    {
        budget::checked_output_cap(whole).map_err(|reason| Denial::Budget {
            reason: reason.to_owned(),
        })?;
    }
    let wants = budget::wants(&decision.budgets, length, whole);
    let task = ws.binding.current_task();
    let (reservation, clamp) = ws
        .budgets
        .ledger
        .reserve(task.as_deref(), wants, true)
        .map_err(|exceeded| {
            outcome.budgets = exceeded.remaining;
            exceeded_denial(exceeded.counter)
        })?;

    if let Some(clamp) = clamp {
        // The reservation is dropped, and so released, on the way out.
        let Some(clamped) = budget::clamp_output_cap(body.held(), clamp.to) else {
            return Err(exceeded_denial(clamp.counter));
        };
        body.replace(clamped);
        let note = format!("clamped_to_{}", clamp.to);
        outcome
            .ceilings
            .insert(clamp.counter.as_str().to_owned(), note);
    }
    Ok(Some(reservation))
}

/// Reads the whole body, at most [`TOKEN_BODY_LIMIT`], for its token cap.
async fn read_for_tokens(
    ws: &Workspace,
    declared: Option<u64>,
    body: &mut AgentBody<Incoming>,
    outcome: &mut Outcome,
) -> Result<(), Denial> {
    outcome.phase = Phase::RequestBody;
    let too_large = Denial::Body {
        reason: "body_too_large",
    };
    if declared.is_some_and(|n| n > TOKEN_BODY_LIMIT as u64) {
        return Err(too_large);
    }
    let idle = ws.proxy.config.idle_timeout;
    body.read_ahead(TOKEN_BODY_LIMIT, idle)
        .await
        .map_err(authorize::unreadable)?;
    if !body.is_complete() || body.held().len() > TOKEN_BODY_LIMIT {
        return Err(too_large);
    }
    Ok(())
}

fn exceeded_denial(counter: Counter) -> Denial {
    Denial::Budget {
        reason: format!("budget_exceeded:{counter}"),
    }
}

/// The declared body length, when there is exactly one valid one.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()?.parse().ok()
}
