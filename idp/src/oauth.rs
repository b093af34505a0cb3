//! The one error type of the IdP's HTTP API, in the OAuth 2.0 shape, and its one mapping
//! to responses.
//!
//! Every error is `{"error": "<code>", "error_description": "<text>"}` with the status
//! the code's RFC asks for: 400 for `invalid_request`, `invalid_grant`,
//! `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`,
//! `invalid_redirect_uri`, `invalid_client_metadata`, `authorization_pending`,
//! `slow_down`, `expired_token`, `access_denied` (RFC 6749 §5.2, RFC 7591 §3.2.2,
//! RFC 8628 §3.5); 401 with `WWW-Authenticate` for `invalid_client` (RFC 6749 §5.2) and
//! `invalid_token` (RFC 6750 §3.1; a `DPoP` challenge for a DPoP-bound token, RFC 9449
//! §7.1); `invalid_dpop_proof` (400, RFC 9449 §5); 403 for `forbidden`; 404 `not_found`; 405
//! `method_not_allowed` (with `Allow`); 409 `conflict`; 413 `payload_too_large`; 415
//! `unsupported_media_type` (a JSON route's body of another type); 503 `not_anchored`; 500 `server_error`
//! only for our own failures (storage), logged and never describing secrets.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// An API failure, as OAuth reports it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
    challenge: Option<&'static str>,
}

impl OAuthError {
    /// A 400 with `code`.
    pub fn bad_request(code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            description: description.into(),
            challenge: None,
        }
    }

    /// `invalid_request` (400).
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::bad_request("invalid_request", description)
    }

    /// `invalid_grant` (400).
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::bad_request("invalid_grant", description)
    }

    /// `invalid_client` (401, with a Basic challenge as RFC 6749 §5.2 asks).
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
            description: description.into(),
            challenge: Some("Basic realm=\"milagro-idp\""),
        }
    }

    /// `invalid_token` (401, with a Bearer challenge, RFC 6750 §3).
    pub fn invalid_token(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_token",
            description: description.into(),
            challenge: Some("Bearer error=\"invalid_token\""),
        }
    }

    /// `invalid_token` (401) for a DPoP-bound access token presented without a valid
    /// proof by its key, with a DPoP challenge (RFC 9449 §7.1).
    pub fn invalid_dpop_token(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_token",
            description: description.into(),
            challenge: Some("DPoP error=\"invalid_token\", algs=\"ES256K\""),
        }
    }

    /// Another status and code (403 `forbidden`, 404 `not_found`, 503 `not_anchored`...).
    pub fn with_status(
        status: StatusCode,
        code: &'static str,
        description: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            challenge: None,
        }
    }

    /// `server_error` (500): a failure of this server, e.g. its storage.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        Self::with_status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            error.to_string(),
        )
    }

    /// The OAuth error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human-readable description.
    pub fn description(&self) -> &str {
        &self.description
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, error = %self.description, "request failed");
        }
        let mut response = HttpResponse::build(self.status);
        if let Some(challenge) = self.challenge {
            response.insert_header(("WWW-Authenticate", challenge));
        }
        response
            .insert_header(("Cache-Control", "no-store"))
            .json(milagro_wire::ErrorBody {
                error: self.code.to_owned(),
                error_description: self.description.clone(),
            })
    }
}

impl From<milagro_service::api::ApiError> for OAuthError {
    /// An error of the shared API helpers (e.g. 415), in the same shape.
    fn from(error: milagro_service::api::ApiError) -> Self {
        Self::with_status(error.status_code(), error.code(), error.description())
    }
}

impl From<actix_web::error::BlockingError> for OAuthError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        Self::internal(error)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn errors_are_oauth_json_with_the_status_of_their_rfc() {
        let cases = [
            (OAuthError::invalid_grant("x"), 400, "invalid_grant", None),
            (
                OAuthError::invalid_client("x"),
                401,
                "invalid_client",
                Some("Basic"),
            ),
            (
                OAuthError::invalid_token("x"),
                401,
                "invalid_token",
                Some("Bearer"),
            ),
            (
                OAuthError::invalid_dpop_token("x"),
                401,
                "invalid_token",
                Some("DPoP"),
            ),
            (OAuthError::internal("disk"), 500, "server_error", None),
        ];
        for (error, status, code, challenge) in cases {
            let response = error.error_response();
            assert_eq!(response.status().as_u16(), status);
            let header = response.headers().get("WWW-Authenticate");
            assert_eq!(
                header.map(|h| h.to_str().unwrap().split(' ').next().unwrap().to_owned()),
                challenge.map(str::to_owned)
            );
            let body = response.into_body().try_into_bytes().unwrap();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(json["error"], code);
            assert_eq!(
                json["error_description"],
                "x".replace('x', error.description())
            );
        }
    }
}
