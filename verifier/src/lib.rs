//! An M-Pin verifier, written once for every service that checks M-Pin logins: the
//! authentication server (its own login API and session tokens) and the IdP (sign-in on
//! the web with a device, ending in an OpenID Connect code).
//!
//! What it does:
//!
//! - the **server secret** `s·Q` ([`server_secret`]): a thread ([`server_secret::run`])
//!   waits for the service's own anchor, asks every configured D-TA for its share `s_i·Q`
//!   over Milagro TLS (the D-TA admits the service by its anchored certificate only if
//!   its digest is in the D-TA's `authservers`; the service admits only the D-TA of the
//!   configured digest), checks each point and sums them into a
//!   [`server_secret::ServerSecretSlot`], in memory only;
//! - **the two passes** ([`Verifier::commit`], [`Verifier::prove`]) over the wire
//!   messages of [`milagro_mpin::wire`]: pass 1 keeps the server's half under a random
//!   one-time handle for `challenge_ttl` ([`login::Logins`], bounded in all and per
//!   identity); pass 2 checks the pairing equation once (one multi-pairing);
//! - **guess limits** ([`guesses::Guesses`]): a guess is counted on disk before its proof
//!   is checked, one proof per identity at a time, `max_failures` lock the identity out
//!   for an escalating time, `max_lockouts` block it; **revocations**
//!   ([`revocations::Revocations`]);
//! - every refusal as one [`VerifyError`] with its status, code and `Retry-After`.
//!
//! # What it does not do
//!
//! It serves no HTTP route and issues nothing: the service around it decides what a
//! verified login is worth (a session token, an authorization code) and logs it. It never
//! sees a PIN, stores no secret on disk, and does not refresh the server secret while
//! running. Pending logins live in one process's memory; guess counts are in the
//! service's own database, so two services (or instances) count separately, by the same
//! rules.
//!
//! ```no_run
//! use milagro_mpin::wire::{ChallengeAnswer, CommitRequest, ProveRequest};
//! use milagro_verifier::{config::LoginConfig, Verifier};
//!
//! /// Pass 1 of a device's login: the challenge sent back to the device.
//! fn pass_one(verifier: &Verifier, commit: &CommitRequest) -> Result<ChallengeAnswer, Box<dyn std::error::Error>> {
//!     Ok(verifier.commit(commit)?)
//! }
//!
//! /// Pass 2: the device's proof, for that challenge; `Ok` is a verified login.
//! fn pass_two(verifier: &Verifier, prove: &ProveRequest) -> Result<(), Box<dyn std::error::Error>> {
//!     let verified = verifier.prove(prove)?;
//!     println!("signed in: {:?}", verified.id);
//!     Ok(())
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let db = sled::open("service")?;
//! let verifier = Verifier::open(&db, std::path::Path::new("."), &[], LoginConfig::new())?;
//! # let _ = (pass_one, pass_two, verifier);
//! # Ok(()) }
//! ```

pub mod config;
pub mod error;
pub mod guesses;
pub mod login;
pub mod revocations;
pub mod server_secret;
mod verifier;

pub use error::VerifyError;
pub use verifier::{OpenError, Verified, Verifier, PAIRINGS_QUEUED};
