//! The agent's request body, which the pipeline may read ahead of
//! forwarding: when a rule judges the body, or a budget needs the token
//! cap written in it. What was read ahead is forwarded first, then the rest
//! of the stream, so a body larger than the bound still goes through whole
//! when a rule admits it without looking.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

use super::BoxError;

/// A request body, partly read ahead.
#[derive(Debug)]
pub(crate) struct AgentBody<B> {
    head: BytesMut,
    /// The trailers, when they were read ahead.
    trailers: Option<HeaderMap>,
    /// What is still to come; `None` once the body ended.
    rest: Option<B>,
    replaced: bool,
}

/// Why reading ahead stopped short.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadAhead {
    #[error("request body idle for {0:?}")]
    Idle(Duration),
    #[error("request body failed")]
    Failed(#[source] BoxError),
}

/// The body forwarded upstream: what was read ahead, then the rest.
pub(crate) struct Replay<B> {
    head: Option<Bytes>,
    rest: Option<B>,
    trailers: Option<HeaderMap>,
}

impl<B> AgentBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    pub(crate) fn new(body: B) -> AgentBody<B> {
        AgentBody {
            head: BytesMut::new(),
            trailers: None,
            rest: Some(body),
            replaced: false,
        }
    }

    /// Reads until more than `limit` bytes are held or the body ends. A
    /// frame that does not arrive within `idle` fails the read.
    pub(crate) async fn read_ahead(
        &mut self,
        limit: usize,
        idle: Duration,
    ) -> Result<(), ReadAhead> {
        while self.head.len() <= limit {
            let Some(rest) = self.rest.as_mut() else {
                return Ok(());
            };
            let frame = match tokio::time::timeout(idle, rest.frame()).await {
                Err(_) => return Err(ReadAhead::Idle(idle)),
                Ok(None) => {
                    self.rest = None;
                    continue;
                }
                Ok(Some(Err(error))) => return Err(ReadAhead::Failed(error.into())),
                Ok(Some(Ok(frame))) => frame,
            };
            match frame.into_data() {
                Ok(data) => self.head.extend_from_slice(&data),
                Err(frame) => {
                    // Trailers end a body (RFC 9110 §6.5).
                    self.trailers = frame.into_trailers().ok();
                    self.rest = None;
                }
            }
        }
        if self.rest.as_ref().is_some_and(Body::is_end_stream) {
            self.rest = None;
        }
        Ok(())
    }

    /// The bytes read ahead.
    pub(crate) fn held(&self) -> &[u8] {
        &self.head
    }

    /// Whether the whole body is held.
    pub(crate) fn is_complete(&self) -> bool {
        self.rest.is_none()
    }

    /// Whether [`AgentBody::replace`] changed the body.
    pub(crate) fn is_replaced(&self) -> bool {
        self.replaced
    }

    /// Forwards `body` instead of the agent's. Only a complete body can be
    /// replaced.
    pub(crate) fn replace(&mut self, body: Bytes) {
        debug_assert!(self.is_complete(), "a partly read body is never replaced");
        self.head = BytesMut::from(&body[..]);
        self.replaced = true;
    }

    pub(crate) fn into_replay(self) -> Replay<B> {
        Replay {
            head: Some(self.head.freeze()),
            rest: self.rest,
            trailers: self.trailers,
        }
    }
}

impl<B> Body for Replay<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(head) = this.head.take().filter(|head| !head.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        if let Some(rest) = this.rest.as_mut() {
            match Pin::new(rest).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(frame)) => return Poll::Ready(Some(frame.map_err(Into::into))),
                Poll::Ready(None) => this.rest = None,
            }
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.head.as_ref().is_none_or(Bytes::is_empty)
            && self.rest.as_ref().is_none_or(Body::is_end_stream)
            && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let head = self.head.as_ref().map_or(0, |h| h.len() as u64);
        let Some(rest) = &self.rest else {
            return SizeHint::with_exact(head);
        };
        let inner = rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(head));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(head));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::{Full, StreamBody};

    use super::*;

    type Chunks = StreamBody<
        futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>,
    >;

    fn chunks(parts: &[&'static str], trailers: bool) -> Chunks {
        let mut frames: Vec<Result<Frame<Bytes>, Infallible>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        if trailers {
            let mut map = HeaderMap::new();
            map.insert("x-checksum", "abc".parse().expect("value"));
            frames.push(Ok(Frame::trailers(map)));
        }
        StreamBody::new(futures_util::stream::iter(frames))
    }

    async fn replayed<B>(body: AgentBody<B>) -> (Bytes, Option<HeaderMap>)
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<BoxError>,
    {
        let collected = body.into_replay().collect().await.expect("body");
        let trailers = collected.trailers().cloned();
        (collected.to_bytes(), trailers)
    }

    const IDLE: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn a_body_within_the_bound_is_held_whole_with_its_trailers() {
        let mut body = AgentBody::new(chunks(&["ab", "cd"], true));
        body.read_ahead(10, IDLE).await.expect("reads");
        assert!(body.is_complete());
        assert_eq!(body.held(), b"abcd");
        let (bytes, trailers) = replayed(body).await;
        assert_eq!(&bytes[..], b"abcd");
        assert_eq!(trailers.expect("trailers")["x-checksum"], "abc");
    }

    #[tokio::test]
    async fn a_body_over_the_bound_stops_early_and_is_still_forwarded_whole() {
        let mut body = AgentBody::new(chunks(&["abc", "def", "ghi"], false));
        body.read_ahead(4, IDLE).await.expect("reads");
        assert!(!body.is_complete());
        assert_eq!(body.held(), b"abcdef");
        assert_eq!(&replayed(body).await.0[..], b"abcdefghi");
    }

    #[tokio::test]
    async fn a_replaced_body_is_what_goes_upstream() {
        let mut body = AgentBody::new(Full::new(Bytes::from_static(b"{\"a\":1}")));
        body.read_ahead(100, IDLE).await.expect("reads");
        body.replace(Bytes::from_static(b"{\"a\":2}"));
        assert!(body.is_replaced());
        let replay = body.into_replay();
        assert_eq!(replay.size_hint().exact(), Some(7));
        assert_eq!(
            &replay.collect().await.expect("body").to_bytes()[..],
            b"{\"a\":2}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_agent_fails_the_read() {
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(1);
        let mut rx = rx;
        let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let mut body = AgentBody::new(StreamBody::new(stream));
        let read = body.read_ahead(10, Duration::from_secs(1)).await;
        assert!(matches!(read, Err(ReadAhead::Idle(_))));
    }
}
