//! Answers whose status is part of their type, so that the OpenAPI
//! document states the status a handler really sends.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;

use super::openapi::describe::{DescribeOutput, Operation, Schemas};

/// `201 Created` with `T` as JSON.
pub struct Created<T>(pub T);

/// `202 Accepted` with `T` as JSON: the work is committed, not done.
pub struct Accepted<T>(pub T);

/// A resource's new status after a verb: `{"id", "status": "deleted"}`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ResourceStatus {
    pub id: String,
    pub status: &'static str,
}

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, Json(self.0)).into_response()
    }
}

impl<T: Serialize> IntoResponse for Accepted<T> {
    fn into_response(self) -> Response {
        (StatusCode::ACCEPTED, Json(self.0)).into_response()
    }
}

impl<T: JsonSchema> DescribeOutput for Created<T> {
    fn describe(op: &mut Operation, schemas: &mut Schemas) {
        op.answer(201, "application/json", schemas.response::<T>());
    }
}

impl<T: JsonSchema> DescribeOutput for Accepted<T> {
    fn describe(op: &mut Operation, schemas: &mut Schemas) {
        op.answer(202, "application/json", schemas.response::<T>());
    }
}

/// An answer that also sets a cookie (`Set-Cookie: <value>`); documented as
/// the answer it wraps.
pub struct WithCookie<T>(pub axum::http::HeaderValue, pub T);

impl<T: IntoResponse> IntoResponse for WithCookie<T> {
    fn into_response(self) -> Response {
        ([(axum::http::header::SET_COOKIE, self.0)], self.1).into_response()
    }
}

impl<T: DescribeOutput> DescribeOutput for WithCookie<T> {
    fn describe(op: &mut Operation, schemas: &mut Schemas) {
        T::describe(op, schemas);
    }
}
