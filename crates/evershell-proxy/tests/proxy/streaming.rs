//! Responses stream: server-sent events reach the agent one by one, and a
//! silent upstream is cut (and recorded) after the idle timeout.

use std::time::Duration;

use http_body_util::BodyExt;
use tokio::time::Instant;

use crate::support::{default_options, get, World};

async fn arrival_times(
    response: hyper::Response<hyper::body::Incoming>,
) -> (Vec<Duration>, Duration) {
    let start = Instant::now();
    let mut body = response.into_body();
    let mut arrivals = Vec::new();
    while let Some(frame) = body.frame().await {
        if frame
            .expect("frame")
            .data_ref()
            .is_some_and(|d| !d.is_empty())
        {
            arrivals.push(start.elapsed());
        }
    }
    (arrivals, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_reach_the_agent_one_by_one_over_both_protocols() {
    let world = World::start().await;
    let host = format!("allowed.test:{}", world.https_port);
    for http2 in [false, true] {
        let request = get(&host, "/events");
        let response = if http2 {
            world.send_h2("allowed.test", request).await
        } else {
            world.send_h1("allowed.test", request).await
        };
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let (arrivals, end) = arrival_times(response).await;
        assert_eq!(
            arrivals.len(),
            3,
            "one frame per event (h2: {http2}): {arrivals:?}"
        );
        assert!(
            arrivals[0] < Duration::from_millis(150),
            "first event late: {arrivals:?}"
        );
        assert!(
            arrivals[1] >= Duration::from_millis(200),
            "events bunched: {arrivals:?}"
        );
        assert!(end >= Duration::from_millis(550), "{end:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_upstream_is_cut_after_the_idle_timeout_and_recorded() {
    let world = World::start_with(|https, http| {
        let mut options = default_options(https, http);
        options.idle_timeout = Duration::from_millis(300);
        options
    })
    .await;
    let host = format!("allowed.test:{}", world.https_port);
    let response = world.send_h1("allowed.test", get(&host, "/stall")).await;
    let started = Instant::now();
    let collected =
        tokio::time::timeout(Duration::from_secs(5), response.into_body().collect()).await;
    let outcome = collected.expect("the proxy must end the body itself");
    assert!(
        outcome.is_err(),
        "a cut stream must look broken, not complete"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    let row = world
        .audit
        .wait_for(|r| r.reason.as_deref() == Some("idle_timeout"))
        .await;
    assert_eq!(row.decision.as_deref(), Some("allow"));
    assert_eq!(row.bytes_in, Some(1));
}
