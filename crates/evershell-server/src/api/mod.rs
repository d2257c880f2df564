//! The `/v1` HTTP API.

pub mod auth;
pub mod cookies;
pub mod error;
pub mod extract;
pub mod handlers;
pub mod openapi;
pub mod respond;
pub mod routes;
pub mod validate;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use evershell_core::ErrorCode;

/// Gives every request an id, served in `x-request-id` and in error bodies.
pub async fn request_id(request: Request, next: Next) -> Response {
    let id = evershell_core::id::new_request_id();
    let mut response = error::REQUEST_ID.scope(id.clone(), next.run(request)).await;
    let value = HeaderValue::from_str(&id).expect("request ids are ascii");
    response.headers_mut().insert("x-request-id", value);
    response
}

/// Unknown paths get the envelope too.
pub async fn fallback() -> Response {
    error::ApiError::new(ErrorCode::NotFound, "no such route").into_response()
}

/// `GET /healthz`: the process serves requests.
pub async fn healthz() -> &'static str {
    "ok"
}
