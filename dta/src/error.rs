//! The one error type of the D-TA's HTTP APIs and its one mapping to responses.
//!
//! Every error is `{"error": "<code>", "error_description": "<text>"}` (the shape the IdP
//! uses): 400 `invalid_request`, 401 `unauthenticated`, 403 `forbidden`, 404
//! `not_found`, 405 `method_not_allowed`, 413 `payload_too_large`, 503 `not_anchored`,
//! and 500 `server_error` only for the D-TA's own failures (storage), logged and never
//! describing a secret.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

/// An API failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {description}")]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl ApiError {
    /// Any status and code.
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
        }
    }

    /// `invalid_request` (400).
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// `forbidden` (403).
    pub fn forbidden(description: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", description)
    }

    /// `server_error` (500): a failure of this server, e.g. its storage.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            error.to_string(),
        )
    }

    /// The error code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, error = %self.description, "request failed");
        }
        HttpResponse::build(self.status)
            .insert_header(("Cache-Control", "no-store"))
            .json(json!({ "error": self.code, "error_description": self.description }))
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        Self::internal(error)
    }
}
