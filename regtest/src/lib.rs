//! Gets and runs a real `bitcoind` in regtest for the Milagro Trust workspace.
//!
//! Debian bookworm ships no `bitcoind`, and the tests and `milagro regtest up` need one. This
//! crate:
//!
//! - [`install`]s Bitcoin Knots 29.4 from Debian sid into a private, git-ignored prefix
//!   (`.cache/bitcoind/`, once per machine; DESIGN.md §6), checks that every shared library
//!   resolves inside that prefix, and leaves wrapper scripts that behave like plain
//!   `bitcoind` / `bitcoin-cli` binaries;
//! - gives tests an executable for the `bitcoind` crate through [`bitcoind_exe`], which
//!   installs on first use instead of skipping;
//! - starts and stops a persistent regtest node ([`up`], [`down`]) with a funded wallet, and
//!   talks to it through the workspace's one node adapter ([`BitcoindRpc`]).
//!
//! What it deliberately does not do: it never touches `/etc/apt` or the system's packages, it
//! is not a node adapter (it borrows the registry's, the only one in the workspace),
//! it runs only regtest and only on 127.0.0.1, and it supports only x86-64 Linux hosts with
//! `apt-get` and `dpkg`.
//!
//! ```no_run
//! use milagro_regtest::{bitcoind_exe, down, up};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let exe = bitcoind_exe()?; // downloads once, then instant
//! let datadir = std::path::Path::new("/tmp/milagro-node");
//! let node = up(&exe, datadir)?;
//! let balance: f64 = node.wallet_rpc().call("getbalance", &[])?;
//! println!("{} holds {balance} BTC", node.rpc_url);
//! down(datadir)?;
//! # Ok(())
//! # }
//! ```

mod install;
mod node;
mod process;

use std::path::{Path, PathBuf};

pub use install::{install, InstallError, Installed, UnresolvedLibrary};
pub use milagro_registry::bitcoind::BitcoindRpc;
pub use node::{down, up, NodeError, NodeInfo, NODE_FILE, WALLET};
pub use process::pid_alive;

/// The arguments every node of this workspace runs with, beside its network and data
/// directory: a fallback fee for the wallet, and the transaction index, which the registry
/// needs to look up the funding transaction a record spends (`registry/SCHEMA.md`).
pub const NODE_ARGS: &[&str] = &["-fallbackfee=0.0001", "-txindex=1"];

/// Where [`bitcoind_exe`] installs: `$MILAGRO_CACHE_DIR` if set, else `.cache` at the
/// workspace root (located at compile time, from this crate's manifest directory).
pub fn default_cache_dir() -> PathBuf {
    match std::env::var_os("MILAGRO_CACHE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
            manifest.parent().unwrap_or(manifest).join(".cache")
        }
    }
}

/// A `bitcoind` executable for tests and the CLI: `$BITCOIND_EXE` if it names an existing
/// file, else the one from [`install`] into [`default_cache_dir`] (downloading it on first use).
pub fn bitcoind_exe() -> Result<PathBuf, InstallError> {
    if let Some(exe) = std::env::var_os("BITCOIND_EXE").map(PathBuf::from) {
        if exe.is_file() {
            return Ok(exe);
        }
        tracing::warn!(exe = %exe.display(), "BITCOIND_EXE is not a file; installing instead");
    }
    Ok(install(&default_cache_dir())?.bitcoind)
}
