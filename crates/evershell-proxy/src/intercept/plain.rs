//! Plain-HTTP listeners: the `Host` header names the destination, and only
//! rules with `allow_insecure` admit it (the policy checks that).

use std::sync::Arc;

use tokio::net::TcpStream;

use super::{serve, Listener, Workspace};

pub(super) async fn connection(ws: Arc<Workspace>, stream: TcpStream, listener: Listener) {
    serve::http1(ws, listener, None, stream).await;
}
