//! Token usage as model providers report it in their responses, read from
//! the response stream as it passes, never by holding the response back.
//!
//! Where each provider reports usage (their API references):
//!
//! - Anthropic Messages: JSON `usage.input_tokens` / `usage.output_tokens`;
//!   streamed, `message_start` carries `message.usage` and each
//!   `message_delta` the cumulative `usage`.
//! - OpenAI Chat Completions: `usage.prompt_tokens` /
//!   `usage.completion_tokens`, in the JSON body or in the last streamed
//!   chunk (`stream_options.include_usage`).
//! - OpenAI Responses: `usage.input_tokens` / `usage.output_tokens`; streamed
//!   in the `response.completed` event under `response.usage`.
//! - Gemini: `usageMetadata.promptTokenCount` /
//!   `usageMetadata.candidatesTokenCount`, cumulative in every chunk.
//!
//! Every count is cumulative, so the last value seen wins.

use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http::HeaderMap;

use super::json::JsonScan;

/// Where input and output token counts live, as JSON paths.
const USAGE_PATHS: &[&[&str]] = &[
    &["usage", "input_tokens"],
    &["usage", "prompt_tokens"],
    &["message", "usage", "input_tokens"],
    &["response", "usage", "input_tokens"],
    &["usageMetadata", "promptTokenCount"],
    &["usage", "output_tokens"],
    &["usage", "completion_tokens"],
    &["message", "usage", "output_tokens"],
    &["response", "usage", "output_tokens"],
    &["usageMetadata", "candidatesTokenCount"],
];

/// Paths before this index in [`USAGE_PATHS`] count input tokens.
const FIRST_OUTPUT_PATH: usize = 5;

/// The longest SSE field name kept; longer fields are ignored.
const MAX_FIELD_BYTES: usize = 16;

/// Token counts read from a response; `None` when it reported none.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

/// Reads usage from a response body, piece by piece.
#[derive(Debug)]
pub(crate) enum UsageTap {
    /// `application/json` and `+json`: one document.
    Json(JsonScan),
    /// `text/event-stream`: each event's data is a document.
    Sse(SseReader),
}

/// A server-sent events reader (WHATWG HTML §9.2.6) that passes each
/// event's `data` to a fresh [`JsonScan`] as it streams.
#[derive(Debug)]
pub(crate) struct SseReader {
    line: LineState,
    /// The previous byte was a CR, so an LF now ends nothing new.
    after_cr: bool,
    field: Vec<u8>,
    event: JsonScan,
    /// The current event has data already: another `data` line adds a
    /// line feed first.
    event_has_data: bool,
    usage: Usage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineState {
    /// Reading the field name.
    Field,
    /// Right after the colon: one space is skipped.
    ValueStart { data: bool },
    /// In the value; `data` values go to the event's scan.
    Value { data: bool },
}

impl UsageTap {
    /// A tap for a response with `headers`, or `None` when its usage
    /// cannot be read: a type that carries none, or an encoded body (the
    /// proxy never decodes on the agent's behalf).
    pub(crate) fn for_response(headers: &HeaderMap) -> Option<UsageTap> {
        let encoded = headers
            .get_all(CONTENT_ENCODING)
            .iter()
            .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
        if encoded {
            return None;
        }
        let media = headers.get(CONTENT_TYPE)?.to_str().ok()?;
        let media = media.split(';').next()?.trim().to_ascii_lowercase();
        if media == "text/event-stream" {
            Some(UsageTap::Sse(SseReader::new()))
        } else if media == "application/json" || media.ends_with("+json") {
            Some(UsageTap::Json(JsonScan::new(USAGE_PATHS)))
        } else {
            None
        }
    }

    /// Reads the next piece of the body.
    pub(crate) fn data(&mut self, bytes: &[u8]) {
        match self {
            UsageTap::Json(scan) => scan.feed(bytes),
            UsageTap::Sse(reader) => reader.feed(bytes),
        }
    }

    /// The usage the whole body reported.
    pub(crate) fn finish(self) -> Usage {
        match self {
            UsageTap::Json(mut scan) => {
                scan.finish();
                let mut usage = Usage::default();
                usage.absorb(&scan);
                usage
            }
            UsageTap::Sse(mut reader) => {
                // A last event without its blank line still counts.
                reader.dispatch();
                reader.usage
            }
        }
    }
}

impl Usage {
    /// Takes the counts `scan` found, the last of each winning.
    fn absorb(&mut self, scan: &JsonScan) {
        for &(path, value) in scan.found() {
            if path < FIRST_OUTPUT_PATH {
                self.input_tokens = Some(value);
            } else {
                self.output_tokens = Some(value);
            }
        }
    }
}

impl SseReader {
    fn new() -> SseReader {
        SseReader {
            line: LineState::Field,
            after_cr: false,
            field: Vec::new(),
            event: JsonScan::new(USAGE_PATHS),
            event_has_data: false,
            usage: Usage::default(),
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        let mut start = 0;
        for (i, &byte) in bytes.iter().enumerate() {
            let after_cr = std::mem::replace(&mut self.after_cr, byte == b'\r');
            if byte == b'\n' && after_cr {
                start = i + 1;
                continue;
            }
            if byte != b'\n' && byte != b'\r' {
                continue;
            }
            self.text(&bytes[start..i]);
            self.end_line();
            start = i + 1;
        }
        self.text(&bytes[start..]);
    }

    /// Bytes of one line, without its end.
    fn text(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.line {
                LineState::Field => {
                    let Some(colon) = bytes.iter().position(|&b| b == b':') else {
                        self.keep_field(bytes);
                        return;
                    };
                    self.keep_field(&bytes[..colon]);
                    let data = self.field == b"data";
                    if data && self.event_has_data {
                        self.event.feed(b"\n");
                    }
                    self.event_has_data |= data;
                    self.line = LineState::ValueStart { data };
                    bytes = &bytes[colon + 1..];
                }
                LineState::ValueStart { data } => {
                    if bytes[0] == b' ' {
                        bytes = &bytes[1..];
                    }
                    self.line = LineState::Value { data };
                }
                LineState::Value { data } => {
                    if data {
                        self.event.feed(bytes);
                    }
                    return;
                }
            }
        }
    }

    fn keep_field(&mut self, bytes: &[u8]) {
        let room = MAX_FIELD_BYTES.saturating_sub(self.field.len());
        self.field
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn end_line(&mut self) {
        // A blank line ends the event; a line with no colon is a field with
        // an empty value, which carries nothing here.
        let blank = self.line == LineState::Field && self.field.is_empty();
        self.line = LineState::Field;
        self.field.clear();
        if blank {
            self.dispatch();
        }
    }

    fn dispatch(&mut self) {
        if !self.event_has_data {
            return;
        }
        let mut event = std::mem::replace(&mut self.event, JsonScan::new(USAGE_PATHS));
        event.finish();
        self.usage.absorb(&event);
        self.event_has_data = false;
    }
}

#[cfg(test)]
mod tests;
