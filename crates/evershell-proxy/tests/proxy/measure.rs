use std::time::{Duration, Instant};
use hyper_util::rt::TokioIo;
use crate::support::{get, World, body_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure() {
    let world = World::start().await;
    let host = format!("allowed.test:{}", world.https_port);
    // warm
    let _ = body_text(world.send_h1("allowed.test", get(&host, "/v1/warm")).await).await;
    let n = 300;
    let t = Instant::now();
    for _ in 0..50 { let _ = body_text(world.send_h1("allowed.test", get(&host, "/v1/x")).await).await; }
    let cold = t.elapsed() / 50;
    let tls = world.connect(Some("allowed.test"), &[b"http/1.1"]).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let mut lat = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let r = sender.send_request(get(&host, "/v1/x")).await.unwrap();
        let _ = body_text(r).await;
        lat.push(t.elapsed());
    }
    lat.sort();
    let mean: Duration = lat.iter().sum::<Duration>() / n;
    eprintln!("MEASURE new-conn per request {cold:?}; keep-alive mean {mean:?} p50 {:?} p99 {:?}", lat[n as usize/2], lat[n as usize*99/100]);
    // denied
    let t = Instant::now();
    for _ in 0..n { let r = sender.send_request(get(&host, "/admin")).await.unwrap(); let _ = body_text(r).await; }
    eprintln!("MEASURE deny mean {:?}", t.elapsed() / n);
}
