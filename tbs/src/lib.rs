//! The Trusted Bitcoin Server (TBS): a Milagro registry that devices can ask over HTTP.
//!
//! A PAT (a phone, an app, an IoT device) cannot run a Bitcoin node. The TBS runs next to
//! one, indexes every Milagro record in its chain (reorg-safe, through
//! [`milagro_registry`]), and answers what a PAT needs to verify an anchor *itself*: the
//! records of a digest, a transaction or a key; the self-contained anchor proof of a
//! record; and the block headers to check it against. Nothing it serves has to be trusted:
//! proofs are checked by SPV with [`milagro_anchor::proof`].
//!
//! The TBS is a party of the network like any other: on first start it makes its own
//! secp256k1 key and Birth Certificate, anchors the certificate's digest from a UTXO of
//! that key (the node's wallet pays), and serves it at the normative
//! `/.well-known/milagro/birth-certificate`. A PAT is provisioned with only the TBS's URL
//! and that digest.
//!
//! # Main types
//!
//! - [`Config`](config::Config): `tbs.toml`, parsed purely and validated
//!   (every key in `tbs/tbs.example.toml`);
//! - [`Tbs::start`] → [`RunningTbs`]: the TBS as a [`milagro_service::runtime::Service`]:
//!   the shared runtime binds, starts the chain loop and the HTTP server on their own
//!   threads, and stops them gracefully;
//! - [`Identity`](identity::Identity): the key and Birth Certificate in the state directory
//!   (made, checked and anchored by [`milagro_service`], as for every service);
//! - [`AppState`](state::AppState): what handlers share (configuration, identity, index,
//!   node, chain status, the TBS's own anchor, metrics);
//! - [`api`]: the routes ([`api::ENDPOINTS`], described in `tbs/openapi.json`) and the
//!   one error type [`ApiError`](api::ApiError);
//! - [`tenants`]: tenants (application developers, device makers), their hashed API
//!   tokens and device groups, reachable only through an authorization scope; served at
//!   `/v1/admin/tenants`, `/v1/tenants/{tenant}/…` and as a small web page at `/admin`.
//! - [`enrolment`]: devices enrol through the TBS (`docs/enrolment.md`): in direct mode
//!   the TBS funds and broadcasts the device's own signed anchor; in batch mode
//!   ([`enrolment::batching`]) it anchors many devices' certificate digests under one batch
//!   root per interval; sealed instructions are served once the anchor is deep enough;
//! - [`audit`]: every registration in an RFC 6962 log whose signed checkpoints the chain
//!   loop anchors on chain periodically; checkpoints, consistency and inclusion proofs are
//!   served at `/v1/audit/…`.
//!
//! Threads: `tbs-chain` polls the node (a failing node is retried with capped backoff while
//! the API serves the index as it stands) and then runs the anchoring rule documented in
//! [`milagro_service::own_anchor`], which never anchors twice across restarts; `tbs-http` runs actix-web,
//! whose handlers do their blocking work (sled, node RPC) on actix's blocking pool.
//!
//! # What it does not do (yet)
//!
//! It does not listen to ZMQ (polling bounds the delay
//! before a new block is indexed; a wake-up would only shorten it), terminate TLS (run it
//! behind a reverse proxy), or update its Birth Certificate (a changed `name` or
//! `public_url` is refused at start).
//!
//! ```no_run
//! use milagro_tbs::{config::Config, Tbs};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config::parse(r#"
//!     listen = "127.0.0.1:0"
//!     public_url = "https://tbs.example.com"
//!     name = "Example TBS"
//!     state_dir = "/var/lib/milagro-tbs"
//!     [node]
//!     rpc_url = "http://127.0.0.1:18443"
//!     rpc_cookie = "/var/lib/bitcoind/regtest/.cookie"
//!     network = "regtest"
//! "#)?;
//! let tbs = Tbs::start(config)?;
//! println!("serving at {}", tbs.local_url());
//! tbs.stop();
//! # Ok(()) }
//! ```

pub mod api;
pub mod audit;
pub mod chain_hooks;
pub mod config;
pub mod enrolment;
pub mod identity;
pub mod metrics;
mod server;
pub mod state;
pub mod tenants;

pub use milagro_service::{files, own_anchor};
pub use server::{RunningTbs, StartError, Tbs, INDEX_DIR};

/// The time now in Unix seconds (0 if the clock reads before 1970): the one clock the
/// TBS reads, for request freshness, batch intervals and checkpoint intervals.
pub(crate) fn unix_now() -> u64 {
    milagro_service::unix_now()
}
