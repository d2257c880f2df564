//! A server-sent events decoder (WHATWG HTML, "event stream interpretation"):
//! bytes in as they arrive, whole events out, nothing buffered beyond the
//! event being assembled.

/// The longest line accepted; a provider's largest events (a long tool input
/// delta) are far below it, so anything longer is a broken stream.
const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; empty when the stream named none.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

#[derive(Debug, thiserror::Error)]
#[error("event stream: line longer than {MAX_LINE_BYTES} bytes")]
pub struct LineTooLong;

/// Incremental decoder; feed it chunks with [`push`](Self::push).
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// Bytes after the last line ending seen.
    pending: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    pub fn new() -> SseDecoder {
        SseDecoder::default()
    }

    /// Decodes `chunk` (any split of the stream) and returns the events it
    /// completed. Lines end with LF or CRLF.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, LineTooLong> {
        self.pending.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(offset) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + offset;
            let line = &self.pending[start..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = String::from_utf8_lossy(line).into_owned();
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
            start = end + 1;
        }
        self.pending.drain(..start);
        if self.pending.len() > MAX_LINE_BYTES {
            return Err(LineTooLong);
        }
        Ok(events)
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // `id` and `retry` matter only to reconnecting browsers.
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = std::mem::take(&mut self.event);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        Some(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(stream: &[u8], piece: usize) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        stream
            .chunks(piece)
            .flat_map(|chunk| decoder.push(chunk).expect("short lines"))
            .collect()
    }

    #[test]
    fn decodes_the_same_events_whatever_the_chunk_boundaries() {
        let stream =
            b"event: ping\ndata: {}\n\n: comment\r\nevent: delta\r\ndata: a\r\ndata:b\r\n\r\n";
        let expected = vec![
            SseEvent {
                event: "ping".into(),
                data: "{}".into(),
            },
            SseEvent {
                event: "delta".into(),
                data: "a\nb".into(),
            },
        ];
        for piece in 1..stream.len() {
            assert_eq!(
                decode_in_pieces(stream, piece),
                expected,
                "piece size {piece}"
            );
        }
    }

    #[test]
    fn ignores_blank_lines_without_data_and_keeps_an_unfinished_event() {
        let mut decoder = SseDecoder::new();
        assert!(decoder
            .push(b"\n\nevent: x\n\ndata: [DONE]\n")
            .expect("short")
            .is_empty());
        let events = decoder.push(b"\n").expect("short");
        assert_eq!(
            events,
            vec![SseEvent {
                event: String::new(),
                data: "[DONE]".into()
            }]
        );
    }

    #[test]
    fn rejects_a_line_longer_than_the_limit() {
        let mut decoder = SseDecoder::new();
        let long = vec![b'a'; MAX_LINE_BYTES + 1];
        assert!(decoder.push(&long).is_err());
    }
}
