use std::sync::Barrier;

use super::*;

fn ledger(budgets: &str) -> Arc<Ledger> {
    let yaml = format!(
        "- name: llm
  type: http
  allow:
    - domains: [api.example.com]
      methods: [POST]
  budgets:
{budgets}"
    );
    let caps = evershell_caps::parse(&yaml).expect("caps parse");
    let ledger = Arc::new(Ledger::default());
    ledger.configure(&Policy::compile(Vec::new(), caps));
    ledger
}

fn want(counter: Counter, amount: u64) -> Want {
    Want {
        capability: "llm".into(),
        counter,
        amount,
    }
}

fn counter(ledger: &Ledger, task: Option<&str>, which: Counter) -> BudgetCounter {
    ledger
        .snapshot(task)
        .into_iter()
        .find(|c| c.counter == which)
        .expect("counter exists")
}

#[test]
fn parallel_reservations_never_add_up_past_the_limit() {
    let ledger = ledger("    requests: { limit: 10, per: task }");
    let barrier = Arc::new(Barrier::new(64));
    let threads: Vec<_> = (0..64)
        .map(|_| {
            let (ledger, barrier) = (ledger.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                ledger.reserve(Some("t1"), vec![want(Counter::Requests, 1)], false)
            })
        })
        .collect();
    let results: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    let held: Vec<_> = results.into_iter().filter_map(Result::ok).collect();
    assert_eq!(held.len(), 10);
    assert_eq!(counter(&ledger, Some("t1"), Counter::Requests).reserved, 10);

    for (reservation, _) in held {
        reservation.commit(|_| 1);
    }
    let requests = counter(&ledger, Some("t1"), Counter::Requests);
    assert_eq!(
        (requests.used, requests.reserved, requests.remaining),
        (10, 0, 0)
    );
}

#[test]
fn an_uncommitted_reservation_gives_its_allowance_back() {
    let ledger = ledger("    output_tokens: { limit: 100, per: workspace }");
    let (reservation, _) = ledger
        .reserve(None, vec![want(Counter::OutputTokens, 80)], false)
        .expect("fits");
    let refused = ledger.reserve(None, vec![want(Counter::OutputTokens, 30)], false);
    assert_eq!(refused.expect_err("over").counter, Counter::OutputTokens);
    drop(reservation);
    assert!(ledger
        .reserve(None, vec![want(Counter::OutputTokens, 30)], false)
        .is_ok());
}

#[test]
fn commits_debit_the_actual_usage_and_report_what_remains() {
    let ledger = ledger(
        "    output_tokens: { limit: 100, per: workspace }
    requests: { limit: 5, per: task }",
    );
    let wants = vec![want(Counter::Requests, 1), want(Counter::OutputTokens, 60)];
    let (reservation, _) = ledger.reserve(Some("t1"), wants, false).expect("fits");
    let committed = reservation.commit(|c| match c {
        Counter::OutputTokens => 15,
        _ => 1,
    });
    assert_eq!(committed.remaining["output_tokens"], 85);
    assert_eq!(committed.remaining["requests"], 4);
    assert_eq!(
        committed.persist,
        [("llm".to_owned(), Counter::OutputTokens, 15)]
    );
}

#[test]
fn a_counter_at_its_limit_refuses_even_a_zero_estimate() {
    let ledger = ledger("    response_bytes: { limit: 10, per: workspace }");
    let (reservation, _) = ledger
        .reserve(None, vec![want(Counter::ResponseBytes, 0)], false)
        .expect("fits");
    reservation.commit(|_| 12);
    let refused = ledger.reserve(None, vec![want(Counter::ResponseBytes, 0)], false);
    let exceeded = refused.expect_err("at the limit");
    assert_eq!(exceeded.remaining["response_bytes"], 0);
}

#[test]
fn clamp_lowers_an_output_estimate_to_what_is_left_but_never_to_zero() {
    let ledger = ledger("    output_tokens: { limit: 100, per: task, ceiling: clamp }");
    let (first, clamp) = ledger
        .reserve(Some("t"), vec![want(Counter::OutputTokens, 70)], true)
        .expect("fits");
    assert_eq!(clamp, None);
    let (_second, clamp) = ledger
        .reserve(Some("t"), vec![want(Counter::OutputTokens, 70)], true)
        .expect("clamped");
    assert_eq!(
        clamp,
        Some(Clamp {
            counter: Counter::OutputTokens,
            to: 30
        })
    );
    assert!(ledger
        .reserve(Some("t"), vec![want(Counter::OutputTokens, 1)], true)
        .is_err());
    drop(first);
}

#[test]
fn deny_ceilings_are_not_clamped() {
    let ledger = ledger("    output_tokens: { limit: 100, per: task }");
    let refused = ledger.reserve(Some("t"), vec![want(Counter::OutputTokens, 170)], true);
    assert!(refused.is_err());
}

#[test]
fn task_counters_restart_with_each_task_and_workspace_counters_do_not() {
    let ledger = ledger(
        "    requests: { limit: 2, per: task }
    request_bytes: { limit: 1000, per: workspace }",
    );
    let wants = || vec![want(Counter::Requests, 1), want(Counter::RequestBytes, 10)];
    let actual = |c| if c == Counter::Requests { 1 } else { 10 };
    for _ in 0..2 {
        let (reservation, _) = ledger.reserve(Some("t1"), wants(), false).expect("fits");
        reservation.commit(actual);
    }
    assert!(ledger.reserve(Some("t1"), wants(), false).is_err());

    let (reservation, _) = ledger
        .reserve(Some("t2"), wants(), false)
        .expect("new task");
    reservation.commit(actual);
    assert_eq!(counter(&ledger, Some("t2"), Counter::Requests).used, 1);
    assert_eq!(counter(&ledger, Some("t2"), Counter::RequestBytes).used, 30);
}

#[test]
fn a_request_that_outlives_its_task_is_not_debited_to_the_next() {
    let ledger = ledger("    requests: { limit: 5, per: task }");
    let (reservation, _) = ledger
        .reserve(Some("t1"), vec![want(Counter::Requests, 1)], false)
        .expect("fits");
    assert_eq!(counter(&ledger, Some("t2"), Counter::Requests).reserved, 1);
    reservation.commit(|_| 1);
    let requests = counter(&ledger, Some("t2"), Counter::Requests);
    assert_eq!((requests.used, requests.reserved), (0, 0));
}

#[test]
fn stored_usage_is_restored_for_workspace_counters_only() {
    let ledger = ledger(
        "    requests: { limit: 5, per: task }
    output_tokens: { limit: 100, per: workspace }",
    );
    ledger.restore(&[
        ("llm".into(), "requests".into(), 4),
        ("llm".into(), "output_tokens".into(), 90),
        ("llm".into(), "bogus".into(), 1),
        ("gone".into(), "output_tokens".into(), 1),
    ]);
    assert_eq!(counter(&ledger, None, Counter::Requests).used, 0);
    assert_eq!(counter(&ledger, None, Counter::OutputTokens).remaining, 10);
}
