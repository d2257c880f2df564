//! Request framing on HTTP/1 connections. A *verdict* says whether one
//! request head is safe to act on. The guard sits between the agent's bytes
//! and hyper, parses every request head as it passes and follows each body
//! to the next head, so that the pipeline can refuse the shapes that let a
//! second request hide inside the first (RFC 9112 §6.3, §11.2): both
//! `Content-Length` and `Transfer-Encoding`, differing `Content-Length`
//! values, a header section over [`MAX_HEAD_BYTES`]. hyper tolerates the
//! first (it drops `Content-Length`); we refuse it before any upstream
//! connection.
//!
//! The guard never changes a byte. Whenever it cannot follow the stream (a
//! head hyper will reject itself, a tunnel) it stops producing verdicts, and
//! a request without a verdict is refused.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The largest request header section accepted, request line included.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Headers httparse may report per head; more is left to hyper to refuse.
const MAX_HEADERS: usize = 128;

/// Whether one request head may be acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Clean,
    /// The head has a smuggling shape, named for the log.
    Refused(&'static str),
}

/// Verdicts in request order, shared between the guard (producer) and the
/// connection's service (consumer, one per request).
#[derive(Debug, Clone, Default)]
pub(crate) struct Verdicts(Arc<Mutex<VecDeque<Verdict>>>);

/// The agent's byte stream with a framing scanner on its read side.
pub(crate) struct FramingGuard<IO> {
    inner: IO,
    scanner: Scanner,
    verdicts: Verdicts,
}

#[derive(Debug)]
struct Scanner {
    state: State,
}

#[derive(Debug)]
enum State {
    Head(Head),
    /// Bytes of a fixed-length body still to pass.
    Body(u64),
    Chunked(Chunked),
    /// The stream can no longer be followed; no more verdicts.
    Opaque,
}

#[derive(Debug, Default)]
struct Head {
    buf: Vec<u8>,
    /// Where the search for the end of the head resumes.
    scanned: usize,
}

/// Position inside a chunked body (RFC 9112 §7.1).
#[derive(Debug)]
enum Chunked {
    Size { value: u64, digits: u8, ext: bool },
    Data(u64),
    DataEnd,
    Trailer { line: usize },
}

/// What feeding bytes to a head produced.
enum HeadStep {
    /// Every byte was taken; the head is not complete yet.
    More,
    /// The head ended after `consumed` of the fed bytes.
    Done {
        consumed: usize,
        verdict: Verdict,
        next: State,
    },
    /// The stream cannot be followed; `verdict` is the last one, if any.
    Lost(Option<Verdict>),
}

/// What feeding bytes to a chunked body produced.
enum ChunkStep {
    More,
    Done(usize),
    Lost,
}

impl Verdicts {
    /// The verdict of the next request, in the order heads arrived.
    pub(crate) fn next(&self) -> Option<Verdict> {
        self.lock().pop_front()
    }

    fn push(&self, verdict: Verdict) {
        self.lock().push_back(verdict);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Verdict>> {
        // Every critical section is one queue operation.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<IO> FramingGuard<IO> {
    pub(crate) fn new(inner: IO, verdicts: Verdicts) -> FramingGuard<IO> {
        FramingGuard {
            inner,
            scanner: Scanner::new(),
            verdicts,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for FramingGuard<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.scanner.feed(&buf.filled()[before..], &this.verdicts);
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for FramingGuard<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl Scanner {
    fn new() -> Scanner {
        Scanner {
            state: State::Head(Head::default()),
        }
    }

    /// Follows `bytes`, pushing one verdict per request head.
    fn feed(&mut self, mut bytes: &[u8], verdicts: &Verdicts) {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Opaque => return,
                State::Head(head) => match head.feed(bytes) {
                    HeadStep::More => return,
                    HeadStep::Done {
                        consumed,
                        verdict,
                        next,
                    } => {
                        verdicts.push(verdict);
                        self.state = next;
                        bytes = &bytes[consumed..];
                    }
                    HeadStep::Lost(verdict) => {
                        verdict.into_iter().for_each(|v| verdicts.push(v));
                        self.state = State::Opaque;
                        return;
                    }
                },
                State::Body(remaining) => {
                    let take = usize::try_from(*remaining)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    *remaining -= take as u64;
                    if *remaining == 0 {
                        self.state = State::Head(Head::default());
                    }
                    bytes = &bytes[take..];
                }
                State::Chunked(chunked) => match chunked.feed(bytes) {
                    ChunkStep::More => return,
                    ChunkStep::Done(consumed) => {
                        self.state = State::Head(Head::default());
                        bytes = &bytes[consumed..];
                    }
                    ChunkStep::Lost => {
                        self.state = State::Opaque;
                        return;
                    }
                },
            }
        }
    }
}

impl Head {
    fn feed(&mut self, bytes: &[u8]) -> HeadStep {
        let start = self.buf.len();
        let take = (MAX_HEAD_BYTES + 1 - start).min(bytes.len());
        self.buf.extend_from_slice(&bytes[..take]);

        while let Some(end) = find_head_end(&self.buf, self.scanned) {
            self.scanned = end;
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut request = httparse::Request::new(&mut headers);
            match request.parse(&self.buf[..end]) {
                // Blank lines before a request line (RFC 9112 §2.2) end a
                // "head" that is not one yet: keep looking.
                Ok(httparse::Status::Partial) => continue,
                Ok(httparse::Status::Complete(len)) if len > start => {
                    let (verdict, next) = judge(&request);
                    return HeadStep::Done {
                        consumed: len - start,
                        verdict,
                        next,
                    };
                }
                // A head that hyper will refuse itself, or (never expected)
                // one that ended inside bytes already passed on.
                Ok(httparse::Status::Complete(_)) | Err(_) => return HeadStep::Lost(None),
            }
        }

        if self.buf.len() > MAX_HEAD_BYTES {
            return HeadStep::Lost(Some(Verdict::Refused("header_section_too_large")));
        }
        self.scanned = self.buf.len().saturating_sub(2);
        HeadStep::More
    }
}

impl Chunked {
    fn feed(&mut self, bytes: &[u8]) -> ChunkStep {
        let mut at = 0;
        while at < bytes.len() {
            if let Chunked::Data(remaining) = self {
                let take = usize::try_from(*remaining)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len() - at);
                *remaining -= take as u64;
                at += take;
                if *remaining == 0 {
                    *self = Chunked::DataEnd;
                }
                continue;
            }
            let byte = bytes[at];
            at += 1;
            match self.step(byte) {
                Ok(true) => return ChunkStep::Done(at),
                Ok(false) => {}
                Err(()) => return ChunkStep::Lost,
            }
        }
        ChunkStep::More
    }

    /// Advances over one framing byte; `Ok(true)` when the body ended.
    fn step(&mut self, byte: u8) -> Result<bool, ()> {
        match self {
            Chunked::Size { value, digits, ext } => match byte {
                b'\n' if *digits == 0 => return Err(()),
                b'\n' if *value == 0 => *self = Chunked::Trailer { line: 0 },
                b'\n' => *self = Chunked::Data(*value),
                b'\r' => {}
                _ if *ext => {}
                b';' => *ext = true,
                b' ' | b'\t' => {}
                _ => {
                    let digit = (byte as char).to_digit(16).ok_or(())?;
                    *digits += 1;
                    if *digits > 16 {
                        return Err(());
                    }
                    *value = (*value << 4) | u64::from(digit);
                }
            },
            Chunked::Data(_) => unreachable!("data bytes are skipped in bulk by feed"),
            Chunked::DataEnd => match byte {
                b'\r' => {}
                b'\n' => *self = Chunked::size(),
                _ => return Err(()),
            },
            Chunked::Trailer { line } => match byte {
                b'\n' if *line == 0 => return Ok(true),
                b'\n' => *line = 0,
                b'\r' => {}
                _ => *line += 1,
            },
        }
        Ok(false)
    }

    fn size() -> Chunked {
        Chunked::Size {
            value: 0,
            digits: 0,
            ext: false,
        }
    }
}

/// The end of a head in `buf`, searching from `from`: a line end followed by
/// an empty line, with CRLF or bare LF endings as httparse accepts them.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len()).find_map(|i| match (buf[i], buf.get(i + 1), buf.get(i + 2)) {
        (b'\n', Some(b'\n'), _) => Some(i + 2),
        (b'\n', Some(b'\r'), Some(b'\n')) => Some(i + 3),
        _ => None,
    })
}

/// The verdict on a complete head and how its body is framed.
fn judge(request: &httparse::Request<'_, '_>) -> (Verdict, State) {
    let mut chunked = None;
    let mut length: Option<u64> = None;
    let mut lengths_differ = false;
    let mut length_invalid = false;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = Some(last_coding_is_chunked(header.value));
        } else if header.name.eq_ignore_ascii_case("content-length") {
            for part in header.value.split(|b| *b == b',') {
                match parse_length(part) {
                    Some(n) if length.is_some_and(|l| l != n) => lengths_differ = true,
                    Some(n) => length = Some(n),
                    None => length_invalid = true,
                }
            }
        }
    }

    let has_length = length.is_some() || length_invalid;
    if chunked.is_some() && has_length {
        return (
            Verdict::Refused("content_length_with_transfer_encoding"),
            State::Opaque,
        );
    }
    if lengths_differ {
        return (
            Verdict::Refused("conflicting_content_length"),
            State::Opaque,
        );
    }
    if request.method == Some("CONNECT") || length_invalid {
        return (Verdict::Clean, State::Opaque);
    }
    let next = match (chunked, length) {
        (Some(true), _) => State::Chunked(Chunked::size()),
        (Some(false), _) => State::Opaque,
        (None, Some(n)) if n > 0 => State::Body(n),
        (None, _) => State::Head(Head::default()),
    };
    (Verdict::Clean, next)
}

fn last_coding_is_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|b| *b == b',')
        .next()
        .is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

fn parse_length(text: &[u8]) -> Option<u64> {
    let text = text.trim_ascii();
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

#[cfg(test)]
mod tests;
