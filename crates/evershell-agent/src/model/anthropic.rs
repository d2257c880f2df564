//! The Anthropic Messages API: request body and streaming decoder.
//! Event sequence (provider documentation, "Streaming Messages"):
//! `message_start`, then per content block `content_block_start`,
//! `content_block_delta`*, `content_block_stop`; then `message_delta` (stop
//! reason, cumulative usage) and `message_stop`; `ping` and `error` anywhere.

use serde_json::{json, Value};

use super::{parse_tool_input, ModelError, ModelRequest, ModelTurn, ThinkingEffort, TurnDecoder};
use crate::conversation::{AssistantBlock, Message};
use crate::model::sse::SseEvent;

/// The `anthropic-version` header value.
pub const API_VERSION: &str = "2023-06-01";

/// `max_tokens` of a call without extended thinking.
const MAX_OUTPUT_TOKENS: u64 = 8192;

/// Decodes one streamed message.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Content blocks by their `index`.
    blocks: Vec<Partial>,
    stop_reason: Option<String>,
    input_tokens: u64,
    output_tokens: u64,
}

#[derive(Debug, Default)]
enum Partial {
    #[default]
    Missing,
    Text(String),
    ToolUse {
        id: String,
        name: String,
        json: String,
    },
    Thinking {
        thinking: String,
        signature: String,
    },
    Redacted(String),
    /// A block type this agent does not use (server tools, citations, …).
    Other,
}

/// The request body for `req`, with `stream: true`.
pub fn request_body(req: &ModelRequest<'_>) -> Value {
    let tools: Vec<Value> = req
        .tools
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.schema}))
        .collect();
    let mut body = json!({
        "model": req.target.model,
        "max_tokens": MAX_OUTPUT_TOKENS,
        "system": req.system,
        "messages": messages(req.messages),
        "tools": tools,
        "stream": true,
    });
    if let Some(budget) = thinking_budget(req.effort) {
        // The thinking budget counts toward max_tokens and must stay below it.
        body["max_tokens"] = json!(budget + MAX_OUTPUT_TOKENS);
        body["thinking"] = json!({"type": "enabled", "budget_tokens": budget});
    }
    body
}

/// Extended-thinking token budget per effort; the API's minimum is 1024.
fn thinking_budget(effort: ThinkingEffort) -> Option<u64> {
    match effort {
        ThinkingEffort::Off => None,
        ThinkingEffort::Low => Some(2048),
        ThinkingEffort::Medium => Some(8192),
        ThinkingEffort::High => Some(16384),
    }
}

/// The conversation as Messages API turns. Consecutive turns of one role
/// (tool results followed by the next task's words) are merged, tool results
/// first, as the API expects; empty assistant turns are dropped.
fn messages(conversation: &[Message]) -> Vec<Value> {
    let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
    for message in conversation {
        let (role, content) = match message {
            Message::User { text } => ("user", vec![json!({"type": "text", "text": text})]),
            Message::Assistant { blocks } => {
                ("assistant", blocks.iter().filter_map(block).collect())
            }
            Message::ToolResults { results } => {
                let content = results
                    .iter()
                    .map(|r| {
                        json!({"type": "tool_result", "tool_use_id": r.call_id,
                               "content": r.content, "is_error": r.is_error})
                    })
                    .collect();
                ("user", content)
            }
        };
        if content.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last_role, last)) if *last_role == role => last.extend(content),
            _ => turns.push((role, content)),
        }
    }
    turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

fn block(block: &AssistantBlock) -> Option<Value> {
    Some(match block {
        // The API rejects empty text blocks.
        AssistantBlock::Text { text } if text.is_empty() => return None,
        AssistantBlock::Text { text } => json!({"type": "text", "text": text}),
        AssistantBlock::ToolCall { id, name, input } => {
            let input = if input.is_object() {
                input.clone()
            } else {
                json!({})
            };
            json!({"type": "tool_use", "id": id, "name": name, "input": input})
        }
        AssistantBlock::Thinking {
            thinking,
            signature,
        } => {
            json!({"type": "thinking", "thinking": thinking, "signature": signature})
        }
        AssistantBlock::RedactedThinking { data } => {
            json!({"type": "redacted_thinking", "data": data})
        }
    })
}

impl TurnDecoder for Decoder {
    fn event(&mut self, event: SseEvent) -> Result<bool, ModelError> {
        let data: Value = serde_json::from_str(&event.data).map_err(|e| {
            ModelError::Protocol(format!("event {:?}: invalid json: {e}", event.event))
        })?;
        match data["type"].as_str().unwrap_or_default() {
            "message_start" => self.usage(&data["message"]["usage"]),
            "content_block_start" => {
                let slot = self.slot(&data)?;
                *slot = start_block(&data["content_block"]);
            }
            "content_block_delta" => {
                let slot = self.slot(&data)?;
                apply_delta(slot, &data["delta"]);
            }
            "message_delta" => {
                if let Some(reason) = data["delta"]["stop_reason"].as_str() {
                    self.stop_reason = Some(reason.to_owned());
                }
                self.usage(&data["usage"]);
            }
            "message_stop" => return Ok(true),
            "error" => {
                let text = |k: &str| data["error"][k].as_str().map(str::to_owned);
                return Err(ModelError::Stream {
                    code: text("type"),
                    message: text("message"),
                });
            }
            // `ping`, `content_block_stop` and future event types.
            _ => {}
        }
        Ok(false)
    }

    fn finish(self, complete: bool) -> Result<ModelTurn, ModelError> {
        if !complete {
            return Err(ModelError::Protocol(
                "stream ended before message_stop".into(),
            ));
        }
        let blocks = self
            .blocks
            .into_iter()
            .filter_map(Partial::into_block)
            .collect();
        Ok(ModelTurn {
            message: Message::Assistant { blocks },
            stop_reason: self.stop_reason.unwrap_or_else(|| "unknown".into()),
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
        })
    }
}

impl Decoder {
    /// The block a `content_block_*` event addresses, created when new.
    fn slot(&mut self, data: &Value) -> Result<&mut Partial, ModelError> {
        let index = data["index"]
            .as_u64()
            .ok_or_else(|| ModelError::Protocol("content block event without index".into()))?;
        let index = usize::try_from(index).expect("a block index fits in usize");
        if index >= self.blocks.len() {
            self.blocks.resize_with(index + 1, Partial::default);
        }
        Ok(&mut self.blocks[index])
    }

    /// Usage appears in `message_start` and (cumulatively) in
    /// `message_delta`; input counts cached prompt tokens too.
    fn usage(&mut self, usage: &Value) {
        let count = |key: &str| usage[key].as_u64();
        let cached = count("cache_creation_input_tokens").unwrap_or(0)
            + count("cache_read_input_tokens").unwrap_or(0);
        if let Some(input) = count("input_tokens") {
            self.input_tokens = self.input_tokens.max(input + cached);
        }
        if let Some(output) = count("output_tokens") {
            self.output_tokens = self.output_tokens.max(output);
        }
    }
}

fn start_block(block: &Value) -> Partial {
    let text = |key: &str| block[key].as_str().unwrap_or_default().to_owned();
    match block["type"].as_str().unwrap_or_default() {
        "text" => Partial::Text(text("text")),
        "tool_use" => Partial::ToolUse {
            id: text("id"),
            name: text("name"),
            json: String::new(),
        },
        "thinking" => Partial::Thinking {
            thinking: text("thinking"),
            signature: text("signature"),
        },
        "redacted_thinking" => Partial::Redacted(text("data")),
        _ => Partial::Other,
    }
}

fn apply_delta(slot: &mut Partial, delta: &Value) {
    let text = delta["text"].as_str();
    let json = delta["partial_json"].as_str();
    let thought = delta["thinking"].as_str();
    let signature = delta["signature"].as_str();
    match (slot, delta["type"].as_str().unwrap_or_default()) {
        (Partial::Text(buf), "text_delta") => buf.push_str(text.unwrap_or_default()),
        (Partial::ToolUse { json: buf, .. }, "input_json_delta") => {
            buf.push_str(json.unwrap_or_default());
        }
        (Partial::Thinking { thinking, .. }, "thinking_delta") => {
            thinking.push_str(thought.unwrap_or_default());
        }
        (Partial::Thinking { signature: buf, .. }, "signature_delta") => {
            buf.push_str(signature.unwrap_or_default());
        }
        (_, kind) => tracing::trace!(kind, "ignored content block delta"),
    }
}

impl Partial {
    fn into_block(self) -> Option<AssistantBlock> {
        match self {
            Partial::Text(text) => Some(AssistantBlock::Text { text }),
            Partial::ToolUse { id, name, json } => Some(AssistantBlock::ToolCall {
                id,
                name,
                input: parse_tool_input(&json),
            }),
            Partial::Thinking {
                thinking,
                signature,
            } => Some(AssistantBlock::Thinking {
                thinking,
                signature,
            }),
            Partial::Redacted(data) => Some(AssistantBlock::RedactedThinking { data }),
            Partial::Missing | Partial::Other => None,
        }
    }
}
