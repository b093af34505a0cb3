//! The one error type of the D-TA's HTTP APIs and its one mapping to responses, shared
//! with every service ([`milagro_service::api::ApiError`]).
//!
//! Every error is `{"error": "<code>", "error_description": "<text>"}` (the shape the IdP
//! uses): 400 `invalid_request`, 401 `unauthenticated`, 403 `forbidden`, 404
//! `not_found`, 405 `method_not_allowed` (with `Allow`), 408 `request_timeout`, 413
//! `payload_too_large`, 415 `unsupported_media_type`, 503 `not_anchored`,
//! and 500 `server_error` only for the D-TA's own failures (storage), logged and never
//! describing a secret.

pub use milagro_service::api::ApiError;
