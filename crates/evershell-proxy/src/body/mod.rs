//! Bodies as the proxy streams them: boxed frames, and a metered wrapper that
//! counts bytes, ends a body that stays silent past the idle timeout, shows
//! each frame to an observer and reports once how the body ended. The
//! metered wrapper never buffers: each frame is passed on as it arrives.
//! Only a request body can be read ahead ([`AgentBody`]), and only up to a
//! bound the caller gives.

mod agent;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use tokio::time::{Instant, Sleep};

pub(crate) use agent::{AgentBody, ReadAhead};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every body the proxy hands to hyper, in either direction.
pub(crate) type ProxyBody = BoxBody<Bytes, BoxError>;

/// How a metered body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyEnd {
    /// The last frame went through.
    Complete,
    /// No frame arrived within the idle timeout; the body was ended with an
    /// error so that the receiver sees a broken stream, not a short one.
    IdleTimeout,
    /// The source failed mid-stream.
    Failed,
    /// The receiver went away before the end.
    Dropped,
}

/// Watches a metered body: sees each data frame as it passes, and is told
/// once, when the body ends, how it ended and how many data bytes went
/// through.
pub(crate) trait Observer: Send + Sync + 'static {
    /// Called on the body's polling path before the frame moves on: must
    /// be quick and never block.
    fn data(&mut self, _data: &[u8]) {}

    fn ended(self: Box<Self>, end: BodyEnd, bytes: u64);
}

/// A body passed through frame by frame, counted and watched for silence.
pub(crate) struct Metered<B: Body> {
    inner: B,
    bytes: Arc<AtomicU64>,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    observer: Option<Box<dyn Observer>>,
    done: bool,
}

/// The error a metered body ends with when its source stays silent.
#[derive(Debug, thiserror::Error)]
#[error("body idle for {0:?}")]
pub(crate) struct IdleTimeout(Duration);

/// A body holding `bytes`.
pub(crate) fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}

impl<B> Metered<B>
where
    B: Body<Data = Bytes> + Unpin + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    /// Wraps `inner`; data bytes are added to `bytes` as they pass.
    pub(crate) fn new(inner: B, bytes: Arc<AtomicU64>, idle_timeout: Duration) -> Metered<B> {
        Metered {
            inner,
            bytes,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            observer: None,
            done: false,
        }
    }

    /// Shows every data frame to `observer`, and tells it once when the
    /// body ends, however it ends.
    pub(crate) fn observe(mut self, observer: Box<dyn Observer>) -> Metered<B> {
        self.observer = Some(observer);
        self
    }

    pub(crate) fn boxed(self) -> ProxyBody {
        BodyExt::boxed(self)
    }

    fn finish(&mut self, end: BodyEnd) {
        self.done = true;
        if let Some(observer) = self.observer.take() {
            observer.ended(end, self.bytes.load(Ordering::Relaxed));
        }
    }
}

impl<B> Body for Metered<B>
where
    B: Body<Data = Bytes> + Unpin + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                    if let Some(observer) = this.observer.as_mut() {
                        observer.data(data);
                    }
                }
                let deadline = Instant::now() + this.idle_timeout;
                this.idle.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.finish(BodyEnd::Failed);
                Poll::Ready(Some(Err(error.into())))
            }
            Poll::Ready(None) => {
                this.finish(BodyEnd::Complete);
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.idle.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.finish(BodyEnd::IdleTimeout);
                Poll::Ready(Some(Err(IdleTimeout(this.idle_timeout).into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Body> Drop for Metered<B> {
    fn drop(&mut self) {
        let Some(observer) = self.observer.take() else {
            return;
        };
        // hyper stops polling a body once it announces its end (a known
        // length fully sent, an empty response), so a drop after that is a
        // completion.
        let end = if self.done || self.inner.is_end_stream() {
            BodyEnd::Complete
        } else {
            BodyEnd::Dropped
        };
        observer.ended(end, self.bytes.load(Ordering::Relaxed));
    }
}
