//! Request extractors whose rejections use the error envelope: a malformed
//! body, query or path parameter is a `400 validation_error` naming what is
//! wrong, an oversized body a `413 payload_too_large`. Handlers take these,
//! never axum's own extractors, whose rejections are plain text.

use std::sync::Arc;

use axum::extract::path::ErrorKind;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::Ctx;

/// JSON body; unknown fields are rejected by the target types themselves
/// (`#[serde(deny_unknown_fields)]`). A body over the configured limit
/// ([`crate::ServerConfig::body_limit_bytes`]) is a `413` naming the limit,
/// whether it came with a `content-length` or chunked.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<Ctx>> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, ctx: &Arc<Ctx>) -> Result<Self, Self::Rejection> {
        let limit = ctx.config.body_limit_bytes;
        if !is_json(req.headers()) {
            return Err(ApiError::field("content-type", "expected application/json"));
        }
        let bytes = axum::body::Bytes::from_request(req, ctx)
            .await
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(limit),
                _ => ApiError::field("body", e.body_text()),
            })?;
        // serde fills a struct from an array by position, which would get
        // around the refusal of unknown fields: every body is an object.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(ApiError::field("body", "must be a JSON object"));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_rejection(rejection, limit)),
        }
    }
}

/// `application/json`, or an `application/*+json` type, any parameters.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn json_rejection(rejection: JsonRejection, limit: usize) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            // serde's message names the field path and the expected type.
            let text = e.body_text();
            let detail = text.split_once(": ").map(|(_, rest)| rest).unwrap_or(&text);
            let path = detail
                .split_once(": ")
                .map(|(p, _)| p)
                .filter(|p| !p.contains(' '));
            ApiError::field(path.unwrap_or("body"), detail.to_string())
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::field("body", format!("malformed json: {}", e.body_text()))
        }
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::field("content-type", "expected application/json")
        }
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::payload_too_large(limit)
        }
        other => ApiError::field("body", other.body_text()),
    }
}

/// Query string.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::field("query", e.body_text()))
            }
            Err(other) => Err(ApiError::field("query", other.body_text())),
        }
    }
}

/// Path parameters. A parameter that does not decode (percent-encoded
/// bytes that are not UTF-8) is a `400` on the parameter's name.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let field = match e.kind() {
                    ErrorKind::InvalidUtf8InPathParam { key }
                    | ErrorKind::ParseErrorAtKey { key, .. }
                    | ErrorKind::DeserializeError { key, .. } => key.clone(),
                    _ => "path".to_string(),
                };
                Err(ApiError::field(&field, e.body_text()))
            }
            Err(other) => Err(ApiError::field("path", other.body_text())),
        }
    }
}
