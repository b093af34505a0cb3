//! What a service's JSON API shares: the error type and its one mapping to responses, the
//! JSON 404, request bodies read with a limit and refused with 415 unless they are JSON,
//! blocking work kept off the async workers, and the bearer token of a request. Route
//! tables, 405 with `Allow` and the OpenAPI document are [`crate::routes`]'.
//!
//! Every error is `{"error": "<code>", "error_description": "<text>"}` (the shape the IdP
//! uses), with `Cache-Control: no-store`; a 5xx is logged (never with a secret in it).

use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage as _, HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;

/// An API failure: a status, a code and a description, plus at most one header (e.g.
/// `Retry-After`, `WWW-Authenticate`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {description}")]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    description: String,
    header: Option<(&'static str, String)>,
}

impl ApiError {
    /// Any status and code.
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            header: None,
        }
    }

    /// The same error, answered with the header `name: value` as well.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.header = Some((name, value.into()));
        self
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

    /// The description, for people.
    pub fn description(&self) -> &str {
        &self.description
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
        let mut response = HttpResponse::build(self.status);
        response.insert_header(("Cache-Control", "no-store"));
        if let Some((name, value)) = &self.header {
            response.insert_header((*name, value.as_str()));
        }
        response.json(milagro_wire::ErrorBody {
            error: self.code.to_owned(),
            error_description: self.description.clone(),
        })
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        Self::internal(error)
    }
}

impl From<crate::well_known::NotServed> for ApiError {
    /// 503 `not_anchored` while the certificate is not served, else 500.
    fn from(error: crate::well_known::NotServed) -> Self {
        match error {
            crate::well_known::NotServed::NotAnchored(message) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "not_anchored", message)
            }
            other => Self::internal(other),
        }
    }
}

/// 404 `not_found`, for `default_service`.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {}", req.path()),
    ))
}

/// 415 `unsupported_media_type`: a route that takes JSON got a body of another type
/// (also what a service's `web::Json` error handler answers for
/// `JsonPayloadError::ContentType`).
pub fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "the body must be application/json",
    )
}

/// Whether `req` says its body is JSON (`application/json` or a `+json` type), as
/// actix's `Json` extractor decides it.
pub fn is_json(req: &HttpRequest) -> bool {
    match req.mime_type() {
        Ok(Some(mime)) => {
            mime.subtype() == actix_web::mime::JSON || mime.suffix() == Some(actix_web::mime::JSON)
        }
        _ => false,
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body exceeds {limit} bytes"),
    )
}

/// Runs blocking work (storage, pairings, node calls) on actix's blocking pool.
pub async fn blocking<S: Clone + Send + 'static, T: Send + 'static>(
    state: &web::Data<S>,
    work: impl FnOnce(&S) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = S::clone(state);
    web::block(move || work(&state)).await?
}

/// The JSON body as `T`, at most `limit` bytes (else 413 `payload_too_large`); an empty
/// body reads as `{}` whatever its type, a non-empty one must say it is JSON (else 415
/// [`unsupported_media_type`], as `web::Json` bodies are refused); a body that did not
/// arrive in time is 408 `request_timeout` ([`crate::body_deadline`]); anything else that
/// is not `T` is 400 `invalid_request`.
pub async fn read_json<T: DeserializeOwned>(
    req: &HttpRequest,
    body: web::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = match body.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) if crate::body_deadline::is_timeout(&e) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                e.to_string(),
            ))
        }
        Ok(Err(e)) => return Err(ApiError::invalid_request(format!("reading the body: {e}"))),
        Err(_) => return Err(too_large(limit)),
    };
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else if is_json(req) {
        &bytes
    } else {
        return Err(unsupported_media_type());
    };
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid_request(format!("the body is not the expected JSON: {e}")))
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive), if
/// any.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let header = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn an_error_is_json_with_its_code_and_header() {
        let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "slow_down", "wait")
            .with_header("Retry-After", "7");
        let response = error.error_response();
        assert_eq!(response.status(), 429);
        let header = |name: &str| response.headers().get(name).unwrap().to_str().unwrap();
        assert_eq!(header("retry-after"), "7");
        assert_eq!(header("cache-control"), "no-store");
        assert_eq!(error.code(), "slow_down");
        assert_eq!(error.to_string(), "slow_down: wait");
    }

    #[test]
    fn a_body_of_another_type_than_json_is_415() {
        let typed = |value: &str| {
            TestRequest::default()
                .insert_header(("Content-Type", value))
                .to_http_request()
        };
        assert!(is_json(&typed("application/json")));
        assert!(is_json(&typed("application/json; charset=utf-8")));
        assert!(is_json(&typed("application/merge-patch+json")));
        assert!(!is_json(&typed("text/plain")));
        assert!(!is_json(&typed("application/x-www-form-urlencoded")));
        assert!(!is_json(&TestRequest::default().to_http_request()));
        let refused = unsupported_media_type();
        assert_eq!(refused.status_code(), 415);
        assert_eq!(refused.code(), "unsupported_media_type");
    }

    #[test]
    fn the_bearer_token_is_read_from_the_authorization_header_only() {
        let with = |value: &str| TestRequest::default().insert_header(("Authorization", value));
        assert_eq!(bearer(&with("Bearer abc ").to_http_request()), Some("abc"));
        assert_eq!(bearer(&with("bearer abc").to_http_request()), Some("abc"));
        assert_eq!(bearer(&with("Basic abc").to_http_request()), None);
        assert_eq!(bearer(&with("Bearer").to_http_request()), None);
        assert_eq!(bearer(&TestRequest::default().to_http_request()), None);
    }
}
