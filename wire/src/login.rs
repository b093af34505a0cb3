//! The authentication server's login API (`POST /v1/login/commit`, `/v1/login/prove`;
//! `authserver/openapi.json`). The bodies of the two M-Pin passes are
//! `milagro_mpin::wire`'s (they convert to and from the protocol's points); the answer
//! that ends a login is here.

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
