//! Why a request failed, and the one mapping of those reasons to HTTP responses.
//!
//! Every error is `{"error": "<code>", "error_description": "<text>"}` JSON
//! ([`milagro_service::api::ApiError`]):
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `invalid_request` | not the expected JSON, unknown fields, a bad point or identity |
//! | 400 | `unknown_login` | the `login_id` is unknown, used or expired |
//! | 401 | `login_refused` | the proof does not verify (wrong PIN, token or permit) |
//! | 401 | `invalid_token` | no valid session token (`WWW-Authenticate: Bearer`) |
//! | 401 | `unauthorized` | the admin API without the admin token |
//! | 403 | `identity_revoked` | the identity is revoked |
//! | 403 | `permit_expired` | the time permit is not for today |
//! | 404 | `not_found` | no such route, or the admin API is off |
//! | 405 | `method_not_allowed` | another method than the path serves (`Allow` lists them) |
//! | 408, 413 | `request_timeout`, `payload_too_large` | the body was late or too large |
//! | 415 | `unsupported_media_type` | a body that is not `application/json` |
//! | 403 | `identity_blocked` | the identity is blocked after repeated lockouts (register again) |
//! | 429 | `too_many_attempts` | the identity is locked out (`Retry-After`) |
//! | 429 | `proof_in_flight` | another proof of the identity is being checked (`Retry-After: 1`) |
//! | 429 | `too_many_pending` | the identity has too many challenges open (`Retry-After`: the challenge lifetime) |
//! | 503 | `not_ready`, `busy`, `not_anchored` | the server secret is not assembled; too many pending logins, or too many login checks queued (`Retry-After`); the certificate is not anchored yet |
//!
//! 500 `server_error` only for the server's own failures (storage), logged, never
//! describing a secret.

use actix_web::http::StatusCode;
use milagro_verifier::VerifyError;

pub use milagro_service::api::ApiError;

use crate::session::SessionError;

/// A refused request of the login, session or admin API.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Malformed input.
    #[error("{0}")]
    InvalidRequest(String),
    /// A login pass refused by the verifier (its status and code,
    /// [`milagro_verifier::error`]).
    #[error(transparent)]
    Login(#[from] VerifyError),
    /// No valid session token.
    #[error(transparent)]
    InvalidToken(#[from] SessionError),
    /// No session token at all.
    #[error("send Authorization: Bearer <session token>")]
    NoToken,
    /// The admin API without the right token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The admin API is off (no `[admin]` in the configuration).
    #[error("no admin token is configured; the admin API is off")]
    AdminOff,
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        let description = error.to_string();
        if let AuthError::Login(refusal) = &error {
            if let VerifyError::Storage(_) = refusal {
                return ApiError::internal(refusal);
            }
            let status =
                StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let api = ApiError::new(status, refusal.code(), description);
            return match refusal.retry_after() {
                Some(secs) => api.with_header("Retry-After", secs.to_string()),
                None => api,
            };
        }
        let (status, code) = match &error {
            AuthError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            AuthError::InvalidToken(_) | AuthError::NoToken => {
                (StatusCode::UNAUTHORIZED, "invalid_token")
            }
            AuthError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AuthError::AdminOff => (StatusCode::NOT_FOUND, "not_found"),
            AuthError::Login(_) => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        };
        let api = ApiError::new(status, code, description);
        match error {
            AuthError::InvalidToken(_) | AuthError::NoToken => {
                api.with_header("WWW-Authenticate", "Bearer error=\"invalid_token\"")
            }
            AuthError::Unauthorized(_) => api.with_header("WWW-Authenticate", "Bearer"),
            _ => api,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::ResponseError as _;
    use milagro_mpin::{Day, MpinError};
    use std::time::Duration;

    #[test]
    fn each_refusal_has_its_status_code_and_header() {
        let locked = ApiError::from(AuthError::from(VerifyError::TooManyAttempts {
            retry_after: Duration::from_millis(1500),
        }));
        let response = locked.error_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers().get("retry-after").unwrap(), "2");
        let expired = ApiError::from(AuthError::from(VerifyError::from_commit(
            MpinError::PermitDay {
                permit: Day(9),
                today: Day(10),
            },
        )));
        assert_eq!(
            (expired.status_code().as_u16(), expired.code()),
            (403, "permit_expired")
        );
        assert!(expired.to_string().contains("day 9 but today is day 10"));
        let bad_point = ApiError::from(AuthError::from(VerifyError::from_commit(
            MpinError::Point("u"),
        )));
        assert_eq!(bad_point.code(), "invalid_request");
        let no_token = ApiError::from(AuthError::NoToken).error_response();
        assert_eq!(no_token.status(), 401);
        assert!(no_token.headers().contains_key("www-authenticate"));
        assert_eq!(ApiError::from(AuthError::AdminOff).status_code(), 404);
    }
}
