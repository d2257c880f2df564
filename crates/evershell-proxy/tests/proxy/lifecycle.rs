//! Serving ends with the handle.

use std::time::Duration;

use tokio::net::TcpStream;

use crate::support::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_serve_handle_closes_every_listener() {
    let mut world = World::start().await;
    assert!(TcpStream::connect(("127.0.0.1", world.https_port))
        .await
        .is_ok());
    world.stop();

    let mut refused = false;
    for _ in 0..50 {
        if TcpStream::connect(("127.0.0.1", world.https_port))
            .await
            .is_err()
            && TcpStream::connect(("127.0.0.1", world.http_port))
                .await
                .is_err()
            && TcpStream::connect(world.dns_tcp).await.is_err()
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        refused,
        "listeners still accept after the handle was dropped"
    );
}
