//! A persistent regtest node that outlives the process that started it
//! (`milagro regtest up` / `milagro regtest down`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::chain::ChainError;

mod daemon;

use daemon::{answers, daemon_alive, is_port_clash, start, wait_for_rpc};

/// Name of the wallet [`up`] creates or loads.
pub const WALLET: &str = "milagro";
/// File in the datadir where [`up`] records the running node.
pub const NODE_FILE: &str = "milagro-node.json";
/// Blocks mined on a fresh chain: 100 to mature the first coinbase, plus one.
const INITIAL_BLOCKS: u64 = 101;
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);
const START_ATTEMPTS: usize = 3;

/// A running regtest node, as recorded in `DATADIR/milagro-node.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// The node's data directory (absolute).
    pub datadir: PathBuf,
    /// `http://127.0.0.1:PORT`, the node-level JSON-RPC endpoint.
    pub rpc_url: String,
    /// The RPC port on 127.0.0.1.
    pub rpc_port: u16,
    /// The P2P port on 127.0.0.1 (for connecting a second node).
    pub p2p_port: u16,
    /// The cookie file holding the RPC credentials; rewritten at every start.
    pub cookie_file: PathBuf,
    /// The wallet [`up`] loaded, holding the mined coins.
    pub wallet: String,
    /// The daemon's process id.
    pub pid: u32,
}

impl NodeInfo {
    /// The node adapter for node-level RPCs.
    pub fn rpc(&self) -> BitcoindRpc {
        BitcoindRpc::with_cookie(&self.rpc_url, &self.cookie_file)
    }

    /// The node adapter for RPCs of the node's wallet (`/wallet/milagro`).
    pub fn wallet_rpc(&self) -> BitcoindRpc {
        self.rpc().for_wallet(&self.wallet)
    }
}

/// Why a node could not be started, prepared or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// A file-system operation failed.
    #[error("could not {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The node record exists but cannot be parsed.
    #[error("node record {} is not valid", path.display())]
    BadRecord {
        /// The record file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// [`down`] found no node recorded in the datadir.
    #[error("no node is recorded in {} (no {NODE_FILE}); was it started with `up`?", datadir.display())]
    NotRecorded {
        /// The datadir that was looked in.
        datadir: PathBuf,
    },
    /// The bitcoind executable could not be run.
    #[error("could not run {}", exe.display())]
    Spawn {
        /// The executable.
        exe: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// bitcoind reported a failed start.
    #[error("bitcoind failed to start in {} ({status}):\n{output}\nregtest/debug.log ends with:\n{log}",
        datadir.display())]
    StartFailed {
        /// The datadir.
        datadir: PathBuf,
        /// bitcoind's exit status.
        status: String,
        /// The tail of what it printed.
        output: String,
        /// The tail of `regtest/debug.log`.
        log: String,
    },
    /// The daemon died before its RPC answered.
    #[error(
        "bitcoind (pid {pid}) exited before its rpc answered; regtest/debug.log ends with:\n{log}"
    )]
    Exited {
        /// The daemon's process id.
        pid: u32,
        /// The tail of `regtest/debug.log`.
        log: String,
    },
    /// The RPC did not answer in time.
    #[error("bitcoind in {} did not answer rpc within {} s; regtest/debug.log ends with:\n{log}",
        datadir.display(), after.as_secs())]
    StartTimeout {
        /// The datadir.
        datadir: PathBuf,
        /// How long it was given.
        after: Duration,
        /// The tail of `regtest/debug.log`.
        log: String,
        /// The last RPC failure.
        #[source]
        source: Box<ChainError>,
    },
    /// The daemon was asked to stop but was still running at the deadline.
    #[error("bitcoind (pid {pid}) was still running {} s after being asked to stop", after.as_secs())]
    StopTimeout {
        /// The daemon's process id.
        pid: u32,
        /// How long it was given.
        after: Duration,
    },
    /// An RPC call failed.
    #[error("rpc failed while {during}")]
    Rpc {
        /// What was being done, e.g. "creating the wallet".
        during: &'static str,
        /// The RPC failure.
        #[source]
        source: Box<ChainError>,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NodeError {
    let path = path.to_path_buf();
    move |source| NodeError::Io {
        action,
        path,
        source,
    }
}

fn rpc_err(during: &'static str) -> impl FnOnce(ChainError) -> NodeError {
    move |source| NodeError::Rpc {
        during,
        source: Box::new(source),
    }
}

/// Starts a regtest node on `datadir` that keeps running after this process exits, with
/// wallet `milagro` loaded and at least 101 blocks mined to it, and records it in
/// `datadir/milagro-node.json`.
///
/// Idempotent: if the recorded node is running, returns its record unchanged (same pid).
/// RPC and P2P listen only on 127.0.0.1, on free ports chosen at start. Not safe to call
/// concurrently for the same datadir.
pub fn up(exe: &Path, datadir: &Path) -> Result<NodeInfo, NodeError> {
    fs::create_dir_all(datadir).map_err(io_err("create directory", datadir))?;
    let datadir = datadir
        .canonicalize()
        .map_err(io_err("resolve directory", datadir))?;
    let mut previous = last_ports(&datadir);
    if let Some(info) = read_record(&datadir)? {
        previous = Some((info.rpc_port, info.p2p_port));
        if answers(&info) || daemon_alive(&info) {
            // Running, or still starting: never start a second daemon on the same datadir.
            wait_for_rpc(&info, Instant::now() + START_TIMEOUT)?;
            prepare(&info)?;
            return Ok(info);
        }
        tracing::info!(pid = info.pid, "removing the record of a node that is gone");
        remove_record(&datadir)?;
    }
    let mut attempt = 1;
    let info = loop {
        // A clash on the previous ports falls back to fresh ones.
        match start(exe, &datadir, previous.take()) {
            Err(NodeError::StartFailed { output, log, .. })
                if attempt < START_ATTEMPTS && is_port_clash(&output, &log) =>
            {
                attempt += 1;
            }
            other => break other?,
        }
    };
    // Record before preparing, so that `down` can stop the node even if preparing fails.
    write_record(&info)?;
    prepare(&info)?;
    Ok(info)
}

/// Stops the node recorded in `datadir` (RPC `stop`, or SIGTERM if RPC fails), waits up to
/// 60 s for its process to end, and removes the record.
pub fn down(datadir: &Path) -> Result<(), NodeError> {
    let datadir = datadir
        .canonicalize()
        .unwrap_or_else(|_| datadir.to_path_buf());
    let info = read_record(&datadir)?.ok_or_else(|| NodeError::NotRecorded {
        datadir: datadir.clone(),
    })?;
    if daemon_alive(&info) {
        let stopped = info.rpc().call::<Value>("stop", &[]);
        if let Err(source) = stopped {
            // RPC may be unusable (warming up, cookie gone); bitcoind shuts down cleanly on TERM.
            let signalled = Command::new("kill")
                .args(["-TERM", &info.pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !signalled && daemon_alive(&info) {
                return Err(rpc_err("asking the node to stop")(source));
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while daemon_alive(&info) {
            if Instant::now() >= deadline {
                return Err(NodeError::StopTimeout {
                    pid: info.pid,
                    after: STOP_TIMEOUT,
                });
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
    remove_record(&datadir)
}

/// Loads (or creates) the wallet and mines the initial blocks if the chain is short.
fn prepare(info: &NodeInfo) -> Result<(), NodeError> {
    let rpc = info.rpc();
    let loaded = rpc
        .call::<Value>("listwallets", &[])
        .map_err(rpc_err("listing loaded wallets"))?;
    if !names(&loaded).any(|n| n == info.wallet) {
        let on_disk = rpc
            .call::<Value>("listwalletdir", &[])
            .map_err(rpc_err("listing wallets on disk"))?;
        let on_disk = on_disk.get("wallets").cloned().unwrap_or_default();
        let exists = on_disk
            .as_array()
            .into_iter()
            .flatten()
            .any(|w| w.get("name").and_then(Value::as_str) == Some(&info.wallet));
        if exists {
            rpc.call::<Value>("loadwallet", &[json!(info.wallet)])
                .map_err(rpc_err("loading the wallet"))?;
        } else {
            rpc.call::<Value>("createwallet", &[json!(info.wallet)])
                .map_err(rpc_err("creating the wallet"))?;
        }
    }
    let height = rpc
        .call::<Value>("getblockcount", &[])
        .map_err(rpc_err("reading the chain height"))?;
    if height.as_u64().unwrap_or(0) < INITIAL_BLOCKS {
        let wallet = info.wallet_rpc();
        let address = wallet
            .call::<Value>("getnewaddress", &[])
            .map_err(rpc_err("getting a mining address"))?;
        rpc.call::<Value>(
            "generatetoaddress",
            &[json!(INITIAL_BLOCKS), json!(address)],
        )
        .map_err(rpc_err("mining the initial blocks"))?;
    }
    Ok(())
}

fn names(list: &Value) -> impl Iterator<Item = &str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn read_record(datadir: &Path) -> Result<Option<NodeInfo>, NodeError> {
    let path = datadir.join(NODE_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| NodeError::BadRecord { path, source })
}

/// File of the ports the node last ran on (`RPC P2P`), kept after `down` so that the
/// next `up` reuses them: services configured with the RPC URL find the node again.
const PORTS_FILE: &str = "milagro-node-ports";

fn last_ports(datadir: &Path) -> Option<(u16, u16)> {
    let text = fs::read_to_string(datadir.join(PORTS_FILE)).ok()?;
    let (rpc, p2p) = text.trim().split_once(' ')?;
    Some((rpc.parse().ok()?, p2p.parse().ok()?))
}

fn write_record(info: &NodeInfo) -> Result<(), NodeError> {
    let ports = info.datadir.join(PORTS_FILE);
    fs::write(&ports, format!("{} {}\n", info.rpc_port, info.p2p_port))
        .map_err(io_err("write", &ports))?;
    let path = info.datadir.join(NODE_FILE);
    let partial = info.datadir.join(format!("{NODE_FILE}.partial"));
    let text = serde_json::to_string_pretty(info).map_err(|source| NodeError::BadRecord {
        path: path.clone(),
        source,
    })?;
    fs::write(&partial, text + "\n").map_err(io_err("write", &partial))?;
    fs::rename(&partial, &path).map_err(io_err("write", &path))
}

fn remove_record(datadir: &Path) -> Result<(), NodeError> {
    let path = datadir.join(NODE_FILE);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err("remove", &path)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_through_json() {
        let info = NodeInfo {
            datadir: "/d".into(),
            rpc_url: "http://127.0.0.1:1234".into(),
            rpc_port: 1234,
            p2p_port: 1235,
            cookie_file: "/d/regtest/.cookie".into(),
            wallet: WALLET.into(),
            pid: 42,
        };
        let text = serde_json::to_string(&info).map_err(|e| e.to_string());
        let back: Result<NodeInfo, String> =
            text.and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()));
        assert_eq!(back, Ok(info));
    }
}
