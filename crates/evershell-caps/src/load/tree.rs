//! A small YAML tree that keeps every node's position, built from the
//! parser's marked events. Only what caps.yaml needs is representable:
//! anchors, aliases and tags are refused (they are never needed, and
//! refusing aliases defeats alias-expansion bombs), as are non-string
//! mapping keys, several documents and deep nesting.

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::Errors;

/// Deepest nesting accepted; caps.yaml needs about six levels.
const MAX_DEPTH: usize = 64;

/// A 1-based position in the YAML text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug)]
pub(crate) enum Node {
    Scalar {
        text: String,
        plain: bool,
        mark: Mark,
    },
    Seq {
        items: Vec<Node>,
        mark: Mark,
    },
    Map {
        entries: Vec<Entry>,
        mark: Mark,
    },
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub key: String,
    pub key_mark: Mark,
    pub value: Node,
}

/// An open collection while events stream in.
enum Frame {
    Seq {
        items: Vec<Node>,
        mark: Mark,
    },
    Map {
        entries: Vec<Entry>,
        mark: Mark,
        key: Option<(String, Mark)>,
    },
}

/// Outcome of feeding one event.
enum Step {
    Continue,
    Done,
    Abort,
}

struct Builder<'e> {
    stack: Vec<Frame>,
    root: Option<Node>,
    errs: &'e mut Errors,
}

/// Builds the tree of a single-document YAML text. `None` when the text is
/// not usable YAML (the reason is in `errs`) or holds no document.
pub(crate) fn build(yaml: &str, errs: &mut Errors) -> Option<Node> {
    let mut parser = Parser::new_from_str(yaml);
    let mut builder = Builder {
        stack: Vec::new(),
        root: None,
        errs,
    };
    loop {
        let (event, marker) = match parser.next_token() {
            Ok(next) => next,
            Err(e) => {
                let mark = to_mark(*e.marker());
                builder
                    .errs
                    .push("capabilities", mark, format!("invalid YAML: {}", e.info()));
                return None;
            }
        };
        match builder.feed(event, to_mark(marker)) {
            Step::Continue => {}
            Step::Done => return builder.root,
            Step::Abort => return None,
        }
    }
}

impl Node {
    pub(crate) fn mark(&self) -> Mark {
        match self {
            Node::Scalar { mark, .. } | Node::Seq { mark, .. } | Node::Map { mark, .. } => *mark,
        }
    }

    /// What the node is, for "expected …, found …" messages.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Node::Scalar { .. } if self.is_null() => "nothing",
            Node::Scalar { .. } => "a single value",
            Node::Seq { .. } => "a list",
            Node::Map { .. } => "a mapping",
        }
    }

    /// A YAML 1.2 core-schema null: empty, `~` or `null` written plain.
    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Node::Scalar { text, plain: true, .. }
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }
}

impl Builder<'_> {
    fn feed(&mut self, event: Event, mark: Mark) -> Step {
        match event {
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => Step::Continue,
            Event::StreamEnd => Step::Done,
            Event::DocumentStart => self.start_document(mark),
            Event::Alias(_) => self.refuse(mark, "aliases (*name) are not allowed in caps.yaml"),
            Event::Scalar(text, style, anchor, tag) => {
                if let Some(step) = self.refuse_decorations(mark, anchor, tag.is_some()) {
                    return step;
                }
                let plain = style == TScalarStyle::Plain;
                self.push_node(Node::Scalar { text, plain, mark })
            }
            Event::SequenceStart(anchor, tag) => self.open(
                mark,
                anchor,
                tag.is_some(),
                Frame::Seq {
                    items: Vec::new(),
                    mark,
                },
            ),
            Event::MappingStart(anchor, tag) => self.open(
                mark,
                anchor,
                tag.is_some(),
                Frame::Map {
                    entries: Vec::new(),
                    mark,
                    key: None,
                },
            ),
            Event::SequenceEnd | Event::MappingEnd => self.close(),
        }
    }

    fn start_document(&mut self, mark: Mark) -> Step {
        if self.root.is_some() {
            return self.refuse(mark, "only one YAML document is allowed");
        }
        Step::Continue
    }

    fn open(&mut self, mark: Mark, anchor: usize, tagged: bool, frame: Frame) -> Step {
        if let Some(step) = self.refuse_decorations(mark, anchor, tagged) {
            return step;
        }
        if self.stack.len() >= MAX_DEPTH {
            return self.refuse(mark, "nesting is deeper than 64 levels");
        }
        self.stack.push(frame);
        Step::Continue
    }

    fn close(&mut self) -> Step {
        let node = match self.stack.pop().expect("parser balances collection events") {
            Frame::Seq { items, mark } => Node::Seq { items, mark },
            Frame::Map { entries, mark, .. } => {
                // A block mapping's start event is marked after its first
                // key; point at the key instead.
                let mark = match entries.first() {
                    Some(e) if (e.key_mark.line, e.key_mark.col) < (mark.line, mark.col) => {
                        e.key_mark
                    }
                    _ => mark,
                };
                Node::Map { entries, mark }
            }
        };
        self.push_node(node)
    }

    fn push_node(&mut self, node: Node) -> Step {
        match self.stack.last_mut() {
            None if self.root.is_some() => {
                self.refuse(node.mark(), "only one YAML document is allowed")
            }
            None => {
                self.root = Some(node);
                Step::Continue
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                Step::Continue
            }
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                // Duplicate keys are kept here and reported by the loader,
                // which knows the field path.
                Some((key, key_mark)) => {
                    entries.push(Entry {
                        key,
                        key_mark,
                        value: node,
                    });
                    Step::Continue
                }
                None => match node {
                    Node::Scalar { text, mark, .. } => {
                        *key = Some((text, mark));
                        Step::Continue
                    }
                    other => self.refuse(other.mark(), "mapping keys must be plain strings"),
                },
            },
        }
    }

    /// Refuses anchors (`&name`) and tags (`!tag`): `Some(step)` when found.
    fn refuse_decorations(&mut self, mark: Mark, anchor: usize, tagged: bool) -> Option<Step> {
        if anchor != 0 {
            return Some(self.refuse(mark, "anchors (&name) are not allowed in caps.yaml"));
        }
        if tagged {
            return Some(self.refuse(mark, "tags (!tag) are not allowed in caps.yaml"));
        }
        None
    }

    fn refuse(&mut self, mark: Mark, message: &str) -> Step {
        self.errs.push("capabilities", mark, message.to_owned());
        Step::Abort
    }
}

fn to_mark(m: Marker) -> Mark {
    Mark {
        line: m.line(),
        col: m.col() + 1,
    }
}
