//! The Milagro D-TA (Distributed Trust Authority): one holder of a share of the M-Pin
//! master secret, issuing what that share makes to parties that prove who they are on
//! chain.
//!
//! Like every service it makes a secp256k1 key and a Birth Certificate (role `dta`) on
//! first start, anchors it and serves it at `/.well-known/milagro/birth-certificate`
//! ([`milagro_service`] does that). What is its own:
//!
//! - its **master-secret share** `s` (BLS12-381, [`milagro_mpin::MasterShare`]),
//!   generated once and kept sealed at rest with AES-256-GCM under a key from the
//!   environment or an owner-only file ([`master`]); it is opened at start, wiped from
//!   memory when the service stops, never logged and never served;
//! - the **share API**, served over Milagro TLS only ([`milagro_tls`]: the peer is
//!   admitted by its own anchored Birth Certificate, looked up in the D-TA's own index):
//!   `POST /v1/shares/server` gives an authentication server (role `authserver`, listed
//!   by digest in `[shares] authservers`) its server-secret share `s·Q`; `POST /v1/shares/client` gives a PAT (role `pat`) its
//!   client-secret share and today's time-permit share for the M-Pin identity that binds
//!   its user (an ID token of a trusted IdP, [`relying_party`]) to its key ([`api`]);
//!   `POST /v1/shares/permit` renews a PAT's time permit, its key alone proving it is the
//!   device the identity was issued to ([`issued`]);
//! - the **issuance log**: every issuance appended to an RFC 6962 log as a hash of the
//!   kind, the hashed identity and the day ([`issuance`]), checkpoints anchored
//!   periodically.
//!
//! # Main types
//!
//! - [`config::Config`]: `dta.toml` (every key in `dta/dta.example.toml`);
//! - [`Dta::start`] → [`RunningDta`]: the plain HTTP server, the chain loop, the share API;
//! - [`master::SealingKey`], [`master::load_or_create`]: the sealed share;
//! - [`relying_party::RelyingParty`] → [`relying_party::VerifiedLogin`]: ID tokens of
//!   trusted IdPs whose anchored Birth Certificate is checked, not just their URL, bound
//!   (`cnf.jkt`, DPoP, ADR 0012) to the key of the device presenting them;
//! - [`error::ApiError`]: the one error type of both APIs.
//!
//! # What it does not do
//!
//! It does not sum shares (the PAT and the authentication server do), verify M-Pin
//! logins, revoke identities, or issue time permits for days other than today. It reaches IdPs over plain HTTP only,
//! so it believes an IdP's token-signing keys only from its JWKS signed by the IdP's
//! anchored key (ADR 0010), and keeps checked keys for at most a minute.
//!
//! ```no_run
//! use milagro_dta::{config::Config, Dta};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::load(std::path::Path::new("dta.toml"))?;
//! let dta = Dta::start(config)?;
//! println!("D-TA {} at {}, shares at {}", dta.state().identity.digest(), dta.local_url(), dta.state().share_listen);
//! dta.stop();
//! # Ok(()) }
//! ```

pub mod api;
pub mod config;
pub mod error;
pub mod issuance;
pub mod issued;
pub mod master;
pub mod relying_party;
mod server;
mod share_api;
pub mod state;

pub use server::{Dta, RunningDta, StartError, INDEX_DIR, KEY_FILE, KIND, SERVICE_DB_DIR};
