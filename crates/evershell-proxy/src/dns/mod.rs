//! The workspace's resolver on UDP and TCP port 53. Every query is answered
//! from the policy (see [`answer`]); denials are recorded, rate-limited per
//! name (see [`limit`]), before the agent gets its answer.

mod answer;
mod limit;

use std::sync::Arc;
use std::time::Duration;

use evershell_core::{Phase, PolicyType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::audit::Outcome;
use crate::intercept::Workspace;

pub(crate) use limit::AuditLimiter;

use answer::Denied;
use limit::{Admission, Summary};

/// The largest UDP query read; anything longer is truncated and then fails
/// to decode.
const MAX_UDP_QUERY: usize = 4096;

/// Queries of one workspace answered concurrently; further datagrams wait
/// in the socket buffer (and are dropped by the kernel when it fills).
const MAX_IN_FLIGHT: usize = 64;

/// How long a TCP client may stay silent between queries.
const TCP_IDLE: Duration = Duration::from_secs(10);

pub(crate) async fn serve_udp(ws: Arc<Workspace>, socket: UdpSocket) {
    let socket = Arc::new(socket);
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut buf = vec![0u8; MAX_UDP_QUERY];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(error) => {
                tracing::debug!(%error, "dns datagram not received");
                continue;
            }
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let query = buf[..len].to_vec();
        let (task_ws, socket) = (ws.clone(), socket.clone());
        ws.spawn(async move {
            if let Some(reply) = respond(&task_ws, &query).await {
                let _ = socket.send_to(&reply, peer).await;
            }
            drop(permit);
        });
    }
}

pub(crate) async fn serve_tcp(ws: Arc<Workspace>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => ws.spawn(tcp_connection(ws.clone(), stream)),
            Err(error) => {
                tracing::warn!(%error, "dns accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Every [`limit::WINDOW`], records the aggregated rows of closed windows.
pub(crate) async fn flush_summaries(ws: Arc<Workspace>) {
    let mut ticks = tokio::time::interval(limit::WINDOW);
    loop {
        ticks.tick().await;
        for summary in ws.dns_audit.close_expired(Instant::now()) {
            record_summary(&ws, summary).await;
        }
    }
}

/// Queries over TCP carry a two-byte length prefix (RFC 1035 §4.2.2).
async fn tcp_connection(ws: Arc<Workspace>, mut stream: TcpStream) {
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            _ => return,
        };
        let mut query = vec![0u8; len];
        if tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut query))
            .await
            .is_err()
        {
            return;
        }
        let Some(reply) = respond(&ws, &query).await else {
            return;
        };
        let Ok(reply_len) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = Vec::with_capacity(reply.len() + 2);
        framed.extend_from_slice(&reply_len.to_be_bytes());
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

/// The reply to `query`, after the denial's row (if any) is recorded.
async fn respond(ws: &Workspace, query: &[u8]) -> Option<Vec<u8>> {
    let answer = answer::answer(&ws.binding.policy, query);
    if let Some(denied) = answer.denied {
        record_denial(ws, denied).await;
    }
    answer.reply
}

async fn record_denial(ws: &Workspace, denied: Denied) {
    tracing::debug!(name = %denied.name, reason = denied.reason, "dns query denied");
    let (admission, summary) = ws
        .dns_audit
        .admit(&denied.name, denied.reason, Instant::now());
    if let Some(summary) = summary {
        record_summary(ws, summary).await;
    }
    if admission == Admission::Record {
        let outcome = dns_outcome(ws, &denied.name, denied.reason);
        let _ = ws.proxy.audit.record(&ws.binding, &outcome).await;
    }
}

async fn record_summary(ws: &Workspace, summary: Summary) {
    let mut outcome = dns_outcome(ws, &summary.name, summary.reason);
    outcome.suppressed = Some(summary.suppressed);
    let _ = ws.proxy.audit.record(&ws.binding, &outcome).await;
}

fn dns_outcome(ws: &Workspace, name: &str, reason: &str) -> Outcome {
    let mut outcome = Outcome::deny(PolicyType::Dns, Phase::Dns, reason);
    outcome.task_id = ws.binding.current_task();
    outcome.destination = (!name.is_empty()).then(|| name.to_owned());
    outcome
}

#[cfg(test)]
mod tests;
