//! What every Milagro service shares: its state files, its anchored identity, and its
//! audit log with anchored checkpoints.
//!
//! Every service (the TBS, the IdP, each D-TA) is a party of the network: on first start
//! it makes a secp256k1 key and a Birth Certificate in its state directory, anchors the
//! certificate's digest from a UTXO of that key (the node's wallet pays), and serves it at
//! `/.well-known/milagro/birth-certificate`. And every service logs what it vouches for in
//! an RFC 6962 log whose signed checkpoints it anchors periodically. This crate does those
//! things once, parameterised by the service's role and its log's entries:
//!
//! - [`files`]: state files written atomically (temporary file + rename), keys mode 0600;
//! - [`identity::PartyIdentity`]: the key and certificate, made once and checked against
//!   the configuration at each start; [`identity::PartyKind`] names the role and key file;
//! - [`own_anchor::AnchorKeeper`]: anchors the certificate exactly once across restarts
//!   and reorgs, and publishes [`own_anchor::OwnAnchor`] for the HTTP handlers, which
//!   serve it with [`well_known::birth_certificate_document`];
//! - [`audit::Audit`]: the log of 32-byte entries (durable in sled, rebuilt at start), and
//!   [`audit::anchoring`], the rule that anchors its signed checkpoints;
//! - [`runtime`]: the one way a service starts, runs and stops: the [`runtime::Service`]
//!   trait (configuration, routes, chain hooks), [`runtime::start`], the
//!   [`runtime::Running`] handle, and the one chain loop every service runs (network
//!   check, index, own anchor, the service's hooks, checkpoints);
//!   [`base::ServiceBase`]: the state every service opens at start; [`sync`]: the stop
//!   flag and the backoff its threads use;
//! - `peer_directory` (feature `tls`): the service as a Milagro TLS party: its
//!   `LocalIdentity` from its own anchor (waiting for it to confirm), and a
//!   `PeerDirectory` over its own index;
//! - [`http`]: runs an actix-web server on its own thread, with read deadlines and a
//!   connection cap, and stops it; [`https`]: the `[tls]` section and the reloading
//!   certificate that make its listener HTTPS; [`api`]: the JSON error type every API
//!   answers with, and its body and bearer helpers; [`routes`]: a service's route table
//!   (405 with `Allow`) and the OpenAPI document it is checked against;
//! - [`work_gate::WorkGate`]: a bounded queue (503 `busy` when full) in front of the
//!   expensive work a request without credentials can cause;
//! - [`party_config::PartyConfig`]: the keys every service's configuration has, as one
//!   section;
//! - [`config`]: the configuration sections every service has (`[node]`, `[sync]`,
//!   `[audit]`, anchoring), checked purely; [`token`]: bearer tokens kept as hashes.
//!
//! It does not define a service's routes, configuration files or chain work, nor what a
//! service logs (the TBS logs registrations, the IdP authentications).
//!
//! ```no_run
//! use milagro_anchor::birth_certificate::Role;
//! use milagro_service::identity::{PartyIdentity, PartyKind};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! const IDP: PartyKind = PartyKind { role: Role::Idp, key_file: "idp.key" };
//! let dir = std::path::Path::new("/var/lib/milagro-idp");
//! milagro_service::files::create_private_dir(dir)?;
//! let me = PartyIdentity::load_or_create(IDP, dir, "Example IdP", "https://idp.example", 0)?;
//! println!("anchor {}", me.digest());
//! # Ok(()) }
//! ```

pub mod api;
pub mod attempts;
pub mod audit;
pub mod base;
pub mod body_deadline;
pub mod config;
pub mod files;
pub mod health;
pub mod http;
pub mod https;
pub mod identity;
pub mod open_connections;
pub mod own_anchor;
pub mod party_config;
#[cfg(feature = "tls")]
pub mod peer_directory;
pub mod proxy;
pub mod routes;
pub mod runtime;
pub mod sled_db;
pub mod sync;
pub mod token;
pub mod well_known;
pub mod work_gate;

/// The time now in Unix seconds (0 if the clock reads before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
