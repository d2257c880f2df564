//! The connection-level gate: the ClientHello is read first, and a name no
//! rule could admit never gets a certificate.

use crate::support::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_no_rule_admits_is_refused_at_the_handshake_and_recorded() {
    let world = World::start().await;
    let url = world.url("denied.test", "/v1/anything");
    let (code, _, stderr) = world.curl("denied.test", &[&url]).await;
    assert_ne!(code, 0, "the handshake must fail: {stderr}");
    assert!(
        stderr.contains("alert"),
        "an alert, not a silent close: {stderr}"
    );

    let row = world
        .audit
        .wait_for(|r| r.reason.as_deref() == Some("host_not_allowed"))
        .await;
    assert_eq!(row.decision.as_deref(), Some("deny"));
    assert_eq!(row.phase.as_deref(), Some("request_headers"));
    assert_eq!(row.policy_type.as_deref(), Some("http"));
    assert_eq!(
        row.destination,
        Some(format!("denied.test:{}", world.https_port))
    );
    assert_eq!(world.upstream.accepts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_hello_without_a_server_name_is_refused() {
    let world = World::start().await;
    let refused = world.connect(None, &[b"http/1.1"]).await;
    assert!(refused.is_err(), "a handshake without SNI must fail");
    let row = world
        .audit
        .wait_for(|r| r.reason.as_deref() == Some("sni_missing"))
        .await;
    assert_eq!(row.decision.as_deref(), Some("deny"));
    assert_eq!(row.destination, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leaf_for_an_admitted_name_offers_h2_and_http11() {
    let world = World::start().await;
    let h2 = world
        .connect(Some("allowed.test"), &[b"h2", b"http/1.1"])
        .await
        .expect("tls");
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let h1 = world
        .connect(Some("ALLOWED.test"), &[b"http/1.1"])
        .await
        .expect("tls");
    assert_eq!(h1.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
}
