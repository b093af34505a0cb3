//! `milagro init ROLE`: sets up one service (a TBS, an IdP, a D-TA or an authentication
//! server) for one network, so that `milagro ROLE serve --config …` runs it unchanged.
//!
//! [`init`] writes, into one directory:
//! - `ROLE.toml`: the role's commented example configuration ([`template`]) filled in with
//!   safe defaults for the network (loopback listener, the network's RPC port and cookie,
//!   final peer depth off regtest) and what the caller gave; checked by the service's own
//!   parser before it is written;
//! - `state/` (mode 0700): the service key and its signed Birth Certificate, so the
//!   digest peers pin is known before the first start;
//! - for a D-TA, `dta-master.key` (mode 0600): the key sealing its master-secret share.
//!
//! Admin tokens are returned once ([`Initialized`]); only their SHA-256 goes into the file.
//! `init` refuses a directory that already holds a configuration or a state directory.
//!
//! What it does not do: start anything, fund anything, or talk to a node (the node's
//! wallet pays for the anchors when the service starts).
//!
//! ```no_run
//! use milagro_init::{init, Chain, InitRequest, ServiceRole};
//! let request = InitRequest::new(ServiceRole::Tbs, Chain::Regtest, "/srv/milagro/tbs".into());
//! let made = init(&request, std::path::Path::new("/home/me"), 1_765_000_000)?;
//! println!("{} is {}; admin token {:?}", made.config_file.display(), made.digest,
//!          made.admin_token.map(|t| t.reveal().to_owned()));
//! # Ok::<(), milagro_init::InitError>(())
//! ```

mod role;
mod setup;
pub mod template;

pub use role::{Chain, ServiceRole};
pub use setup::{
    accepted, config_path, finish, init, prepare, resume, InitError, InitRequest, Initialized,
    Prepared, MASTER_KEY_FILE, STATE_DIR,
};
pub use template::{DtaPeer, TlsFiles, TrustedIdp};

#[cfg(test)]
mod tests;
