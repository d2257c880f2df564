//! Budgets: a request's estimated usage is reserved before it leaves, so
//! that concurrent requests never overspend a limit; the reservation is
//! replaced by what the response reports (tokens read from the stream as
//! it passes); `clamp` lowers the request's own cap to what is left.

use std::sync::Arc;

use evershell_caps::Counter;
use evershell_proxy::BudgetCounter;
use http::StatusCode;
use http_body_util::BodyExt;

use crate::support::{body_text, get, post_json, with_caps, MemoryBudgets, World};

const CAPS: &str = r#"
- name: counted
  type: http
  allow:
    - domains: ["allowed.test:{https}"]
      methods: [GET]
      paths: [/v1/**]
  budgets:
    requests: { limit: 10, per: task }
- name: llm
  type: http
  allow:
    - domains: ["other.test:{https}"]
      methods: [POST]
      paths: [/v1/**]
  budgets:
    output_tokens: { limit: 1000, per: workspace, ceiling: clamp }
    input_tokens: { limit: 100000, per: workspace }
    requests: { limit: 100, per: task }
"#;

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("json ({e}): {text}"))
}

fn counter(world: &World, capability: &str, which: Counter) -> BudgetCounter {
    world
        .proxy
        .budget("ws_01")
        .into_iter()
        .find(|c| c.capability == capability && c.counter == which)
        .expect("the counter exists")
}

fn llm_host(world: &World) -> String {
    format!("other.test:{}", world.https_port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_64_parallel_requests_exactly_the_budgeted_10_are_forwarded() {
    let world = World::start_with(with_caps(CAPS)).await;
    let host = format!("allowed.test:{}", world.https_port);
    let sender = world.h2_sender("allowed.test").await;

    // The upstream answers /v1/slow after 300 ms, so every request is in
    // flight while the others reserve.
    let requests = (0..64).map(|_| {
        let mut sender = sender.clone();
        let request = get(&host, "/v1/slow");
        tokio::spawn(async move { sender.send_request(request).await.expect("response") })
    });
    let mut statuses = Vec::new();
    for request in futures_util::future::join_all(requests).await {
        let response = request.expect("task");
        let status = response.status();
        let body = body_text(response).await;
        if status == StatusCode::FORBIDDEN {
            assert_eq!(json(&body)["error"]["reason"], "budget_exceeded:requests");
        }
        statuses.push(status);
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let denied = statuses
        .iter()
        .filter(|s| **s == StatusCode::FORBIDDEN)
        .count();
    assert_eq!((ok, denied), (10, 54));
    assert_eq!(world.upstream.seen().len(), 10);

    let denial = world
        .audit
        .wait_for(|r| r.reason.as_deref() == Some("budget_exceeded:requests"))
        .await;
    assert_eq!(denial.budgets.expect("budgets")["requests"], 0);
    world
        .audit
        .wait_for(|r| r.decision.as_deref() == Some("allow"))
        .await;
    let requests = counter(&world, "counted", Counter::Requests);
    assert_eq!(
        (requests.used, requests.reserved, requests.remaining),
        (10, 0, 0)
    );

    // A new task starts with a fresh allowance.
    world.task.send_replace(Some("task_02".to_owned()));
    let response = world.send_h1("allowed.test", get(&host, "/v1/one")).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_anthropic_response_is_debited_the_tokens_it_reports() {
    let world = World::start_with(with_caps(CAPS)).await;
    let request = serde_json::json!({"model": "m", "max_tokens": 500, "stream": true});
    let response = world
        .send_h1(
            "other.test",
            post_json(&llm_host(&world), "/v1/sse-usage", &request),
        )
        .await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let mut frames = 0;
    let mut text = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame.expect("frame").data_ref() {
            frames += 1;
            text.extend_from_slice(data);
        }
    }
    assert!(frames > 1, "the stream was passed on as it came");
    assert!(String::from_utf8_lossy(&text).contains("\"output_tokens\":15"));

    let row = world
        .audit
        .wait_for(|r| r.decision.as_deref() == Some("allow"))
        .await;
    let debits = row.debits.expect("debits");
    assert_eq!(debits["output_tokens"], 15);
    assert_eq!(debits["input_tokens"], 25);
    assert_eq!(debits["requests"], 1);
    let budgets = row.budgets.expect("budgets");
    assert_eq!(budgets["output_tokens"], 985);
    assert_eq!(budgets["input_tokens"], 100_000 - 25);
    let output = counter(&world, "llm", Counter::OutputTokens);
    assert_eq!((output.used, output.reserved), (15, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_json_response_is_debited_its_usage() {
    let world = World::start_with(with_caps(CAPS)).await;
    let request = serde_json::json!({"model": "m", "max_completion_tokens": 100});
    let response = world
        .send_h2(
            "other.test",
            post_json(&llm_host(&world), "/v1/chat/completions", &request),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json(&body_text(response).await)["usage"]["completion_tokens"],
        34
    );

    let row = world
        .audit
        .wait_for(|r| r.decision.as_deref() == Some("allow"))
        .await;
    let debits = row.debits.expect("debits");
    assert_eq!((debits["input_tokens"], debits["output_tokens"]), (12, 34));
    assert_eq!(row.budgets.expect("budgets")["output_tokens"], 1000 - 34);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clamp_lowers_the_output_cap_to_what_is_left_and_then_denies() {
    let store = MemoryBudgets::with(&[("llm", "output_tokens", 900)]);
    let world = World::start_with({
        let store = store.clone();
        move |https, http| {
            let mut options = with_caps(CAPS)(https, http);
            options.budget_store = Some(store);
            options
        }
    })
    .await;

    let request = serde_json::json!({"model": "m", "max_tokens": 4096, "messages": []});
    let response = world
        .send_h1(
            "other.test",
            post_json(&llm_host(&world), "/v1/echo", &request),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let echo = json(&body_text(response).await);
    assert_eq!(
        echo["body"]["max_tokens"], 100,
        "the upstream got the clamped cap"
    );
    let seen = world.upstream.last_seen();
    assert_eq!(
        seen.headers["content-length"],
        seen.body.len().to_string().as_str()
    );

    let row = world
        .audit
        .wait_for(|r| r.decision.as_deref() == Some("allow"))
        .await;
    let ceilings = row.ceilings.expect("ceilings");
    assert_eq!(ceilings["output_tokens"], "clamped_to_100");
    // The echo reports no usage: the clamped reservation is the debit.
    assert_eq!(row.debits.expect("debits")["output_tokens"], 100);

    let response = world
        .send_h1(
            "other.test",
            post_json(&llm_host(&world), "/v1/echo", &request),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        json(&body_text(response).await)["error"]["reason"],
        "budget_exceeded:output_tokens"
    );
    assert_eq!(world.upstream.seen().len(), 1);
    wait_for_save(&store, 1000).await;
}

async fn wait_for_save(store: &Arc<MemoryBudgets>, used: u64) {
    for _ in 0..200 {
        let saved = store.saves().into_iter().any(|(ws, cap, counter, n)| {
            ws == "ws_01" && cap == "llm" && counter == "output_tokens" && n == used
        });
        if saved {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("usage {used} not saved: {:?}", store.saves());
}
