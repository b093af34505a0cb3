//! Logging in at an authentication server with M-Pin: two passes over plain HTTP, in
//! which neither the PIN nor the key crosses the wire ([`milagro_mpin::wire`]).
//!
//! The device rebuilds its secret from the stored token, the PIN typed and its time
//! permit, commits (`POST /v1/login/commit`), answers the challenge (`POST
//! /v1/login/prove`) and gets a session token signed by the server's anchored key. A
//! refusal is an [`Error::Server`] carrying the server's code: `login_refused` (wrong PIN,
//! or a key missing a D-TA's share), `permit_expired`, `identity_revoked`,
//! `too_many_attempts`, `not_ready`.

use milagro_mpin::wire::{ChallengeAnswer, CommitRequest, ProveRequest};
use milagro_mpin::{ClientAwaitingChallenge, Pin};
use milagro_wire::login::SessionAnswer;

use crate::error::{Error, Step};
use crate::http::ServiceClient;
use crate::mpin_key::MpinKey;

/// A session the authentication server opened.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    /// The signed session token (a JWT, `ES256K`, by the server's anchored key).
    pub token: String,
    /// Its lifetime in seconds.
    pub expires_in: u64,
    /// The identity that logged in.
    pub mpin_id: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("mpin_id", &self.mpin_id)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

fn malformed(reason: impl std::fmt::Display) -> Error {
    Error::unexpected(Step::Authenticate, reason)
}

/// Logs in at the authentication server `server` with `key` and `pin`.
pub fn authenticate(server: &ServiceClient, key: &MpinKey, pin: Pin) -> Result<Session, Error> {
    let step = Step::Authenticate;
    let (client, commitment) = ClientAwaitingChallenge::start(
        &mut rand_core::OsRng,
        &key.id,
        &key.token,
        pin,
        &key.permit,
    )
    .map_err(|e| Error::MpinShares(format!("the stored key: {e}")))?;
    let challenge: ChallengeAnswer = server
        .post(step, "/v1/login/commit", &CommitRequest::new(&commitment))?
        .read(step)?;
    let proof = client
        .prove(&challenge.challenge().map_err(malformed)?)
        .map_err(malformed)?;
    let session: SessionAnswer = server
        .post(
            step,
            "/v1/login/prove",
            &ProveRequest::new(challenge.login_id, &proof),
        )?
        .read(step)?;
    Ok(Session {
        token: session.session_token,
        expires_in: session.expires_in,
        mpin_id: session.mpin_id,
    })
}
