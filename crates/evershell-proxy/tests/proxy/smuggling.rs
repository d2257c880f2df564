//! Request smuggling shapes are refused before any upstream connection.

use crate::support::World;

async fn refused_before_upstream(world: &World, raw: String) -> String {
    let answer = world.raw_h1(raw.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    world
        .audit
        .wait_for(|r| r.reason.as_deref() == Some("bad_request"))
        .await;
    assert_eq!(
        world.upstream.accepts(),
        0,
        "an upstream connection was opened"
    );
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_with_transfer_encoding_is_refused() {
    let world = World::start().await;
    let host = format!("allowed.test:{}", world.https_port);
    let raw = format!(
        "POST /v1/x HTTP/1.1\r\nHost: {host}\r\nContent-Length: 44\r\n\
         Transfer-Encoding: chunked\r\n\r\n\
         0\r\n\r\nGET /admin HTTP/1.1\r\nHost: {host}\r\n\r\n"
    );
    let answer = refused_before_upstream(&world, raw).await;
    assert!(answer.contains("\"code\":\"bad_request\""), "{answer}");
    assert!(
        !answer.contains("/admin\""),
        "the hidden request must not be served: {answer}"
    );
    assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differing_content_lengths_are_refused() {
    let world = World::start().await;
    let host = format!("allowed.test:{}", world.https_port);
    let raw = format!(
        "POST /v1/x HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc"
    );
    refused_before_upstream(&world, raw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_section_over_64_kib_is_refused() {
    let world = World::start().await;
    let host = format!("allowed.test:{}", world.https_port);
    let padding = "p".repeat(70 * 1024);
    let raw = format!("GET /v1/x HTTP/1.1\r\nHost: {host}\r\nX-Padding: {padding}\r\n\r\n");
    let answer = refused_before_upstream(&world, raw).await;
    assert!(answer.contains("\"code\":\"bad_request\""), "{answer}");
}
