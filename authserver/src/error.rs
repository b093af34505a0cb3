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

use std::time::Duration;

use actix_web::http::StatusCode;
use milagro_mpin::{Day, MpinError};

pub use milagro_service::api::ApiError;

use crate::guesses::Refusal;
use crate::login::{Busy, PendingError};
use crate::session::SessionError;

/// A refused request of the login, session or admin API.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Malformed input.
    #[error("{0}")]
    InvalidRequest(String),
    /// The server secret is not assembled yet: which D-TAs are missing and why.
    #[error("{0}")]
    NotReady(String),
    /// Too many pending logins.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The identity is revoked.
    #[error("identity {0} is revoked")]
    Revoked(String),
    /// The time permit is for another day.
    #[error("the time permit is for day {} but today is day {}; fetch today's permit from the d-tas", permit.0, today.0)]
    PermitExpired {
        /// The permit's day.
        permit: Day,
        /// The server's day.
        today: Day,
    },
    /// The identity is locked out after failed proofs.
    #[error("too many failed logins for this identity; retry in {} s", retry_after.as_secs())]
    TooManyAttempts {
        /// How long the lockout still lasts.
        retry_after: Duration,
    },
    /// Blocked after repeated lockouts.
    #[error("this identity is blocked after repeated failed logins; register the device again")]
    Blocked,
    /// Another proof of the identity is being checked.
    #[error("another proof of this identity is being checked; retry in a moment")]
    ProofInFlight,
    /// The identity has this many challenges open, the most allowed.
    #[error("{0} logins of this identity are pending, the most this server keeps; finish one")]
    TooManyPending(usize),
    /// The `login_id` is unknown, used or expired.
    #[error("the login is unknown, already used or expired; start again with /v1/login/commit")]
    UnknownLogin,
    /// The proof did not verify.
    #[error("authentication refused")]
    Refused,
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

impl From<Refusal> for AuthError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Locked(retry_after) => Self::TooManyAttempts { retry_after },
            Refusal::Blocked => Self::Blocked,
            Refusal::InFlight => Self::ProofInFlight,
        }
    }
}

impl From<PendingError> for AuthError {
    fn from(error: PendingError) -> Self {
        match error {
            PendingError::Busy(busy) => Self::Busy(busy),
            PendingError::PerIdentity(n) => Self::TooManyPending(n),
        }
    }
}

impl AuthError {
    /// The refusal of pass 1's message by [`milagro_mpin`]: a permit of another day, or
    /// malformed input.
    pub fn from_commit(error: MpinError) -> Self {
        match error {
            MpinError::PermitDay { permit, today } => Self::PermitExpired { permit, today },
            other => Self::InvalidRequest(other.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        let description = error.to_string();
        let (status, code) = match &error {
            AuthError::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            AuthError::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            AuthError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            AuthError::Revoked(_) => (StatusCode::FORBIDDEN, "identity_revoked"),
            AuthError::PermitExpired { .. } => (StatusCode::FORBIDDEN, "permit_expired"),
            AuthError::TooManyAttempts { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts")
            }
            AuthError::Blocked => (StatusCode::FORBIDDEN, "identity_blocked"),
            AuthError::ProofInFlight => (StatusCode::TOO_MANY_REQUESTS, "proof_in_flight"),
            AuthError::TooManyPending(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_pending"),
            AuthError::UnknownLogin => (StatusCode::BAD_REQUEST, "unknown_login"),
            AuthError::Refused => (StatusCode::UNAUTHORIZED, "login_refused"),
            AuthError::InvalidToken(_) | AuthError::NoToken => {
                (StatusCode::UNAUTHORIZED, "invalid_token")
            }
            AuthError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AuthError::AdminOff => (StatusCode::NOT_FOUND, "not_found"),
        };
        let api = ApiError::new(status, code, description);
        match error {
            AuthError::TooManyAttempts { retry_after } => {
                // Whole seconds, rounded up: a client retrying then is no longer locked.
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                api.with_header("Retry-After", secs.to_string())
            }
            AuthError::Busy(_) | AuthError::ProofInFlight => api.with_header("Retry-After", "1"),
            // A challenge lives at most 600 s (`login.challenge_ttl_secs`); one frees its
            // place when it is used or expires.
            AuthError::TooManyPending(_) => api.with_header("Retry-After", "60"),
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

    #[test]
    fn each_refusal_has_its_status_code_and_header() {
        let locked = ApiError::from(AuthError::TooManyAttempts {
            retry_after: Duration::from_millis(1500),
        });
        let response = locked.error_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers().get("retry-after").unwrap(), "2");
        let expired = ApiError::from(AuthError::from_commit(MpinError::PermitDay {
            permit: Day(9),
            today: Day(10),
        }));
        assert_eq!(
            (expired.status_code().as_u16(), expired.code()),
            (403, "permit_expired")
        );
        assert!(expired.to_string().contains("day 9 but today is day 10"));
        let bad_point = ApiError::from(AuthError::from_commit(MpinError::Point("u")));
        assert_eq!(bad_point.code(), "invalid_request");
        let no_token = ApiError::from(AuthError::NoToken).error_response();
        assert_eq!(no_token.status(), 401);
        assert!(no_token.headers().contains_key("www-authenticate"));
        assert_eq!(ApiError::from(AuthError::AdminOff).status_code(), 404);
    }
}
