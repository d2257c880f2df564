//! Model dispatch: one call of the loop sends the conversation to the role's
//! model and returns the assistant turn. Every provider is spoken with
//! streaming (server-sent events) and the body is decoded as it arrives, never
//! buffered whole. The agent sends no credential: the egress proxy adds it.

mod anthropic;
mod openai;
mod sse;

use std::path::Path;
use std::time::Duration;

use evershell_core::agent::ModelTarget;

use crate::conversation::Message;
use crate::tools::ToolSpec;
use sse::{SseDecoder, SseEvent};

/// How long to wait for a connection to the model (through the egress proxy).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the stream may stay silent; providers send `ping`s far more often
/// while a long answer is generated.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// How much of an error response is read to find its code.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// How much of a provider's error message goes into a task's reason.
const REASON_MESSAGE_LIMIT: usize = 300;

/// The wire formats the agent speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Messages API, `POST {base_url}/v1/messages`.
    Anthropic,
    /// Chat Completions, `POST {base_url}/chat/completions` (`base_url`
    /// includes `/v1`).
    OpenAi,
}

/// `thinking_effort` values a task may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThinkingEffort {
    Off,
    Low,
    Medium,
    High,
}

/// One model call's input.
pub struct ModelRequest<'a> {
    pub target: &'a ModelTarget,
    pub system: &'a str,
    pub messages: &'a [Message],
    pub tools: &'a [ToolSpec],
    pub effort: ThinkingEffort,
}

/// One model call's output.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelTurn {
    /// Always [`Message::Assistant`].
    pub message: Message,
    /// The provider's own stop reason (`end_turn`, `tool_use`, `stop`, …).
    pub stop_reason: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Why a model call produced no turn. None of these panics the agent: the
/// task ends `failed` with [`reason`](ModelError::reason).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model call: request failed")]
    Transport(#[source] reqwest::Error),
    #[error("model call: http status {status}")]
    Http {
        status: u16,
        code: Option<String>,
        message: Option<String>,
    },
    #[error("model call: the stream reported an error")]
    Stream {
        code: Option<String>,
        message: Option<String>,
    },
    #[error("model call: {0}")]
    Protocol(String),
}

/// A failure to build the HTTP client at start.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("ca file {path}: cannot read")]
    CaFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ca file {path}: not a PEM certificate")]
    CaPem {
        path: std::path::PathBuf,
        #[source]
        source: reqwest::Error,
    },
    #[error("model http client: cannot build")]
    Build(#[source] reqwest::Error),
}

/// The HTTP client for model calls, shared by every task.
#[derive(Clone)]
pub struct ModelClient {
    http: reqwest::Client,
}

/// What each provider's stream decoder implements.
trait TurnDecoder {
    /// Takes one event; `Ok(true)` once the turn is complete.
    fn event(&mut self, event: SseEvent) -> Result<bool, ModelError>;
    /// The turn, or why the stream did not make a whole one.
    fn finish(self, complete: bool) -> Result<ModelTurn, ModelError>;
}

impl Provider {
    /// The provider of a `ModelTarget.provider_kind`, when the agent speaks it.
    pub fn from_kind(kind: &str) -> Option<Provider> {
        match kind {
            "anthropic" => Some(Provider::Anthropic),
            "openai" => Some(Provider::OpenAi),
            _ => None,
        }
    }
}

impl ThinkingEffort {
    /// Parses a task's `thinking_effort`; absent means off.
    pub fn parse(value: Option<&str>) -> Option<ThinkingEffort> {
        match value {
            None | Some("off") => Some(ThinkingEffort::Off),
            Some("low") => Some(ThinkingEffort::Low),
            Some("medium") => Some(ThinkingEffort::Medium),
            Some("high") => Some(ThinkingEffort::High),
            Some(_) => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ThinkingEffort::Off => "off",
            ThinkingEffort::Low => "low",
            ThinkingEffort::Medium => "medium",
            ThinkingEffort::High => "high",
        }
    }
}

impl ModelError {
    /// The `reason` of a task this error ended: a stable prefix, then the
    /// status and the provider's (or the egress proxy's) error code, e.g.
    /// `model_http_error: status 403, code egress_denied: …`.
    pub fn reason(&self) -> String {
        match self {
            ModelError::Transport(error) => {
                format!("model_unreachable: {}", crate::error::Report(error))
            }
            ModelError::Http {
                status,
                code,
                message,
            } => {
                let code = code.as_deref().unwrap_or("unknown");
                with_message(
                    format!("model_http_error: status {status}, code {code}"),
                    message,
                )
            }
            ModelError::Stream { code, message } => {
                let code = code.as_deref().unwrap_or("unknown");
                with_message(format!("model_stream_error: code {code}"), message)
            }
            ModelError::Protocol(detail) => format!("model_protocol_error: {detail}"),
        }
    }
}

impl ModelClient {
    /// A client trusting the system store (which honours `SSL_CERT_FILE`)
    /// plus `ca_file` when given.
    pub fn new(ca_file: Option<&Path>) -> Result<ModelClient, ClientError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("evershell-agent/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT);
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|source| ClientError::CaFile {
                path: path.to_path_buf(),
                source,
            })?;
            let cert =
                reqwest::Certificate::from_pem(&pem).map_err(|source| ClientError::CaPem {
                    path: path.to_path_buf(),
                    source,
                })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(ClientError::Build)?;
        Ok(ModelClient { http })
    }

    /// Sends one streaming request and decodes the turn as it arrives.
    #[tracing::instrument(skip_all, fields(provider = ?provider, model = %request.target.model))]
    pub async fn complete(
        &self,
        provider: Provider,
        request: &ModelRequest<'_>,
    ) -> Result<ModelTurn, ModelError> {
        let base = request.target.base_url.trim_end_matches('/');
        let post = match provider {
            Provider::Anthropic => self
                .http
                .post(format!("{base}/v1/messages"))
                .header("anthropic-version", anthropic::API_VERSION),
            Provider::OpenAi => self.http.post(format!("{base}/chat/completions")),
        };
        let body = match provider {
            Provider::Anthropic => anthropic::request_body(request),
            Provider::OpenAi => openai::request_body(request),
        };
        let body = serde_json::to_vec(&body).expect("a request body always serialises");
        let response = post
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .body(body)
            .send()
            .await
            .map_err(ModelError::Transport)?;

        let response = check_status(response).await?;
        match provider {
            Provider::Anthropic => read_stream(response, anthropic::Decoder::default()).await,
            Provider::OpenAi => read_stream(response, openai::Decoder::default()).await,
        }
    }
}

/// Passes a success through; turns anything else into [`ModelError::Http`]
/// with the error code found in the (bounded) body.
async fn check_status(mut response: reqwest::Response) -> Result<reqwest::Response, ModelError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let mut body = Vec::new();
    while body.len() < ERROR_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let (code, message) = error_fields(&body);
    tracing::debug!(status = status.as_u16(), code = ?code, "model call refused");
    Err(ModelError::Http {
        status: status.as_u16(),
        code,
        message,
    })
}

/// Feeds the body to `decoder` chunk by chunk until the turn is complete.
async fn read_stream(
    mut response: reqwest::Response,
    mut decoder: impl TurnDecoder,
) -> Result<ModelTurn, ModelError> {
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !content_type.starts_with("text/event-stream") {
        return Err(ModelError::Protocol(format!(
            "expected an event stream, got content-type {content_type:?}"
        )));
    }

    let mut sse = SseDecoder::new();
    while let Some(chunk) = response.chunk().await.map_err(ModelError::Transport)? {
        let events = sse
            .push(&chunk)
            .map_err(|e| ModelError::Protocol(e.to_string()))?;
        for event in events {
            if decoder.event(event)? {
                return decoder.finish(true);
            }
        }
    }
    decoder.finish(false)
}

/// The error code and message of a provider or proxy error body:
/// Anthropic `{"type":"error","error":{"type","message"}}`, OpenAI
/// `{"error":{"code","type","message"}}`, the egress proxy
/// `{"error":{"code","reason"}}`.
fn error_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        let text = String::from_utf8_lossy(body).trim().to_owned();
        return (None, (!text.is_empty()).then_some(text));
    };
    let error = value.get("error").unwrap_or(&value);
    let text = |key: &str| error.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let code = text("code").or_else(|| text("type"));
    let message = text("message").or_else(|| text("reason"));
    (code, message)
}

fn with_message(head: String, message: &Option<String>) -> String {
    match message {
        Some(message) => format!("{head}: {}", truncate_chars(message, REASON_MESSAGE_LIMIT)),
        None => head,
    }
}

fn truncate_chars(text: &str, limit: usize) -> &str {
    match text.char_indices().nth(limit) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// Parses a tool call's accumulated argument text; invalid JSON is kept as a
/// string so the tool can report it to the model.
fn parse_tool_input(raw: &str) -> serde_json::Value {
    if raw.trim().is_empty() {
        return serde_json::json!({});
    }
    serde_json::from_str(raw).unwrap_or_else(|_| serde_json::Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests;
