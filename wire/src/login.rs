//! The authentication server's login API (`POST /v1/login/commit`, `/v1/login/prove`,
//! `GET /v1/session`; `authserver/openapi.json`). The bodies of the two M-Pin passes are
//! `milagro_mpin::wire`'s (they convert to and from the protocol's points); the answer
//! that ends a login and the session token's claims are here.

use milagro_anchor::digest::Digest;
use serde::{Deserialize, Serialize};

/// The answer to `POST /v1/login/prove` that accepts a login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionAnswer {
    /// The session token (an ES256K JWS signed with the server's `session` purpose key).
    pub session_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the token is valid for.
    pub expires_in: u64,
    /// The M-Pin identity that logged in.
    pub mpin_id: String,
}

/// What a session token says: its JWT claims, and the answer of `GET /v1/session` once
/// the server checked the token.
///
/// Unlike other answers it refuses members it does not know: it is the claim set of a
/// signed token, and a verifier accepts exactly these members (a claim it would ignore
/// could be one another verifier honours).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionClaims {
    /// The authentication server (its `public_url`).
    pub iss: String,
    /// The M-Pin identity that logged in.
    pub sub: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// How the subject authenticated (RFC 8176: `mfa`, `pin`, `swk`).
    pub amr: Vec<String>,
    /// The day of the time permit the login used.
    pub milagro_permit_day: u32,
    /// The digest of the signing server's anchored Birth Certificate (also the `kid`).
    pub milagro_birth_certificate_digest: Digest,
}
