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
//!   talks to it through the workspace's one node adapter ([`BitcoindRpc`]), to which
//!   [`RegtestControls`] adds what only regtest allows (mining, invalidating blocks);
//! - installs ElectrumX from PyPI into a virtual environment in the [`machine_cache_dir`]
//!   (once per machine, shared by every clone) and runs it against a node
//!   ([`electrum::ElectrumServer`]): an independent header source for SPV verifiers;
//! - installs pinned npm packages (an OpenID provider, a relying party) the same way, with
//!   the Node script that drives each ([`npm::install_pinned`]).
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

mod controls;
pub mod electrum;
mod install;
mod node;
pub mod npm;
mod process;

use std::path::{Path, PathBuf};

pub use controls::RegtestControls;
pub use electrum::{
    electrumx_exe, install_electrumx, ElectrumServer, ElectrumServerError, Electrumx,
    ElectrumxInstallError,
};
pub use install::{install, InstallError, Installed, UnresolvedLibrary};
pub use milagro_registry::bitcoind::BitcoindRpc;
pub use node::{down, up, NodeError, NodeInfo, NODE_FILE, WALLET};
pub use process::pid_alive;

/// The arguments every node of this workspace runs with, beside its network and data
/// directory: a fallback fee for the wallet; the transaction index, which the registry
/// needs to look up the funding transaction a record spends (`registry/SCHEMA.md`); and
/// the REST interface, from which the registry reads blocks (`/rest/block/<hash>.bin`).
pub const NODE_ARGS: &[&str] = &["-fallbackfee=0.0001", "-txindex=1", "-rest=1"];

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

/// Where installs shared by every clone of the workspace go: `$MILAGRO_CACHE_DIR` if set,
/// else `$XDG_CACHE_HOME/milagro` (if absolute, as the XDG spec asks), else `~/.cache/milagro`.
///
/// Unlike [`default_cache_dir`] it lies outside the clone, so CI's fresh clones on the
/// same machine reuse what an earlier run installed (ElectrumX's virtual environment).
/// Falls back to [`default_cache_dir`] when neither `XDG_CACHE_HOME` nor `HOME` is set.
pub fn machine_cache_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("MILAGRO_CACHE_DIR") {
        PathBuf::from(dir)
    } else if let Some(xdg) = var("XDG_CACHE_HOME").filter(|d| Path::new(d).is_absolute()) {
        PathBuf::from(xdg).join("milagro")
    } else if let Some(home) = var("HOME") {
        PathBuf::from(home).join(".cache").join("milagro")
    } else {
        default_cache_dir()
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
