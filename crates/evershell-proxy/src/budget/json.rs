//! A streaming JSON reader for accounting: it is fed a document in pieces,
//! as they pass through the proxy, and reports the unsigned integers found
//! at chosen object paths, without holding the document. Memory is bounded
//! by the nesting depth, not by the size of the document.
//!
//! A *path* is the list of object keys from the root to a value; arrays are
//! transparent (`[{"usage": {"input_tokens": 3}}]` has `input_tokens` at
//! `usage.input_tokens`), so that a stream of objects (Gemini's JSON array
//! of chunks) reads like one object.

/// Containers deeper than this end the scan: nothing after them is read.
const MAX_DEPTH: usize = 128;

/// Keys longer than this can match no path.
const MAX_KEY_BYTES: usize = 64;

/// Digits of the longest integer kept (`u64::MAX` has 20).
const MAX_NUMBER_BYTES: usize = 20;

/// The scanner. Feed it with [`JsonScan::feed`], then read
/// [`JsonScan::found`].
#[derive(Debug)]
pub(crate) struct JsonScan {
    /// The paths whose integers are reported, by index.
    paths: &'static [&'static [&'static str]],
    lex: Lex,
    token: Vec<u8>,
    /// The token outgrew its bound: a key that matches nothing, a number
    /// that is not kept.
    overflow: bool,
    stack: Vec<Container>,
    /// In an object, before a key.
    expect_key: bool,
    /// The key whose value comes next.
    pending: Option<String>,
    /// Input that is not JSON, or too deep: nothing more is read.
    broken: bool,
    /// `(index into paths, value)`, in document order.
    found: Vec<(usize, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    Between,
    String { escaped: bool },
    Number,
    Literal,
}

#[derive(Debug)]
struct Container {
    object: bool,
    /// The key this container is the value of; `None` at the root and
    /// inside arrays.
    key: Option<String>,
}

impl JsonScan {
    /// A scanner reporting integers at `paths`.
    pub(crate) fn new(paths: &'static [&'static [&'static str]]) -> JsonScan {
        JsonScan {
            paths,
            lex: Lex::Between,
            token: Vec::new(),
            overflow: false,
            stack: Vec::new(),
            expect_key: false,
            pending: None,
            broken: false,
            found: Vec::new(),
        }
    }

    /// Reads the next piece of the document.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if self.broken {
                return;
            }
            self.byte(byte);
        }
    }

    /// Ends the document: a number at its very end is complete.
    pub(crate) fn finish(&mut self) {
        if matches!(self.lex, Lex::Number | Lex::Literal) {
            self.end_token();
        }
    }

    /// The integers found so far, as `(index into paths, value)` in
    /// document order. Repeated keys are all reported.
    pub(crate) fn found(&self) -> &[(usize, u64)] {
        &self.found
    }

    fn byte(&mut self, byte: u8) {
        match self.lex {
            Lex::String { escaped: true } => {
                self.lex = Lex::String { escaped: false };
                self.push(byte);
            }
            Lex::String { escaped: false } => match byte {
                b'\\' => self.lex = Lex::String { escaped: true },
                b'"' => self.end_string(),
                _ => self.push(byte),
            },
            Lex::Number if matches!(byte, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') => {
                self.push(byte)
            }
            Lex::Literal if byte.is_ascii_alphabetic() => {}
            Lex::Number | Lex::Literal => {
                self.end_token();
                self.between(byte);
            }
            Lex::Between => self.between(byte),
        }
    }

    fn between(&mut self, byte: u8) {
        match byte {
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b'{' | b'[' => self.open(byte == b'{'),
            b'}' | b']' => {
                self.stack.pop();
                self.pending = None;
                self.expect_key = false;
            }
            b',' => {
                self.pending = None;
                self.expect_key = self.stack.last().is_some_and(|c| c.object);
            }
            b':' => self.expect_key = false,
            b'"' => self.start(Lex::String { escaped: false }),
            b'-' | b'0'..=b'9' => {
                self.start(Lex::Number);
                self.push(byte);
            }
            b't' | b'f' | b'n' => self.start(Lex::Literal),
            _ => self.broken = true,
        }
    }

    fn open(&mut self, object: bool) {
        if self.stack.len() >= MAX_DEPTH {
            self.broken = true;
            return;
        }
        let key = self.pending.take();
        self.stack.push(Container { object, key });
        self.expect_key = object;
    }

    fn start(&mut self, lex: Lex) {
        self.lex = lex;
        self.token.clear();
        self.overflow = false;
    }

    fn push(&mut self, byte: u8) {
        let bound = match self.lex {
            Lex::Number => MAX_NUMBER_BYTES,
            _ => MAX_KEY_BYTES,
        };
        if self.token.len() < bound {
            self.token.push(byte);
        } else {
            self.overflow = true;
        }
    }

    fn end_string(&mut self) {
        self.lex = Lex::Between;
        if self.expect_key {
            self.expect_key = false;
            self.pending = match (self.overflow, String::from_utf8(self.token.clone())) {
                (false, Ok(key)) => Some(key),
                // A key no path names, kept so that values stay aligned.
                _ => Some(String::new()),
            };
        } else {
            self.pending = None;
        }
    }

    fn end_token(&mut self) {
        let lex = std::mem::replace(&mut self.lex, Lex::Between);
        let Some(key) = self.pending.take() else {
            return;
        };
        if lex != Lex::Number || self.overflow {
            return;
        }
        let Some(value) = std::str::from_utf8(&self.token)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
        else {
            return;
        };
        if let Some(index) = self.match_path(&key) {
            self.found.push((index, value));
        }
    }

    /// The index of the path that ends with `key` inside the current
    /// containers.
    fn match_path(&self, key: &str) -> Option<usize> {
        let keys: Vec<&str> = self
            .stack
            .iter()
            .filter_map(|c| c.key.as_deref())
            .chain(std::iter::once(key))
            .collect();
        self.paths.iter().position(|path| *path == keys.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATHS: &[&[&str]] = &[
        &["usage", "input_tokens"],
        &["usage", "output_tokens"],
        &["max_tokens"],
    ];

    fn scan_in_pieces(text: &str, piece: usize) -> Vec<(usize, u64)> {
        let mut scan = JsonScan::new(PATHS);
        for chunk in text.as_bytes().chunks(piece) {
            scan.feed(chunk);
        }
        scan.finish();
        scan.found().to_vec()
    }

    #[test]
    fn integers_at_the_named_paths_are_found_whatever_the_piece_size() {
        let text = r#"{"id":"m\"sg","content":[{"text":"usage: {\"input_tokens\": 9}"}],
            "usage":{"input_tokens":12,"cache":{"input_tokens":7},"output_tokens":345},
            "max_tokens":1024}"#;
        for piece in [1, 2, 3, 7, 64, text.len()] {
            assert_eq!(
                scan_in_pieces(text, piece),
                [(0, 12), (1, 345), (2, 1024)],
                "{piece}"
            );
        }
    }

    #[test]
    fn arrays_are_transparent_and_repeated_keys_are_all_reported() {
        let text = r#"[{"usage":{"output_tokens":1}},{"usage":{"output_tokens":8}}]"#;
        assert_eq!(scan_in_pieces(text, 5), [(1, 1), (1, 8)]);
        let text = r#"{"max_tokens": 10, "max_tokens": 100000}"#;
        assert_eq!(scan_in_pieces(text, 4), [(2, 10), (2, 100000)]);
    }

    #[test]
    fn a_number_ending_the_document_counts() {
        assert_eq!(scan_in_pieces(r#"{"max_tokens":77"#, 3), [(2, 77)]);
    }

    #[test]
    fn values_that_are_not_unsigned_integers_are_ignored() {
        let text = r#"{"max_tokens":"9","usage":{"input_tokens":-1,"output_tokens":2.5},
            "usage":null,"max_tokens":true}"#;
        assert!(scan_in_pieces(text, 3).is_empty());
    }

    #[test]
    fn input_that_is_not_json_or_nests_too_deep_stops_the_scan() {
        assert!(scan_in_pieces("<html>{\"max_tokens\":1}", 4).is_empty());
        let deep = format!("{}{{\"max_tokens\":1}}", "[".repeat(MAX_DEPTH));
        assert!(scan_in_pieces(&deep, 16).is_empty());
    }
}
