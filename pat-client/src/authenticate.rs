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

/// The two M-Pin passes with `key` and `pin`, whatever carries them: `commit` sends pass
/// 1's message and returns the challenge answer, `prove` sends pass 2's and returns what
/// the server answers. Neither the PIN nor the key leaves the device. Used by
/// [`authenticate`] (the authentication server) and [`crate::signin::approve`] (a sign-in
/// at the IdP).
pub fn two_passes<T>(
    key: &MpinKey,
    pin: Pin,
    commit: impl FnOnce(CommitRequest) -> Result<ChallengeAnswer, Error>,
    prove: impl FnOnce(ProveRequest) -> Result<T, Error>,
) -> Result<T, Error> {
    let (client, commitment) = ClientAwaitingChallenge::start(
        &mut rand_core::OsRng,
        &key.id,
        &key.token,
        pin,
        &key.permit,
    )
    .map_err(|e| Error::MpinShares(format!("the stored key: {e}")))?;
    let challenge = commit(CommitRequest::new(&commitment))?;
    let proof = client
        .prove(&challenge.challenge().map_err(malformed)?)
        .map_err(malformed)?;
    prove(ProveRequest::new(challenge.login_id, &proof))
}

/// Logs in at the authentication server `server` with `key` and `pin`.
pub fn authenticate(server: &ServiceClient, key: &MpinKey, pin: Pin) -> Result<Session, Error> {
    let step = Step::Authenticate;
    let session: SessionAnswer = two_passes(
        key,
        pin,
        |commit| server.post(step, "/v1/login/commit", &commit)?.read(step),
        |prove| server.post(step, "/v1/login/prove", &prove)?.read(step),
    )?;
    Ok(Session {
        token: session.session_token,
        expires_in: session.expires_in,
        mpin_id: session.mpin_id,
    })
}
