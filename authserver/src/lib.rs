//! The Milagro authentication server: M-Pin zero-knowledge multi-factor logins against
//! the server secret that the D-TAs' shares sum to, answered with a signed session token.
//!
//! Like every service it makes a secp256k1 key and a Birth Certificate (role
//! `authserver`) on first start, anchors it and serves it at
//! `/.well-known/milagro/birth-certificate` ([`milagro_service`] does that); it follows
//! the chain with its own index, where it looks the D-TAs' anchors up. The M-Pin
//! verifier (server secret, pending logins, guess limits, revocations) is
//! [`milagro_verifier`]'s, shared with the IdP; its modules are re-exported here. What
//! the server adds around it:
//!
//! - the **server secret** `s·Q` ([`server_secret`]): once its own anchor is confirmed, it
//!   asks every configured D-TA for its share `s_i·Q` over Milagro TLS (the D-TA admits
//!   it by its anchored certificate, and it admits only the D-TA of the configured
//!   digest), checks each point and sums them; kept in memory only, never written or
//!   logged, fetched again at each start;
//! - the **login API** ([`api`]), plain HTTP: pass 1 (`/v1/login/commit`, the wire
//!   messages of [`milagro_mpin::wire`]) keeps the server's half of the login under a
//!   random handle for `challenge_ttl`; pass 2 (`/v1/login/prove`) checks the pairing
//!   equation once and answers with a session token. Failed proofs are counted per
//!   identity and lock it out after `max_failures` ([`login`]); revoked identities are
//!   refused ([`revocations`]);
//! - **session tokens** ([`session`]): ES256K JWTs signed with the anchored key, so
//!   anyone with the server's Birth Certificate can verify them;
//! - the **login log**: every successful login appended to an RFC 6962 log as a hash of
//!   the identity and the permit's day ([`state::login_entry`]), checkpoints anchored
//!   periodically.
//!
//! # Main types
//!
//! - [`config::Config`]: `authserver.toml` (every key in
//!   `authserver/authserver.example.toml`);
//! - [`AuthServer::start`] → [`RunningAuthServer`]: the HTTP server, the chain loop, the
//!   server-secret fetcher;
//! - [`milagro_verifier::Verifier`] (in [`state::AppState::verifier`]): the two passes;
//!   [`server_secret::ServerSecretSlot`]: the secret once assembled, each D-TA's progress
//!   until then; [`login::Logins`]: pending logins; [`guesses::Guesses`]: the PIN guesses
//!   each identity has left (reserved before a proof is checked, escalating lockouts, a
//!   block, on disk);
//! - [`session::claims`] (a token's [`milagro_wire::login::SessionClaims`]),
//!   [`session::issue`], [`session::verify`];
//! - [`error::AuthError`]: every refusal, mapped to a response in one place.
//!
//! # What it does not do
//!
//! It issues no client secrets or time permits (the D-TAs do) and never sees a PIN. It
//! serves plain HTTP only (put a TLS-terminating proxy in front). Pending logins live in
//! one process's memory (a restart cancels them); guess counts, lockouts and blocks are in
//! its state directory and survive a restart, but several instances do not share them. It does not revoke session tokens (they expire),
//! refresh the server secret while running, or check that a D-TA's share matches the
//! shares that D-TA gave the devices (a wrong share shows as every login refused).
//!
//! ```no_run
//! use milagro_authserver::{config::Config, AuthServer};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::load(std::path::Path::new("authserver.toml"))?;
//! let server = AuthServer::start(config)?;
//! println!(
//!     "authentication server {} at {}",
//!     server.state().identity.digest(),
//!     server.local_url()
//! );
//! server.stop();
//! # Ok(()) }
//! ```

pub mod api;
pub mod config;
pub mod error;
mod server;
pub mod session;
pub mod state;

pub use milagro_verifier::{guesses, login, revocations, server_secret};
pub use server::{AuthServer, RunningAuthServer, StartError, KEY_FILE, KIND};
