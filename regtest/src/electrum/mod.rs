//! ElectrumX, a real Electrum server, as an independent header source for tests and benches.
//!
//! [`install_electrumx`] puts ElectrumX 1.20 (PyPI package `e-x`, pinned with every dependency)
//! and its LevelDB binding (`plyvel`, a manylinux wheel with LevelDB inside) into a Python
//! virtual environment in the [`machine_cache_dir`](crate::machine_cache_dir), once per
//! machine; [`ElectrumServer::start`] runs it against a `bitcoind` on loopback (started with
//! `-txindex=1`, which ElectrumX requires) and waits until it serves the node's tip. Electrum servers index scripts, not `OP_RETURN` outputs: they
//! confirm headers and the Merkle path of a known transaction, they do not discover records.
//!
//! What this module deliberately does not do: build electrs (its RocksDB C++ build takes far
//! longer than the pip install, see `docs/adr/0006-electrum-header-source.md`), serve TLS
//! (`tcp://` on 127.0.0.1 only), or talk the Electrum protocol beyond the one call that
//! tells whether the server is up and how far it has synced (clients are `milagro-electrum`'s
//! job).
//!
//! ```no_run
//! use milagro_regtest::ElectrumServer;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (rpc_url, cookie) = ("http://127.0.0.1:18443", std::path::Path::new("/tmp/.cookie"));
//! // Installs ElectrumX on first use (about 20 s), then starts it against the node
//! // (which must run with `-txindex=1`).
//! let server = ElectrumServer::start(rpc_url, cookie, bitcoin::Network::Regtest)?;
//! println!("electrum server at {}", server.url()); // tcp://127.0.0.1:PORT
//! # Ok(())
//! # }
//! ```

mod install;
mod probe;
mod server;

pub use install::{
    electrumx_exe, install_electrumx, Electrumx, ElectrumxInstallError, ELECTRUMX_REQUIREMENTS,
    ELECTRUMX_VERSION,
};
pub use server::{ElectrumServer, ElectrumServerError};
