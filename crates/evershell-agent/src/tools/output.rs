//! Bounded capture of tool output: a command may print gigabytes, the model
//! sees at most the limit — the beginning and the end, which is where errors
//! and summaries are — with a marker line saying how much was left out.

use std::collections::VecDeque;

/// Keeps the first half of the limit and the last half, counting the rest.
#[derive(Debug)]
pub struct BoundedOutput {
    limit: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

impl BoundedOutput {
    pub fn new(limit: usize) -> BoundedOutput {
        BoundedOutput {
            limit,
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
        }
    }

    /// Records `bytes`; memory stays within the limit whatever the total.
    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let head_room = (self.limit / 2).saturating_sub(self.head.len());
        let into_head = head_room.min(bytes.len());
        self.head.extend_from_slice(&bytes[..into_head]);
        bytes = &bytes[into_head..];

        let tail_limit = self.limit - self.limit / 2;
        if bytes.len() >= tail_limit {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - tail_limit..]);
            return;
        }
        let overflow = (self.tail.len() + bytes.len()).saturating_sub(tail_limit);
        self.tail.drain(..overflow);
        self.tail.extend(bytes);
    }

    /// Everything seen, or head, marker line and tail when it was more than
    /// the limit. Invalid UTF-8 is replaced, never rejected.
    pub fn render(&self) -> String {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let (tail_a, tail_b) = self.tail.as_slices();
        let tail = [tail_a, tail_b].concat();
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if self.total > kept {
            let omitted = self.total - kept;
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("[... {omitted} bytes of output truncated ...]\n"));
        }
        text.push_str(&String::from_utf8_lossy(&tail));
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_everything_up_to_the_limit() {
        let mut out = BoundedOutput::new(10);
        out.push(b"hello ");
        out.push(b"you!");
        assert_eq!(out.render(), "hello you!");
    }

    #[test]
    fn keeps_head_and_tail_with_a_marker_when_over_the_limit() {
        let mut out = BoundedOutput::new(10);
        for chunk in [&b"abc"[..], b"defgh", b"ijklmnop", b"qrstuvwxyz"] {
            out.push(chunk);
        }
        assert_eq!(
            out.render(),
            "abcde\n[... 16 bytes of output truncated ...]\nvwxyz"
        );
    }

    #[test]
    fn a_single_huge_chunk_keeps_its_last_bytes() {
        let mut out = BoundedOutput::new(4);
        out.push(&[b'x'; 1000]);
        out.push(b"");
        out.push(b"end");
        assert_eq!(
            out.render(),
            "xx\n[... 999 bytes of output truncated ...]\nnd"
        );
    }
}
