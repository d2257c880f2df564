use evershell_core::agent::ModelTarget;
use serde_json::{json, Value};

use super::*;
use crate::conversation::{AssistantBlock, Message, ToolResult};

fn decode(decoder: impl TurnDecoder, stream: &str) -> Result<ModelTurn, ModelError> {
    let mut decoder = decoder;
    let mut sse = SseDecoder::new();
    for event in sse.push(stream.as_bytes()).expect("short lines") {
        if decoder.event(event)? {
            return decoder.finish(true);
        }
    }
    decoder.finish(false)
}

fn target() -> ModelTarget {
    ModelTarget {
        provider_kind: "anthropic".into(),
        base_url: "https://models.invalid".into(),
        model: "m-1".into(),
    }
}

fn conversation() -> Vec<Message> {
    vec![
        Message::User {
            text: "first".into(),
        },
        Message::Assistant {
            blocks: vec![
                AssistantBlock::Thinking {
                    thinking: "hmm".into(),
                    signature: "sig".into(),
                },
                AssistantBlock::Text {
                    text: String::new(),
                },
                AssistantBlock::ToolCall {
                    id: "t1".into(),
                    name: "bash".into(),
                    input: json!({"command": "ls"}),
                },
            ],
        },
        Message::ToolResults {
            results: vec![ToolResult {
                call_id: "t1".into(),
                content: "a\n".into(),
                is_error: false,
            }],
        },
        Message::User {
            text: "second".into(),
        },
    ]
}

const ANTHROPIC_STREAM: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":",
    "{\"input_tokens\":10,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n",
    "event: ping\ndata: {\"type\":\"ping\"}\n\n",
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"let me\"}}\n\n",
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"s1\"}}\n\n",
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Look\"}}\n\n",
    "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"tu\",\"name\":\"bash\",\"input\":{}}}\n\n",
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"command\\\":\"}}\n\n",
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" \\\"ls\\\"}\"}}\n\n",
    "data: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":42}}\n\n",
    "data: {\"type\":\"message_stop\"}\n\n",
);

#[test]
fn decodes_an_anthropic_stream_with_thinking_text_and_a_tool_call() {
    let turn = decode(anthropic::Decoder::default(), ANTHROPIC_STREAM).expect("a whole turn");
    assert_eq!(turn.stop_reason, "tool_use");
    assert_eq!((turn.input_tokens, turn.output_tokens), (15, 42));
    let Message::Assistant { blocks } = &turn.message else {
        panic!("an assistant turn")
    };
    assert_eq!(
        blocks,
        &vec![
            AssistantBlock::Thinking {
                thinking: "let me".into(),
                signature: "s1".into()
            },
            AssistantBlock::Text {
                text: "Look".into()
            },
            AssistantBlock::ToolCall {
                id: "tu".into(),
                name: "bash".into(),
                input: json!({"command": "ls"})
            },
        ]
    );
}

#[test]
fn an_anthropic_stream_cut_before_message_stop_is_an_error() {
    let cut = &ANTHROPIC_STREAM[..ANTHROPIC_STREAM
        .find("data: {\"type\":\"message_delta\"")
        .expect("there")];
    let error = decode(anthropic::Decoder::default(), cut).expect_err("incomplete");
    assert!(
        error.reason().starts_with("model_protocol_error"),
        "{}",
        error.reason()
    );
}

#[test]
fn an_anthropic_error_event_names_its_type() {
    let stream = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}\n\n";
    let error = decode(anthropic::Decoder::default(), stream).expect_err("error event");
    assert_eq!(
        error.reason(),
        "model_stream_error: code overloaded_error: busy"
    );
}

#[test]
fn decodes_openai_chunks_with_fragmented_tool_calls_and_usage() {
    let stream = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c0\",\"function\":{\"name\":\"read_file\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"path\\\":\\\"a\\\"}\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"c1\",\"function\":{\"name\":\"bash\",\"arguments\":\"{oops\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\n",
        "data: [DONE]\n\n",
    );
    let turn = decode(openai::Decoder::default(), stream).expect("a whole turn");
    assert_eq!(
        (
            turn.stop_reason.as_str(),
            turn.input_tokens,
            turn.output_tokens
        ),
        ("tool_calls", 7, 3)
    );
    let Message::Assistant { blocks } = &turn.message else {
        panic!("an assistant turn")
    };
    assert_eq!(
        blocks,
        &vec![
            AssistantBlock::Text { text: "Hi".into() },
            AssistantBlock::ToolCall {
                id: "c0".into(),
                name: "read_file".into(),
                input: json!({"path": "a"})
            },
            AssistantBlock::ToolCall {
                id: "c1".into(),
                name: "bash".into(),
                input: json!("{oops")
            },
        ]
    );
}

#[test]
fn anthropic_body_merges_tool_results_with_the_next_task_and_maps_effort() {
    let messages = conversation();
    let request = ModelRequest {
        target: &target(),
        system: "sys",
        messages: &messages,
        tools: &crate::tools::specs(),
        effort: ThinkingEffort::High,
    };
    let body = anthropic::request_body(&request);
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 16384})
    );
    assert!(body["max_tokens"].as_u64().expect("set") > 16384);
    let roles: Vec<&str> = body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["role"].as_str().expect("role"))
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    let assistant = &body["messages"][1]["content"];
    assert_eq!(
        assistant.as_array().expect("blocks").len(),
        2,
        "empty text dropped: {assistant}"
    );
    assert_eq!(assistant[0]["signature"], "sig");
    let last = &body["messages"][2]["content"];
    assert_eq!(
        (last[0]["type"].as_str(), last[1]["text"].as_str()),
        (Some("tool_result"), Some("second"))
    );
    assert_eq!(
        body["tools"][0]["input_schema"]["required"],
        json!(["command"])
    );
}

#[test]
fn openai_body_has_a_system_message_tool_messages_and_reasoning_effort() {
    let messages = conversation();
    let request = ModelRequest {
        target: &target(),
        system: "sys",
        messages: &messages,
        tools: &crate::tools::specs(),
        effort: ThinkingEffort::Low,
    };
    let body = openai::request_body(&request);
    assert_eq!(body["reasoning_effort"], "low");
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    let roles: Vec<&str> = body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["role"].as_str().expect("role"))
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "user"]);
    let call = &body["messages"][2]["tool_calls"][0];
    assert_eq!(call["function"]["arguments"], "{\"command\":\"ls\"}");
    assert_eq!(body["messages"][2]["content"], Value::Null);
    assert_eq!(body["messages"][3]["tool_call_id"], "t1");
    let off = openai::request_body(&ModelRequest {
        effort: ThinkingEffort::Off,
        ..request
    });
    assert!(off.get("reasoning_effort").is_none());
}

#[test]
fn error_bodies_of_providers_and_the_egress_proxy_yield_their_code() {
    let anthropic = br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
    let openai = br#"{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}"#;
    let proxy =
        br#"{"error":{"code":"egress_denied","reason":"no rule admits POST /v1/messages"}}"#;
    assert_eq!(
        error_fields(anthropic),
        (
            Some("authentication_error".into()),
            Some("invalid x-api-key".into())
        )
    );
    assert_eq!(error_fields(openai).0.as_deref(), Some("invalid_api_key"));
    assert_eq!(
        error_fields(b"upstream down"),
        (None, Some("upstream down".into()))
    );

    let (code, message) = error_fields(proxy);
    let error = ModelError::Http {
        status: 403,
        code,
        message,
    };
    assert_eq!(
        error.reason(),
        "model_http_error: status 403, code egress_denied: no rule admits POST /v1/messages"
    );
}

#[test]
fn parses_only_the_known_thinking_efforts() {
    assert_eq!(ThinkingEffort::parse(None), Some(ThinkingEffort::Off));
    assert_eq!(
        ThinkingEffort::parse(Some("medium")),
        Some(ThinkingEffort::Medium)
    );
    assert_eq!(ThinkingEffort::parse(Some("max")), None);
    assert_eq!(Provider::from_kind("gemini"), None);
}
