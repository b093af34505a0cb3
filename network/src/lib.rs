//! A persistent local Milagro network under one directory: a regtest node, a TBS, an IdP,
//! two D-TAs and an authentication server, configured by [`milagro_init`] so that they fit
//! together (the D-TAs trust that IdP and give server shares to that auth server, which
//! sums both; the TBS's tenant `local` has a group `devices` naming them all), kept
//! running by a supervisor process.
//!
//! - [`up`]: sets it up on the first run, starts the supervisor, waits until every party
//!   is anchored and ready; again after [`down`], it resumes with the same keys and state.
//! - [`status`]: each party's role, name, URL, digest, anchor depth and readiness (its
//!   `/readyz`), restarts, and the commands to run next.
//! - [`down`]: stops the supervisor, which stops every party gracefully, then the node.
//! - [`supervise`]: the supervisor itself (`milagro network supervise`, started by `up`):
//!   restarts a party that dies, mines a block whenever a transaction waits.
//! - [`configure`], [`run_node`], [`wait_for_party`], [`ready`]: the same network with one
//!   container per party (`deploy/container/compose.yaml`): a one-shot step that plans
//!   and wires it, the node in the foreground, each party waiting for its configuration,
//!   and the containers' health check.
//!
//! What it does not do: run anywhere but on this machine's loopback (the compose network
//! shares the host's), or on any chain but
//! regtest. The directory holds the local operator's tokens (`network.json`, mode 0600):
//! a development network, not a deployment (`milagro init` sets up one of those).
//!
//! ```no_run
//! use milagro_network::{up, NetworkDir};
//! let dir = NetworkDir::new(std::path::Path::new("/tmp/milagro-net"));
//! let milagro = std::env::current_exe()?;
//! let status = up(&dir, &milagro, std::time::Duration::from_secs(300))?;
//! print!("{}", status.table());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod compose;
mod layout;
mod node;
mod status;
mod supervisor;
#[cfg(test)]
mod tests;
mod up;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use compose::{configure, ready, run_node, wait_for_party};
pub use layout::{NetworkDir, NetworkRecord, PartyRecord, Runner, TenantRecord};
pub use status::{status, NetworkStatus, PartyStatus};
pub use supervisor::{supervise, ProcessState, SupervisorState};
pub use up::{up, GROUP, TENANT};

/// Why a network command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// No network was set up in the directory.
    #[error("no network in {} (run `milagro network up --dir {}` first)", dir.display(), dir.display())]
    NotSetUp {
        /// The directory.
        dir: PathBuf,
    },
    /// A party did not become ready in time.
    #[error("{party} is not ready: {why}")]
    NotReady {
        /// The party.
        party: String,
        /// Its failed checks.
        why: String,
    },
    /// The node could not be started, stopped or asked.
    #[error("the regtest node: {0}")]
    Node(String),
    /// A step of setting the network up failed.
    #[error("{0}")]
    Setup(String),
    /// `init` refused or failed.
    #[error(transparent)]
    Init(#[from] milagro_init::InitError),
    /// A file of the network could not be read or written.
    #[error("{0}")]
    File(String),
    /// A file of the network is not what it should be.
    #[error("{} is corrupt: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
    /// An I/O error on a path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path (or what was being done).
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl NetworkError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Stops the network of `dir`: SIGTERM to the supervisor, which stops every party and
/// then the node; waits at most `patience` for it to end. A network that is not running
/// is left as it is.
pub fn down(dir: &NetworkDir, patience: Duration) -> Result<(), NetworkError> {
    let Some(pid) = status::supervisor_pid(dir) else {
        return Ok(());
    };
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + patience;
    while milagro_regtest::pid_alive(pid) {
        if Instant::now() > deadline {
            return Err(NetworkError::Setup(format!(
                "the supervisor (pid {pid}) did not stop within {patience:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// A one-time activation code for `email` from the network's IdP (its admin API, with the
/// operator token `up` kept in the record): what a person types with their address on
/// the IdP's device page to register a device (`milagro pat register --email`), since the
/// local network sends no mail. The IdP keeps only the code's hash.
pub fn activation_code(
    dir: &NetworkDir,
    email: &str,
) -> Result<milagro_wire::idp::ActivationCode, NetworkError> {
    let record = dir
        .read_record()?
        .ok_or_else(|| NetworkError::Setup("no network here: run `milagro network up`".into()))?;
    let idp = up::party(&record, "idp")?;
    let token = record
        .idp_admin_token
        .clone()
        .ok_or_else(|| NetworkError::Setup("the record holds no idp admin token".into()))?;
    let answer = up::send(
        up::client()?
            .post(format!("{}/v1/admin/activation-codes", idp.url()))
            .bearer_auth(token)
            .json(&milagro_wire::idp::NewActivationCode {
                email: email.to_owned(),
            }),
        "asking the idp for an activation code",
    )?;
    serde_json::from_value(answer.clone())
        .map_err(|e| NetworkError::Setup(format!("the idp's activation code {answer}: {e}")))
}

/// The last `lines` lines of party `name`'s log (`supervisor` for the supervisor's).
pub fn logs(dir: &NetworkDir, name: &str, lines: usize) -> Result<String, NetworkError> {
    let path = dir.log_file(name);
    let text = std::fs::read_to_string(&path).map_err(|e| NetworkError::io(&path, e))?;
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    Ok(all[start..].join("\n"))
}
