use http::HeaderValue;

use super::*;

fn tap(content_type: &'static str) -> UsageTap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    UsageTap::for_response(&headers).expect("a readable type")
}

fn read(content_type: &'static str, body: &str, piece: usize) -> Usage {
    let mut tap = tap(content_type);
    for chunk in body.as_bytes().chunks(piece) {
        tap.data(chunk);
    }
    tap.finish()
}

fn counts(input: u64, output: u64) -> Usage {
    Usage {
        input_tokens: Some(input),
        output_tokens: Some(output),
    }
}

const ANTHROPIC_SSE: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",",
    "\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
    "event: content_block_delta\n",
    "data: {\"type\":\"content_block_delta\",",
    "\"delta\":{\"text\":\"usage: {\\\"output_tokens\\\": 9}\"}}\n\n",
    "event: message_delta\n",
    "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n",
    "event: message_stop\n",
    "data: {\"type\":\"message_stop\"}\n\n",
);

#[test]
fn anthropic_streams_are_read_from_message_start_and_the_last_message_delta() {
    for piece in [1, 3, 10, 1000] {
        assert_eq!(
            read("text/event-stream", ANTHROPIC_SSE, piece),
            counts(25, 15),
            "{piece}"
        );
    }
}

#[test]
fn crlf_line_ends_and_multi_line_data_are_understood() {
    let body = "data: {\"usage\":\r\ndata: {\"prompt_tokens\":4,\r\n\
                data: \"completion_tokens\":6}}\r\n\r\ndata: [DONE]\r\n\r\n";
    for piece in [1, 2, 5, 1000] {
        assert_eq!(read("text/event-stream", body, piece), counts(4, 6));
    }
}

#[test]
fn openai_chat_streams_count_the_final_usage_chunk() {
    let body = concat!(
        "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n",
        "data: {\"choices\":[],",
        "\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":22}}\n\n",
        "data: [DONE]\n\n",
    );
    assert_eq!(
        read("text/event-stream; charset=utf-8", body, 7),
        counts(11, 22)
    );
}

#[test]
fn openai_responses_streams_count_the_completed_event() {
    let body = "event: response.created\n\
                data: {\"type\":\"response.created\",\"response\":{\"usage\":null}}\n\n\
                event: response.completed\n\
                data: {\"type\":\"response.completed\",\"response\":{\"output\":[],\
                \"usage\":{\"input_tokens\":30,\"output_tokens\":40}}}\n\n";
    assert_eq!(read("text/event-stream", body, 9), counts(30, 40));
}

#[test]
fn json_bodies_of_each_provider_are_read() {
    let anthropic = r#"{"content":[],"usage":{"input_tokens":3,"output_tokens":5}}"#;
    assert_eq!(read("application/json", anthropic, 4), counts(3, 5));
    let openai =
        r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":9,"total_tokens":16}}"#;
    assert_eq!(read("application/json", openai, 4), counts(7, 9));
    let gemini = r#"[{"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":1}},
                     {"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":8}}]"#;
    assert_eq!(
        read("application/json; charset=UTF-8", gemini, 4),
        counts(2, 8)
    );
}

#[test]
fn a_last_event_without_its_blank_line_still_counts() {
    let body = "data: {\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}";
    assert_eq!(read("text/event-stream", body, 3), counts(1, 2));
}

#[test]
fn encoded_or_untyped_responses_get_no_tap() {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    assert!(UsageTap::for_response(&headers).is_none());
    headers.remove(CONTENT_ENCODING);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    assert!(UsageTap::for_response(&headers).is_none());
    assert!(UsageTap::for_response(&HeaderMap::new()).is_none());
}
