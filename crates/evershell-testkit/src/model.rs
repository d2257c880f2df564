//! A scripted model server: an honest stand-in for a hosted LLM. It speaks the
//! Anthropic Messages wire format (`POST …/v1/messages`, streaming SSE or a
//! JSON message) and OpenAI Chat Completions (`POST …/chat/completions`,
//! streaming chunks or a JSON completion), over HTTP/1.1 or h2, with or
//! without TLS.
//!
//! What it answers is a script: the step whose index is the number of
//! assistant messages already in the request's `messages`. The answer is a
//! function of the request alone, so a retried or resumed conversation gets
//! the same reply; past the end of the script it answers with the text
//! "done". Usage is reported as a real provider would: input tokens from the
//! request size (a byte count / 4 heuristic), output tokens from the answer's
//! size, both deterministic.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the server listens and what it answers.
pub struct ModelServerConfig {
    /// Port 0 picks a free port; see [`ScriptedModelServer::addr`].
    pub addr: SocketAddr,
    /// Serve TLS with this config (e.g. `testkit::tls::server_config`);
    /// plain HTTP when `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// When set, a request without this key (`x-api-key` for Anthropic,
    /// `Authorization: Bearer` for OpenAI) gets `401` in the provider's error
    /// format.
    pub expected_api_key: Option<String>,
    pub script: Vec<ScriptStep>,
}

/// One scripted assistant turn.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptStep {
    /// Tool calls `(tool name, input object)`, in order; stop reason
    /// `tool_use` / `tool_calls`.
    ToolCalls(Vec<(String, Value)>),
    /// A final text; stop reason `end_turn` / `stop`.
    Text(String),
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub path: String,
    /// Lower-case names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// `null` when the body was not JSON.
    pub body: Value,
}

/// A running server; it stops accepting when dropped.
pub struct ScriptedModelServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

struct Shared {
    script: Vec<ScriptStep>,
    expected_api_key: Option<String>,
    requests: Mutex<Vec<RecordedRequest>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Anthropic,
    OpenAi,
}

/// A response body of ready chunks, one per SSE event, so a streaming client
/// sees the events as separate frames. Streams are sent without a length
/// (chunked on HTTP/1.1), as providers send them.
struct Chunks {
    chunks: VecDeque<Bytes>,
    sized: bool,
}

/// Binds `cfg.addr` and serves until the returned server is dropped.
pub async fn start(cfg: ModelServerConfig) -> io::Result<ScriptedModelServer> {
    let listener = TcpListener::bind(cfg.addr).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        script: cfg.script,
        expected_api_key: cfg.expected_api_key,
        requests: Mutex::new(Vec::new()),
    });
    let tls = cfg.tls.map(tokio_rustls::TlsAcceptor::from);
    let accept = tokio::spawn(accept_loop(listener, tls, Arc::clone(&shared)));
    Ok(ScriptedModelServer {
        addr,
        shared,
        accept,
    })
}

impl ScriptedModelServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared
            .requests
            .lock()
            .expect("request log lock is never poisoned")
            .clone()
    }
}

impl Drop for ScriptedModelServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(serve_connection(tcp, tls.clone(), Arc::clone(&shared)));
    }
}

async fn serve_connection(
    tcp: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
) {
    let service = service_fn(move |req| handle(Arc::clone(&shared), req));
    let builder = auto::Builder::new(TokioExecutor::new());
    let served = match tls {
        Some(acceptor) => match acceptor.accept(tcp).await {
            Ok(stream) => {
                builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await
            }
            Err(error) => {
                tracing::debug!(%error, "scripted model: tls handshake failed");
                return;
            }
        },
        None => builder.serve_connection(TokioIo::new(tcp), service).await,
    };
    if let Err(error) = served {
        tracing::debug!(%error, "scripted model: connection ended with an error");
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Chunks>, Infallible> {
    let path = req.uri().path().to_owned();
    let is_post = req.method() == http::Method::POST;
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let raw = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    shared
        .requests
        .lock()
        .expect("request log lock is never poisoned")
        .push(RecordedRequest {
            path: path.clone(),
            headers: headers.clone(),
            body: body.clone(),
        });

    let wire = if path.ends_with("/v1/messages") {
        Wire::Anthropic
    } else if path.ends_with("/chat/completions") {
        Wire::OpenAi
    } else {
        return Ok(error(
            Wire::Anthropic,
            StatusCode::NOT_FOUND,
            "not_found_error",
            "no such route",
        ));
    };
    if !is_post {
        return Ok(error(
            wire,
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request_error",
            "use POST",
        ));
    }
    if !authorised(&shared, wire, &headers) {
        return Ok(unauthorised(wire));
    }
    let Some(messages) = body["messages"].as_array() else {
        let message = "the body must be JSON with a `messages` array";
        return Ok(error(
            wire,
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            message,
        ));
    };

    let turn = messages.iter().filter(|m| m["role"] == "assistant").count();
    let step = shared
        .script
        .get(turn)
        .cloned()
        .unwrap_or_else(|| ScriptStep::Text("done".into()));
    let answer = Answer {
        turn,
        step,
        model: body["model"].as_str().unwrap_or("scripted").to_owned(),
        input_tokens: (raw.len() as u64 / 4).max(1),
    };
    let stream = body["stream"].as_bool().unwrap_or(false);
    Ok(match (wire, stream) {
        (Wire::Anthropic, true) => sse(answer.anthropic_events()),
        (Wire::Anthropic, false) => json_response(StatusCode::OK, &answer.anthropic_message()),
        (Wire::OpenAi, true) => {
            let usage = body["stream_options"]["include_usage"]
                .as_bool()
                .unwrap_or(false);
            sse(answer.openai_chunks(usage))
        }
        (Wire::OpenAi, false) => json_response(StatusCode::OK, &answer.openai_completion()),
    })
}

fn authorised(shared: &Shared, wire: Wire, headers: &[(String, String)]) -> bool {
    let Some(key) = &shared.expected_api_key else {
        return true;
    };
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match wire {
        Wire::Anthropic => header("x-api-key") == Some(key.as_str()),
        Wire::OpenAi => header("authorization") == Some(format!("Bearer {key}").as_str()),
    }
}

/// `401` as each provider sends it.
fn unauthorised(wire: Wire) -> Response<Chunks> {
    match wire {
        Wire::Anthropic => error(
            wire,
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
        ),
        Wire::OpenAi => json_response(
            StatusCode::UNAUTHORIZED,
            &json!({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error",
                              "param": null, "code": "invalid_api_key"}}),
        ),
    }
}

fn error(wire: Wire, status: StatusCode, kind: &str, message: &str) -> Response<Chunks> {
    let body = match wire {
        Wire::Anthropic => json!({"type": "error", "error": {"type": kind, "message": message}}),
        Wire::OpenAi => {
            json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
        }
    };
    json_response(status, &body)
}

fn json_response(status: StatusCode, body: &Value) -> Response<Chunks> {
    let bytes = Bytes::from(serde_json::to_vec(body).expect("a json value serialises"));
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Chunks {
            chunks: VecDeque::from([bytes]),
            sized: true,
        })
        .expect("a static response is valid")
}

fn sse(events: Vec<String>) -> Response<Chunks> {
    Response::builder()
        .header(http::header::CONTENT_TYPE, "text/event-stream")
        .header(http::header::CACHE_CONTROL, "no-cache")
        .body(Chunks {
            chunks: events.into_iter().map(Bytes::from).collect(),
            sized: false,
        })
        .expect("a static response is valid")
}

/// One scripted turn, ready to be rendered in either wire format.
struct Answer {
    turn: usize,
    step: ScriptStep,
    model: String,
    input_tokens: u64,
}

impl Answer {
    fn output_tokens(&self) -> u64 {
        let size = match &self.step {
            ScriptStep::Text(text) => text.len(),
            ScriptStep::ToolCalls(calls) => calls
                .iter()
                .map(|(n, i)| n.len() + i.to_string().len())
                .sum(),
        };
        1 + size as u64 / 4
    }

    fn call_id(&self, prefix: &str, index: usize) -> String {
        format!("{prefix}_scripted_{}_{index}", self.turn)
    }

    fn anthropic_stop_reason(&self) -> &'static str {
        match self.step {
            ScriptStep::Text(_) => "end_turn",
            ScriptStep::ToolCalls(_) => "tool_use",
        }
    }

    fn anthropic_content(&self) -> Vec<Value> {
        match &self.step {
            ScriptStep::Text(text) => vec![json!({"type": "text", "text": text})],
            ScriptStep::ToolCalls(calls) => calls
                .iter()
                .enumerate()
                .map(|(i, (name, input))| {
                    json!({"type": "tool_use", "id": self.call_id("toolu", i), "name": name, "input": input})
                })
                .collect(),
        }
    }

    fn anthropic_message(&self) -> Value {
        json!({
            "id": format!("msg_scripted_{}", self.turn), "type": "message", "role": "assistant",
            "model": self.model, "content": self.anthropic_content(),
            "stop_reason": self.anthropic_stop_reason(), "stop_sequence": null,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens()},
        })
    }

    /// The Messages streaming sequence: `message_start`, `ping`, per block
    /// start/deltas/stop, `message_delta`, `message_stop`.
    fn anthropic_events(&self) -> Vec<String> {
        let mut start = self.anthropic_message();
        start["content"] = json!([]);
        start["stop_reason"] = Value::Null;
        start["usage"]["output_tokens"] = json!(1);
        let mut events = vec![
            event(
                "message_start",
                &json!({"type": "message_start", "message": start}),
            ),
            event("ping", &json!({"type": "ping"})),
        ];
        for (index, block) in self.anthropic_content().into_iter().enumerate() {
            let (empty, delta_kind, field, full) = match block["type"].as_str() {
                Some("text") => (
                    json!({"type": "text", "text": ""}),
                    "text_delta",
                    "text",
                    block["text"].as_str().unwrap_or_default().to_owned(),
                ),
                _ => {
                    let mut empty = block.clone();
                    empty["input"] = json!({});
                    (
                        empty,
                        "input_json_delta",
                        "partial_json",
                        block["input"].to_string(),
                    )
                }
            };
            events.push(event(
                "content_block_start",
                &json!({"type": "content_block_start", "index": index, "content_block": empty}),
            ));
            for piece in pieces(&full) {
                events.push(event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta",
                    "index": index, "delta": {"type": delta_kind, field: piece}}),
                ));
            }
            events.push(event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            ));
        }
        events.push(event(
            "message_delta",
            &json!({"type": "message_delta",
            "delta": {"stop_reason": self.anthropic_stop_reason(), "stop_sequence": null},
            "usage": {"output_tokens": self.output_tokens()}}),
        ));
        events.push(event("message_stop", &json!({"type": "message_stop"})));
        events
    }

    fn openai_finish_reason(&self) -> &'static str {
        match self.step {
            ScriptStep::Text(_) => "stop",
            ScriptStep::ToolCalls(_) => "tool_calls",
        }
    }

    fn openai_usage(&self) -> Value {
        let output = self.output_tokens();
        json!({"prompt_tokens": self.input_tokens, "completion_tokens": output,
               "total_tokens": self.input_tokens + output})
    }

    fn openai_completion(&self) -> Value {
        let (content, calls) = match &self.step {
            ScriptStep::Text(text) => (json!(text), None),
            ScriptStep::ToolCalls(calls) => {
                let calls: Vec<Value> = calls
                    .iter()
                    .enumerate()
                    .map(|(i, (name, input))| {
                        json!({"id": self.call_id("call", i), "type": "function",
                           "function": {"name": name, "arguments": input.to_string()}})
                    })
                    .collect();
                (Value::Null, Some(calls))
            }
        };
        let mut message = json!({"role": "assistant", "content": content});
        if let Some(calls) = calls {
            message["tool_calls"] = json!(calls);
        }
        json!({
            "id": format!("chatcmpl-scripted-{}", self.turn), "object": "chat.completion",
            "created": 0, "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.openai_finish_reason()}],
            "usage": self.openai_usage(),
        })
    }

    /// Chat Completions chunks: the role, content or tool-call fragments, the
    /// finish reason, the usage chunk when asked for, then `[DONE]`.
    fn openai_chunks(&self, include_usage: bool) -> Vec<String> {
        let chunk = |delta: Value, finish: Value| {
            data(&json!({"id": format!("chatcmpl-scripted-{}", self.turn),
                "object": "chat.completion.chunk", "created": 0, "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))
        };
        let mut chunks = vec![chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )];
        match &self.step {
            ScriptStep::Text(text) => {
                chunks.extend(
                    pieces(text)
                        .into_iter()
                        .map(|p| chunk(json!({"content": p}), Value::Null)),
                );
            }
            ScriptStep::ToolCalls(calls) => {
                for (index, (name, input)) in calls.iter().enumerate() {
                    chunks.push(chunk(
                        json!({"tool_calls": [{"index": index, "id": self.call_id("call", index),
                        "type": "function", "function": {"name": name, "arguments": ""}}]}),
                        Value::Null,
                    ));
                    for piece in pieces(&input.to_string()) {
                        chunks.push(chunk(
                            json!({"tool_calls": [{"index": index,
                            "function": {"arguments": piece}}]}),
                            Value::Null,
                        ));
                    }
                }
            }
        }
        chunks.push(chunk(json!({}), json!(self.openai_finish_reason())));
        if include_usage {
            chunks.push(data(
                &json!({"id": format!("chatcmpl-scripted-{}", self.turn),
                "object": "chat.completion.chunk", "created": 0, "model": self.model,
                "choices": [], "usage": self.openai_usage()}),
            ));
        }
        chunks.push("data: [DONE]\n\n".to_owned());
        chunks
    }
}

fn event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

fn data(data: &Value) -> String {
    format!("data: {data}\n\n")
}

/// `text` split into up to three pieces on character boundaries, as a
/// provider streams a long value in several deltas.
fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let size = chars.len().div_ceil(3);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.chunks.pop_front().map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        let remaining = self.chunks.iter().map(|c| c.len() as u64).sum();
        if self.sized {
            SizeHint::with_exact(remaining)
        } else {
            let mut hint = SizeHint::new();
            hint.set_lower(remaining);
            hint
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn server(key: Option<&str>) -> ScriptedModelServer {
        let script = vec![
            ScriptStep::ToolCalls(vec![("bash".into(), json!({"command": "ls"}))]),
            ScriptStep::Text("finished".into()),
        ];
        let addr = "127.0.0.1:0".parse().expect("a literal address");
        let cfg = ModelServerConfig {
            addr,
            tls: None,
            expected_api_key: key.map(Into::into),
            script,
        };
        start(cfg).await.expect("loopback bind")
    }

    /// One HTTP/1.1 exchange; returns the status code and the body.
    async fn post(addr: SocketAddr, path: &str, header: &str, body: &Value) -> (u16, String) {
        let body = body.to_string();
        let mut tcp = TcpStream::connect(addr).await.expect("server listens");
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{header}\
                            content-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        tcp.write_all(format!("{head}{body}").as_bytes())
            .await
            .expect("write");
        let mut response = String::new();
        tcp.read_to_string(&mut response).await.expect("read");
        let status = response[9..12].parse().expect("status code");
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    #[tokio::test]
    async fn answers_the_step_numbered_by_the_assistant_turns_in_the_request() {
        let server = server(None).await;
        let one_turn = json!({"model": "m", "messages": [
            {"role": "user", "content": "go"}, {"role": "assistant", "content": "x"}]});
        let (status, body) = post(server.addr(), "/v1/messages", "", &one_turn).await;
        assert_eq!(status, 200);
        let message: Value = serde_json::from_str(&body).expect("a json message");
        assert_eq!(message["content"][0]["text"], "finished");
        assert_eq!(message["stop_reason"], "end_turn");
        assert!(message["usage"]["input_tokens"].as_u64().expect("usage") > 0);

        let three = json!({"model": "m", "messages": [{"role": "assistant"}, {"role": "assistant"},
                                                      {"role": "assistant"}]});
        let (_, body) = post(server.addr(), "/v1/chat/completions", "", &three).await;
        assert!(body.contains("\"content\":\"done\""), "{body}");
        assert_eq!(server.requests().len(), 2);
    }

    #[tokio::test]
    async fn refuses_a_missing_key_in_each_providers_error_format() {
        let server = server(Some("sk-test")).await;
        let request = json!({"model": "m", "messages": [], "stream": true});
        let (status, body) = post(server.addr(), "/v1/messages", "", &request).await;
        assert_eq!(
            (status, body.contains("authentication_error")),
            (401, true),
            "{body}"
        );
        let (status, body) = post(server.addr(), "/v1/chat/completions", "", &request).await;
        assert_eq!(
            (status, body.contains("invalid_api_key")),
            (401, true),
            "{body}"
        );
        let bearer = "authorization: Bearer sk-test\r\n";
        let (status, body) = post(server.addr(), "/v1/chat/completions", bearer, &request).await;
        assert_eq!(status, 200);
        assert!(body.contains("\"finish_reason\":\"tool_calls\"") && body.contains("data: [DONE]"));
    }
}
