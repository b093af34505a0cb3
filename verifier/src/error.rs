//! Why a login was refused: one enum, with the status and code every service answers it
//! with (the authentication server as `{"error", "error_description"}` JSON, the IdP in
//! the same shape on its sign-in API), so the refusals read the same at both.
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `invalid_request` | a bad point or identity |
//! | 400 | `unknown_login` | the `login_id` is unknown, used or expired |
//! | 401 | `login_refused` | the proof does not verify (wrong PIN, token or permit) |
//! | 403 | `identity_revoked` | the identity is revoked |
//! | 403 | `permit_expired` | the time permit is not for today |
//! | 403 | `identity_blocked` | blocked after repeated lockouts (register again) |
//! | 429 | `too_many_attempts` | locked out (`Retry-After`) |
//! | 429 | `proof_in_flight` | another proof of the identity is being checked (`Retry-After: 1`) |
//! | 429 | `too_many_pending` | too many challenges of the identity open (`Retry-After: 60`) |
//! | 503 | `not_ready`, `busy` | the server secret is not assembled; too many pending logins |
//! | 500 | `server_error` | the guess counts could not be stored (the verifier's own failure) |

use std::time::Duration;

use milagro_mpin::{Day, MpinError};

use crate::guesses::{Refusal, StorageError};
use crate::login::{Busy, PendingError};

/// A refused login pass.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
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
    #[error("the login is unknown, already used or expired; start again with pass 1")]
    UnknownLogin,
    /// The proof did not verify.
    #[error("authentication refused")]
    Refused,
    /// The guess counts could not be read or written (never describes a secret).
    #[error(transparent)]
    Storage(#[from] StorageErrorText),
}

/// A storage failure, as text (so [`VerifyError`] stays `Clone`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StorageErrorText(pub String);

impl From<StorageError> for VerifyError {
    fn from(error: StorageError) -> Self {
        Self::Storage(StorageErrorText(error.to_string()))
    }
}

impl From<Refusal> for VerifyError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Locked(retry_after) => Self::TooManyAttempts { retry_after },
            Refusal::Blocked => Self::Blocked,
            Refusal::InFlight => Self::ProofInFlight,
        }
    }
}

impl From<PendingError> for VerifyError {
    fn from(error: PendingError) -> Self {
        match error {
            PendingError::Busy(busy) => Self::Busy(busy),
            PendingError::PerIdentity(n) => Self::TooManyPending(n),
        }
    }
}

impl VerifyError {
    /// The refusal of pass 1's message by [`milagro_mpin`]: a permit of another day, or
    /// malformed input.
    pub fn from_commit(error: MpinError) -> Self {
        match error {
            MpinError::PermitDay { permit, today } => Self::PermitExpired { permit, today },
            other => Self::InvalidRequest(other.to_string()),
        }
    }

    /// The HTTP status this refusal is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidRequest(_) | Self::UnknownLogin => 400,
            Self::Refused => 401,
            Self::Revoked(_) | Self::PermitExpired { .. } | Self::Blocked => 403,
            Self::TooManyAttempts { .. } | Self::ProofInFlight | Self::TooManyPending(_) => 429,
            Self::NotReady(_) | Self::Busy(_) => 503,
            Self::Storage(_) => 500,
        }
    }

    /// The error code (`error` of the JSON body).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::NotReady(_) => "not_ready",
            Self::Busy(_) => "busy",
            Self::Revoked(_) => "identity_revoked",
            Self::PermitExpired { .. } => "permit_expired",
            Self::TooManyAttempts { .. } => "too_many_attempts",
            Self::Blocked => "identity_blocked",
            Self::ProofInFlight => "proof_in_flight",
            Self::TooManyPending(_) => "too_many_pending",
            Self::UnknownLogin => "unknown_login",
            Self::Refused => "login_refused",
            Self::Storage(_) => "server_error",
        }
    }

    /// The `Retry-After` seconds to send with it, if any: a lockout's rest rounded up (a
    /// client retrying then is no longer locked), 1 for a busy server or a proof in
    /// flight, 60 for too many open challenges (one frees its place when used or expired).
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::TooManyAttempts { retry_after } => {
                Some(retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0))
            }
            Self::Busy(_) | Self::ProofInFlight => Some(1),
            Self::TooManyPending(_) => Some(60),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_status_code_and_retry_after() {
        let locked = VerifyError::TooManyAttempts {
            retry_after: Duration::from_millis(1500),
        };
        assert_eq!(
            (locked.status(), locked.code(), locked.retry_after()),
            (429, "too_many_attempts", Some(2))
        );
        let expired = VerifyError::from_commit(MpinError::PermitDay {
            permit: Day(9),
            today: Day(10),
        });
        assert_eq!((expired.status(), expired.code()), (403, "permit_expired"));
        assert!(expired.to_string().contains("day 9 but today is day 10"));
        let bad_point = VerifyError::from_commit(MpinError::Point("u"));
        assert_eq!(bad_point.code(), "invalid_request");
        assert_eq!(VerifyError::Refused.status(), 401);
        assert_eq!(VerifyError::TooManyPending(3).retry_after(), Some(60));
        assert_eq!(VerifyError::Blocked.retry_after(), None);
    }
}
