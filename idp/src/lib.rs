//! The Milagro IdP: an OpenID Connect provider whose identity is anchored on chain.
//!
//! Standard relying parties use it without special code: discovery, dynamic client
//! registration (RFC 7591), the authorization code flow with PKCE (RFC 7636; S256,
//! required for public clients), ID tokens signed with rotating ES256 keys, userinfo,
//! rotating refresh tokens, revocation (RFC 7009), WebFinger (RFC 7033) and the device
//! authorization grant (RFC 8628) for PATs without a browser, with tokens bound to the
//! device's key by DPoP (RFC 9449) when it sends a proof.
//!
//! What is Milagro about it: like every party it makes a secp256k1 key and a Birth
//! Certificate (role `idp`) on first start and anchors the certificate's digest on chain
//! ([`milagro_service`] does that for every service); the discovery document names the
//! certificate's URL, digest, anchoring txid and key, so a relying party can check the
//! IdP by SPV before trusting its JWKS. With `[mpin]`, people sign in with M-Pin from
//! their own device ([`signin`]): the authorization page shows a QR code and an access
//! number, `milagro pat approve` on the device runs the two zero-knowledge passes against
//! the server secret the IdP sums from the D-TAs' shares ([`milagro_verifier`], the
//! authentication server's code), and the ID token says `amr` `["pin", "swk", "mfa"]`,
//! `acr` `urn:milagro:acr:mpin`. And every successful authentication appends
//! `H(subject ‖ time period)` to the IdP's RFC 6962 activity log, whose signed
//! checkpoints are anchored periodically ([`state::authentication_entry`]).
//!
//! # Main types
//!
//! - [`config::Config`]: `idp.toml` (every key in `idp/idp.example.toml`);
//! - [`Idp::start`] → [`RunningIdp`]: binds, starts the HTTP server and the chain loop;
//! - [`keys::KeyRing`]: ES256 signing keys and their rotation;
//! - [`users::UserStore`]: users with argon2id hashes ([`users::SledUsers`]), computed
//!   in reused memory ([`passwords::Passwords`]) behind a bounded queue, and people
//!   without any password, known by the e-mail address they proved;
//! - [`enrolment_codes`], [`mail`]: registration without a password: on the device page a
//!   person proves an e-mail address with a one-time code the IdP sends by SMTP
//!   (`[smtp]`) or an activation code the operator issued
//!   (`POST /v1/admin/activation-codes`), and their device is let in and registers;
//! - [`clients`], [`grants`], [`device_grants`]: registered clients, codes and tokens,
//!   device authorizations, in sled;
//! - [`devices`]: each person's registered device (its key and M-Pin identity), the one
//!   an M-Pin sign-in may come from;
//! - [`sessions`]: login sessions (single sign-on across clients) and consents;
//!   [`backchannel`]: logout tokens sent to clients when a session ends; [`sweep`]: what
//!   deletes expired codes, tokens, sessions and the rest;
//! - [`signin::MpinSignIn`]: the M-Pin verifier, the sign-ins waiting for a device and
//!   their access numbers;
//! - [`ciba`]: signing in without a browser (OpenID Connect CIBA, poll mode): a client
//!   asks at `POST /bc-authorize` for a person it names, their registered device lists
//!   the request (a DPoP proof by its key) and approves it with the M-Pin passes or
//!   denies it, and the client polls the token endpoint for the tokens;
//! - [`dpop`]: DPoP proofs (RFC 9449) that bind tokens to a device's key (`cnf.jkt`),
//!   and the replay cache of their `jti`s;
//! - [`api`]: the routes; [`oauth::OAuthError`]: the one error type, in the OAuth shape.
//!
//! # What it does not do
//!
//! No implicit or hybrid flows (a client registering them gets the code flow), no request
//! objects, no front-channel logout or session management iframe (back-channel logout
//! only), no claims beyond `sub`, `preferred_username` and a proven `email` (other
//! scopes, e.g. `phone`, are dropped, not granted). M-Pin sign-in has no script on its page (it reloads itself),
//! keeps waiting sign-ins in one process's memory, and counts PIN guesses in the IdP's own
//! database (the auth server's rules, its own counters); it registers no device itself
//! (`POST /v1/devices` does, [`devices`]).
//!
//! ```no_run
//! use milagro_idp::{config::Config, Idp};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::load(std::path::Path::new("idp.toml"))?;
//! let idp = Idp::start(config)?;
//! println!("issuer {} serving at {}", idp.state().issuer(), idp.local_url());
//! idp.stop();
//! # Ok(()) }
//! ```

pub mod api;
pub mod authentication;
pub mod backchannel;
pub mod ciba;
pub mod clients;
pub mod config;
pub mod device_grants;
pub mod devices;
pub mod dpop;
pub mod enrolment_codes;
pub mod grants;
pub mod group_flush;
pub mod keys;
pub mod mail;
pub mod oauth;
pub mod passwords;
pub mod scopes;
mod server;
pub mod sessions;
pub mod signin;
pub mod state;
pub mod sweep;
pub mod users;

pub use server::{
    open_users, Idp, RunningIdp, StartError, Sweeper, INDEX_DIR, KEY_FILE, KIND,
    PASSWORD_CHECKS_QUEUED, SERVICE_DB_DIR, SWEEP_INTERVAL_SECS,
};
