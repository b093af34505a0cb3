//! The same network with one container per party (`deploy/container/compose.yaml`):
//! every container mounts the network's directory, and the container engine does what
//! the supervisor does for `up` (start each party, restart it when it fails).
//!
//! - [`run_node`] (`milagro network node`): the node container. It owns the regtest node
//!   for as long as it runs, mines a block whenever a transaction waits (as the supervisor
//!   does), and stops the node on SIGTERM.
//! - [`configure`] (`milagro network configure`): the one-shot step. It waits for the
//!   node, plans the network (or finds the plan), and wires it as `up` does (the IdP's
//!   client for the D-TAs, then their configurations, then the TBS tenant), waiting for
//!   the parties each step needs; it ends once every party is ready. Run again, it only
//!   checks.
//! - [`wait_for_party`] (`milagro network serve PARTY`): a party container waits until
//!   `configure` has written its configuration and the node answers, then runs
//!   `milagro ROLE serve` in its place.
//! - [`ready`] (`milagro network ready PARTY`): the containers' health check.
//!
//! Why each container waits for itself, rather than the compose file ordering them with
//! health conditions: the D-TAs' configurations need the client that the running IdP
//! registers, so `configure` cannot finish before the parties start; and podman-compose
//! ignores `service_healthy` on podman before 4.6, so an order that relied on it would
//! not hold on the podman 4.3 this project is tested with.

use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use milagro_regtest::NodeInfo;

use crate::layout::{read_json, NetworkDir, Runner};
use crate::status::{self, NetworkStatus};
use crate::supervisor::{mine_if_pending, stop_on_signals, TICK};
use crate::NetworkError;

/// How often a waiting container looks again.
const POLL: Duration = Duration::from_millis(500);

/// Runs the node of `dir` until SIGTERM or SIGINT, mining a block whenever its mempool
/// holds a transaction; then stops it. Fails if the node ends on its own (its container
/// then ends too, and the engine's restart policy applies).
pub fn run_node(dir: &NetworkDir) -> Result<(), NetworkError> {
    let stop = stop_on_signals()?;
    crate::up::prepare_dir(dir)?;
    let node = crate::node::start(dir)?;
    let miner = node
        .wallet_rpc()
        .wallet_new_address()
        .map_err(|e| NetworkError::Node(e.to_string()))?;
    tracing::info!(node = %node.rpc_url, pid = node.pid, "the node runs");
    let rpc = node.rpc();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        if !milagro_regtest::pid_alive(node.pid) {
            return Err(NetworkError::Node(format!(
                "bitcoind (pid {}) ended; see {}",
                node.pid,
                dir.node_dir().join("regtest/debug.log").display()
            )));
        }
        mine_if_pending(&rpc, &miner);
        thread::sleep(TICK);
    }
    tracing::info!("stopping the node");
    milagro_regtest::down(&dir.node_dir()).map_err(|e| NetworkError::Node(e.to_string()))
}

/// The one-shot step of the compose network in `dir`: waits (at most `patience` in all)
/// for the node, plans the network if it is not planned, wires it, waits until every
/// party is ready, and returns its status.
pub fn configure(dir: &NetworkDir, patience: Duration) -> Result<NetworkStatus, NetworkError> {
    let deadline = Instant::now() + patience;
    crate::up::prepare_dir(dir)?;
    let node = wait_for_node(dir, deadline)?;
    let record = crate::up::planned(dir, &node, Runner::Containers)?;
    crate::up::wire(dir, &node, record, deadline)?;
    status::status(dir)
}

/// Waits (at most `patience`) until party `name` of `dir` is planned, its configuration
/// written and the node answers; returns its role and configuration file, for
/// `milagro ROLE serve --config FILE`.
pub fn wait_for_party(
    dir: &NetworkDir,
    name: &str,
    patience: Duration,
) -> Result<(String, PathBuf), NetworkError> {
    let deadline = Instant::now() + patience;
    loop {
        let why = match party_config(dir, name)? {
            Ok(found) => match node_ready(dir) {
                Ok(_) => return Ok(found),
                Err(why) => why,
            },
            Err(why) => why,
        };
        if Instant::now() > deadline {
            return Err(NetworkError::NotReady {
                party: name.to_owned(),
                why,
            });
        }
        thread::sleep(POLL);
    }
}

/// Whether party `name` of `dir` (or `node`) is ready: the node's wallet holds coins;
/// a party's `/readyz` answers 200.
pub fn ready(dir: &NetworkDir, name: &str) -> Result<(), NetworkError> {
    let not_ready = |why: String| NetworkError::NotReady {
        party: name.to_owned(),
        why,
    };
    if name == "node" {
        return node_ready(dir).map(drop).map_err(not_ready);
    }
    let record = dir.read_record()?.ok_or_else(|| NetworkError::NotSetUp {
        dir: dir.root().to_path_buf(),
    })?;
    let party = record
        .party(name)
        .ok_or_else(|| not_ready(format!("network.json names no party {name}")))?;
    let readiness = status::readiness(&crate::up::client()?, party).map_err(not_ready)?;
    if readiness.ready {
        return Ok(());
    }
    let failed: Vec<String> = readiness
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    Err(not_ready(failed.join("; ")))
}

/// Party `name`'s role and configuration file, or why it has none yet.
fn party_config(
    dir: &NetworkDir,
    name: &str,
) -> Result<Result<(String, PathBuf), String>, NetworkError> {
    let Some(record) = dir.read_record()? else {
        return Ok(Err("the network is not planned yet".into()));
    };
    let Some(party) = record.party(name) else {
        return Err(NetworkError::Setup(format!(
            "network.json names no party {name} (parties: {})",
            record
                .parties
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let role = party
        .service_role()
        .ok_or_else(|| NetworkError::Setup(format!("unknown role {}", party.role)))?;
    let config = milagro_init::config_path(&dir.party_dir(name), role);
    if !config.exists() {
        return Ok(Err(format!("{} is not written yet", config.display())));
    }
    Ok(Ok((party.role.clone(), config)))
}

/// Waits until the node of `dir` is ready (see [`node_ready`]).
fn wait_for_node(dir: &NetworkDir, deadline: Instant) -> Result<NodeInfo, NetworkError> {
    loop {
        match node_ready(dir) {
            Ok(node) => return Ok(node),
            Err(why) if Instant::now() > deadline => return Err(NetworkError::Node(why)),
            Err(_) => thread::sleep(POLL),
        }
    }
}

/// The node of `dir` if it is recorded, answers, and its wallet (which pays every
/// anchor) is loaded and holds coins: the node container has prepared it. Otherwise why
/// not.
fn node_ready(dir: &NetworkDir) -> Result<NodeInfo, String> {
    let file = dir.node_dir().join(milagro_regtest::NODE_FILE);
    let node: NodeInfo = read_json(&file)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} is not written yet", file.display()))?;
    let balance: f64 = node
        .wallet_rpc()
        .call("getbalance", &[])
        .map_err(|e| format!("the node's wallet does not answer: {e}"))?;
    if balance > 0.0 {
        Ok(node)
    } else {
        Err("the node's wallet holds no coins yet".into())
    }
}
