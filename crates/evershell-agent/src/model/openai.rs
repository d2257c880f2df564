//! OpenAI Chat Completions: request body and streaming decoder. Each event's
//! data is a `chat.completion.chunk` whose `choices[0].delta` carries content
//! and tool-call fragments (keyed by `index`); with
//! `stream_options.include_usage` a last chunk with empty `choices` carries
//! `usage`; the stream ends with `data: [DONE]` (provider API reference,
//! "Streaming").

use serde_json::{json, Value};

use super::{parse_tool_input, ModelError, ModelRequest, ModelTurn, ThinkingEffort, TurnDecoder};
use crate::conversation::{AssistantBlock, Message};
use crate::model::sse::SseEvent;

/// Decodes one streamed completion.
#[derive(Debug, Default)]
pub struct Decoder {
    text: String,
    /// Tool calls by their `index`.
    calls: Vec<PartialCall>,
    finish_reason: Option<String>,
    input_tokens: u64,
    output_tokens: u64,
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// The request body for `req`, with `stream: true` and usage reporting.
pub fn request_body(req: &ModelRequest<'_>) -> Value {
    let tools: Vec<Value> = req
        .tools
        .iter()
        .map(|t| {
            json!({"type": "function",
                   "function": {"name": t.name, "description": t.description, "parameters": t.schema}})
        })
        .collect();
    let mut messages = vec![json!({"role": "system", "content": req.system})];
    messages.extend(req.messages.iter().flat_map(message));
    let mut body = json!({
        "model": req.target.model,
        "messages": messages,
        "tools": tools,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if req.effort != ThinkingEffort::Off {
        body["reasoning_effort"] = json!(req.effort.as_str());
    }
    body
}

/// One conversation turn as Chat Completions messages (tool results become
/// one `tool` message each; an empty assistant turn becomes none).
fn message(message: &Message) -> Vec<Value> {
    match message {
        Message::User { text } => vec![json!({"role": "user", "content": text})],
        Message::Assistant { .. } => {
            let text = message.text();
            let calls: Vec<Value> = message
                .tool_calls()
                .iter()
                .map(|call| {
                    let arguments = match call.input {
                        Value::String(raw) => raw.clone(),
                        other => other.to_string(),
                    };
                    json!({"id": call.id, "type": "function",
                           "function": {"name": call.name, "arguments": arguments}})
                })
                .collect();
            if text.is_empty() && calls.is_empty() {
                return Vec::new();
            }
            let mut turn =
                json!({"role": "assistant", "content": (!text.is_empty()).then_some(text)});
            if !calls.is_empty() {
                turn["tool_calls"] = Value::Array(calls);
            }
            vec![turn]
        }
        Message::ToolResults { results } => results
            .iter()
            .map(|r| json!({"role": "tool", "tool_call_id": r.call_id, "content": r.content}))
            .collect(),
    }
}

impl TurnDecoder for Decoder {
    fn event(&mut self, event: SseEvent) -> Result<bool, ModelError> {
        if event.data.trim() == "[DONE]" {
            return Ok(true);
        }
        let chunk: Value = serde_json::from_str(&event.data)
            .map_err(|e| ModelError::Protocol(format!("chunk: invalid json: {e}")))?;
        if let Some(error) = chunk.get("error") {
            let text = |k: &str| error[k].as_str().map(str::to_owned);
            let code = text("code").or_else(|| text("type"));
            return Err(ModelError::Stream {
                code,
                message: text("message"),
            });
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.input_tokens = usage["prompt_tokens"].as_u64().unwrap_or(self.input_tokens);
            self.output_tokens = usage["completion_tokens"]
                .as_u64()
                .unwrap_or(self.output_tokens);
        }
        let choice = &chunk["choices"][0];
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish_reason = Some(reason.to_owned());
        }
        self.delta(&choice["delta"])?;
        Ok(false)
    }

    fn finish(self, complete: bool) -> Result<ModelTurn, ModelError> {
        // A stream cut after the finish reason lost at most the usage chunk.
        if !complete && self.finish_reason.is_none() {
            return Err(ModelError::Protocol(
                "stream ended before a finish reason".into(),
            ));
        }
        let mut blocks = Vec::new();
        if !self.text.is_empty() {
            blocks.push(AssistantBlock::Text { text: self.text });
        }
        blocks.extend(self.calls.into_iter().map(|call| AssistantBlock::ToolCall {
            id: call.id,
            name: call.name,
            input: parse_tool_input(&call.arguments),
        }));
        Ok(ModelTurn {
            message: Message::Assistant { blocks },
            stop_reason: self.finish_reason.unwrap_or_else(|| "unknown".into()),
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
        })
    }
}

impl Decoder {
    fn delta(&mut self, delta: &Value) -> Result<(), ModelError> {
        if let Some(text) = delta["content"].as_str() {
            self.text.push_str(text);
        }
        for fragment in delta["tool_calls"].as_array().into_iter().flatten() {
            let index = fragment["index"]
                .as_u64()
                .ok_or_else(|| ModelError::Protocol("tool call fragment without index".into()))?;
            let index = usize::try_from(index).expect("a tool call index fits in usize");
            if index >= self.calls.len() {
                self.calls.resize_with(index + 1, PartialCall::default);
            }
            let call = &mut self.calls[index];
            if let Some(id) = fragment["id"].as_str() {
                call.id = id.to_owned();
            }
            let function = &fragment["function"];
            if let Some(name) = function["name"].as_str() {
                call.name.push_str(name);
            }
            if let Some(arguments) = function["arguments"].as_str() {
                call.arguments.push_str(arguments);
            }
        }
        Ok(())
    }
}
