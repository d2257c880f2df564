//! Plain-HTTP listeners: the `Host` header decides, and only rules with
//! `allow_insecure` admit.

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::support::{body_text, get, World};

async fn send(world: &World, host: &str) -> (http::StatusCode, String) {
    let tcp = TcpStream::connect(("127.0.0.1", world.http_port))
        .await
        .expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let response = sender
        .send_request(get(host, "/status"))
        .await
        .expect("response");
    let status = response.status();
    (status, body_text(response).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_reaches_hosts_whose_rule_allows_insecure() {
    let world = World::start().await;
    let host = format!("plain.test:{}", world.http_port);
    let (status, body) = send(&world, &host).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"target\":\"/status\""), "{body}");
    let row = world
        .audit
        .wait_for(|r| r.decision.as_deref() == Some("allow"))
        .await;
    assert_eq!(row.destination, Some(host));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_denied_where_the_rule_does_not_allow_insecure() {
    let world = World::start().await;
    let host = format!("secure.test:{}", world.http_port);
    let (status, body) = send(&world, &host).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("insecure_not_allowed"), "{body}");

    let (status, body) = send(&world, "127.0.0.2").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(world.upstream.accepts(), 0);
}
