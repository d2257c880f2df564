//! The conversation: the provider-neutral record of what the user asked, what
//! the model answered and what the tools returned. It is stored in the session
//! and translated to each provider's wire format on every model call, so a
//! role may switch providers between tasks without losing the session.

use serde::{Deserialize, Serialize};

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    /// A task's description (and upload note), as the user's words.
    User { text: String },
    /// One model response.
    Assistant { blocks: Vec<AssistantBlock> },
    /// The results of the previous assistant turn's tool calls, one per call,
    /// in call order.
    ToolResults { results: Vec<ToolResult> },
}

/// One piece of a model response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AssistantBlock {
    Text {
        text: String,
    },
    ToolCall {
        id: String,
        name: String,
        /// The parsed arguments; the raw text as a JSON string when the model
        /// produced invalid JSON (the tool then reports the error).
        input: serde_json::Value,
    },
    /// Anthropic extended thinking; sent back verbatim (with its signature) in
    /// later requests, as the Messages API requires during tool use.
    Thinking {
        thinking: String,
        signature: String,
    },
    RedactedThinking {
        data: String,
    },
}

/// What one tool call returned to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    pub call_id: String,
    pub content: String,
    pub is_error: bool,
}

impl Message {
    /// The tool calls of an assistant turn, in order.
    pub fn tool_calls(&self) -> Vec<ToolCall<'_>> {
        let Message::Assistant { blocks } = self else {
            return Vec::new();
        };
        blocks
            .iter()
            .filter_map(|block| match block {
                AssistantBlock::ToolCall { id, name, input } => Some(ToolCall { id, name, input }),
                _ => None,
            })
            .collect()
    }

    /// The text of an assistant turn, its text blocks joined by blank lines.
    pub fn text(&self) -> String {
        let Message::Assistant { blocks } = self else {
            return String::new();
        };
        let texts: Vec<&str> = blocks
            .iter()
            .filter_map(|block| match block {
                AssistantBlock::Text { text } if !text.is_empty() => Some(text.as_str()),
                _ => None,
            })
            .collect();
        texts.join("\n\n")
    }
}

/// A borrowed view of one tool call.
#[derive(Debug, Clone, Copy)]
pub struct ToolCall<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub input: &'a serde_json::Value,
}
