//! The supervisor: one background process per network (`milagro network supervise`,
//! started by `up`) that runs the regtest node, runs each party whose configuration
//! exists as `milagro ROLE serve`, restarts a party whose process ends (waiting 1 s,
//! doubling up to 30 s while it keeps failing), mines a block whenever the node's mempool
//! holds a transaction (so anchors and enrolments confirm on their own), and on SIGTERM
//! or SIGINT stops every party gracefully, then the node.
//!
//! What it saw is in `supervisor.json` ([`SupervisorState`]), which `status` reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use milagro_registry::bitcoind::BitcoindRpc;
use milagro_regtest::RegtestControls as _;
use serde::{Deserialize, Serialize};

use crate::layout::{read_json, write_json, NetworkDir, PartyRecord};
use crate::NetworkError;

/// How often the supervisor looks at its processes and the mempool.
pub(crate) const TICK: Duration = Duration::from_millis(250);
/// The first wait before restarting a party that ended; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait before a restart.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A party that ran this long before ending starts again after [`FIRST_BACKOFF`].
const STABLE: Duration = Duration::from_secs(60);
/// How long a party has to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// What the supervisor last saw (`supervisor.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisorState {
    /// The supervisor's process id.
    pub pid: u32,
    /// The node's RPC URL.
    pub node: String,
    /// Each party's process, by name.
    pub parties: BTreeMap<String, ProcessState>,
}

/// One party's process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessState {
    /// Its process id while it runs.
    pub pid: Option<u32>,
    /// How often it was restarted after it ended on its own.
    pub restarts: u32,
    /// How it last ended, if it did (`exit status: 1`, `signal: 9 (SIGKILL)`).
    pub last_exit: Option<String>,
}

impl SupervisorState {
    /// Reads what the supervisor of `dir` last wrote.
    pub fn read(dir: &NetworkDir) -> Result<Option<Self>, NetworkError> {
        read_json(&dir.supervisor_file())
    }
}

/// A party's process and when to start it again.
struct Supervised {
    child: Option<(Child, Instant)>,
    not_before: Instant,
    backoff: Duration,
}

/// Runs the network of `dir` with `milagro` (this binary) until SIGTERM or SIGINT.
pub fn supervise(dir: &NetworkDir, milagro: &Path) -> Result<(), NetworkError> {
    let stop = stop_on_signals()?;
    let pid = std::process::id();
    if let Some(other) = crate::status::supervisor_pid(dir) {
        if other != pid {
            return Err(NetworkError::Setup(format!(
                "the network in {} is supervised already (pid {other})",
                dir.root().display()
            )));
        }
    }
    // A supervisor killed with SIGKILL leaves its parties running: stop them first, or
    // the new ones would find their ports and state taken.
    if let Some(old) = SupervisorState::read(dir)? {
        for (name, process) in &old.parties {
            if let Some(orphan) = process.pid.filter(|&p| serves(p, &dir.party_dir(name))) {
                tracing::warn!(party = %name, pid = orphan, "stopping a party an earlier supervisor left running");
                stop_pid(name, orphan);
            }
        }
    }
    std::fs::write(dir.pid_file(), format!("{pid}\n"))
        .map_err(|e| NetworkError::io(&dir.pid_file(), e))?;
    let node = crate::node::start(dir)?;
    let wallet = node.wallet_rpc();
    let miner = wallet
        .wallet_new_address()
        .map_err(|e| NetworkError::Node(e.to_string()))?;
    let mut state = SupervisorState {
        pid,
        node: node.rpc_url.clone(),
        parties: BTreeMap::new(),
    };
    let mut supervised: BTreeMap<String, Supervised> = BTreeMap::new();
    let mut written: Option<SupervisorState> = None;
    tracing::info!(pid, node = %node.rpc_url, "supervising the network");
    while !stop.load(Ordering::SeqCst) {
        let parties = dir.read_record()?.map(|r| r.parties).unwrap_or_default();
        for party in &parties {
            let Some(config) = config_of(dir, party) else {
                continue;
            };
            let entry = supervised.entry(party.name.clone()).or_insert(Supervised {
                child: None,
                not_before: Instant::now(),
                backoff: FIRST_BACKOFF,
            });
            let process = state.parties.entry(party.name.clone()).or_default();
            tend(dir, milagro, party, &config, entry, process);
        }
        mine_if_pending(&node.rpc(), &miner);
        // Written only when it changed: what was written last is kept, not read back.
        if written.as_ref() != Some(&state) {
            write_json(&dir.supervisor_file(), &state)?;
            written = Some(state.clone());
        }
        std::thread::sleep(TICK);
    }
    tracing::info!("stopping the network");
    for (name, entry) in &mut supervised {
        if let Some((child, _)) = entry.child.take() {
            stop_child(name, child);
        }
        if let Some(process) = state.parties.get_mut(name) {
            process.pid = None;
        }
    }
    write_json(&dir.supervisor_file(), &state)?;
    let stopped =
        milagro_regtest::down(&dir.node_dir()).map_err(|e| NetworkError::Node(e.to_string()));
    let _ = std::fs::remove_file(dir.pid_file());
    stopped
}

/// The configuration file of `party`, once `up` has written it.
fn config_of(dir: &NetworkDir, party: &PartyRecord) -> Option<PathBuf> {
    let role = party.service_role()?;
    let path = milagro_init::config_path(&dir.party_dir(&party.name), role);
    path.exists().then_some(path)
}

/// Starts `party` if it is not running and its wait is over; notes and schedules a
/// restart if it ended.
fn tend(
    dir: &NetworkDir,
    milagro: &Path,
    party: &PartyRecord,
    config: &Path,
    entry: &mut Supervised,
    process: &mut ProcessState,
) {
    if let Some((child, started)) = &mut entry.child {
        match child.try_wait() {
            Ok(None) => return,
            Ok(Some(status)) => {
                tracing::warn!(party = %party.name, %status, "a party ended; restarting it");
                process.restarts += 1;
                process.last_exit = Some(status.to_string());
            }
            Err(e) => {
                tracing::warn!(party = %party.name, error = %e, "cannot wait for a party");
                return;
            }
        }
        entry.backoff = if started.elapsed() > STABLE {
            FIRST_BACKOFF
        } else {
            (entry.backoff * 2).min(MAX_BACKOFF)
        };
        entry.not_before = Instant::now() + entry.backoff;
        entry.child = None;
        process.pid = None;
        return;
    }
    if Instant::now() < entry.not_before {
        return;
    }
    match spawn(dir, milagro, party, config) {
        Ok(child) => {
            process.pid = Some(child.id());
            entry.child = Some((child, Instant::now()));
        }
        Err(e) => {
            tracing::warn!(party = %party.name, error = %e, "cannot start a party");
            entry.not_before = Instant::now() + MAX_BACKOFF;
        }
    }
}

/// `milagro ROLE serve --config CONFIG`, its output appended to the party's log.
fn spawn(
    dir: &NetworkDir,
    milagro: &Path,
    party: &PartyRecord,
    config: &Path,
) -> Result<Child, NetworkError> {
    let (log, err) = dir.open_log(&party.name)?;
    Command::new(milagro)
        .args([party.role.as_str(), "serve", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| NetworkError::io(milagro, e))
}

/// Whether process `pid` is a `milagro … serve` of the party in `party_dir` (and not
/// an unrelated process that reused the number).
fn serves(pid: u32, party_dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let dir = party_dir.as_os_str().as_encoded_bytes();
    milagro_regtest::pid_alive(pid)
        && args.contains(&b"serve".as_slice())
        && args.iter().any(|arg| arg.starts_with(dir))
}

/// SIGTERM to a process that is not our child, then SIGKILL after [`STOP_GRACE`].
fn stop_pid(name: &str, pid: u32) {
    let signal = |sig: &str| {
        let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
    };
    signal("-TERM");
    let deadline = Instant::now() + STOP_GRACE;
    while milagro_regtest::pid_alive(pid) {
        if Instant::now() > deadline {
            tracing::warn!(
                party = name,
                pid,
                "a party did not stop in time; killing it"
            );
            signal("-KILL");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM, then SIGKILL after [`STOP_GRACE`].
fn stop_child(name: &str, mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::warn!(party = name, "a party did not stop in time; killing it");
    let _ = child.kill();
    let _ = child.wait();
}

/// Mines one block to `miner` if the mempool holds a transaction.
pub(crate) fn mine_if_pending(node: &BitcoindRpc, miner: &str) {
    let pending = node
        .call::<serde_json::Value>("getmempoolinfo", &[])
        .ok()
        .and_then(|info| info["size"].as_u64())
        .unwrap_or(0);
    if pending > 0 {
        if let Err(e) = node.generate_to_address(1, miner) {
            tracing::warn!(error = %e, "cannot mine a block");
        }
    }
}

/// A flag set on SIGTERM or SIGINT (a thread of its own waits for them).
pub(crate) fn stop_on_signals() -> Result<Arc<AtomicBool>, NetworkError> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| NetworkError::io(Path::new("a signal runtime"), e))?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("network-signals".into())
        .spawn(move || {
            runtime.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut term), Ok(mut int)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) else {
                    let _ = ready_tx.send(false);
                    return;
                };
                let _ = ready_tx.send(true);
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            });
            flag.store(true, Ordering::SeqCst);
        })
        .map_err(|e| NetworkError::io(Path::new("a signal thread"), e))?;
    match ready_rx.recv() {
        Ok(true) => Ok(stop),
        _ => Err(NetworkError::io(
            Path::new("signal handlers"),
            std::io::Error::other("cannot install the signal handlers"),
        )),
    }
}
