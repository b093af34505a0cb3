//! Where a local network keeps everything, under one directory, and the record of how
//! its parties fit together (`network.json`, written once by the first `up`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use milagro_anchor::digest::Digest;
use milagro_init::ServiceRole;
use serde::{Deserialize, Serialize};

use crate::NetworkError;

/// The directory of one local network.
#[derive(Debug, Clone)]
pub struct NetworkDir {
    root: PathBuf,
}

impl NetworkDir {
    /// The network under `root` (made absolute: the supervisor runs elsewhere).
    pub fn new(root: &Path) -> Self {
        Self {
            root: std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf()),
        }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The regtest node's data directory.
    pub fn node_dir(&self) -> PathBuf {
        self.root.join("node")
    }

    /// A party's `init` directory (its configuration and state).
    pub fn party_dir(&self, name: &str) -> PathBuf {
        self.root.join("parties").join(name)
    }

    /// A party's log (what its process writes on stdout and stderr).
    pub fn log_file(&self, name: &str) -> PathBuf {
        self.root.join("logs").join(format!("{name}.log"))
    }

    /// Party `name`'s log opened for appending, twice: a child's stdout and stderr.
    pub(crate) fn open_log(
        &self,
        name: &str,
    ) -> Result<(std::fs::File, std::fs::File), NetworkError> {
        let path = self.log_file(name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| NetworkError::io(&path, e))?;
        let err = log.try_clone().map_err(|e| NetworkError::io(&path, e))?;
        Ok((log, err))
    }

    /// The network's record.
    pub fn record_file(&self) -> PathBuf {
        self.root.join("network.json")
    }

    /// The supervisor's view of its processes, rewritten at each change.
    pub fn supervisor_file(&self) -> PathBuf {
        self.root.join("supervisor.json")
    }

    /// The supervisor's process id, while it runs.
    pub fn pid_file(&self) -> PathBuf {
        self.root.join("supervisor.pid")
    }

    /// The fleet claim key devices enrol with (`milagro pat enrol --claim-key`).
    pub fn claim_key_file(&self) -> PathBuf {
        self.root.join("claim.key")
    }

    /// Reads the record, if `up` has written one.
    pub fn read_record(&self) -> Result<Option<NetworkRecord>, NetworkError> {
        read_json(&self.record_file())
    }

    /// Writes the record (mode 0600: it holds the local operator tokens).
    pub fn write_record(&self, record: &NetworkRecord) -> Result<(), NetworkError> {
        write_json(&self.record_file(), record)
    }
}

/// One party of the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyRecord {
    /// Its name in the network (`tbs`, `idp`, `dta1`, `dta2`, `authserver`).
    pub name: String,
    /// Its role (`tbs`, `idp`, `dta`, `authserver`).
    pub role: String,
    /// Where its HTTP API listens.
    pub listen: SocketAddr,
    /// The D-TA's share API (Milagro TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_listen: Option<SocketAddr>,
    /// Its Birth Certificate's digest.
    pub digest: Digest,
}

impl PartyRecord {
    /// Its role as `init` knows it.
    pub fn service_role(&self) -> Option<ServiceRole> {
        ServiceRole::ALL
            .into_iter()
            .find(|role| role.name() == self.role)
    }

    /// Its base URL (plain HTTP on loopback).
    pub fn url(&self) -> String {
        format!("http://{}", self.listen)
    }
}

/// How the network's parties fit together, and the local operator's tokens (a local
/// development network: the directory is private, and these tokens open nothing else).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// The parties, in the order they start.
    pub parties: Vec<PartyRecord>,
    /// The TBS's admin token.
    pub tbs_admin_token: Option<String>,
    /// The IdP's admin token.
    pub idp_admin_token: Option<String>,
    /// The IdP's initial access token (client registration).
    pub idp_registration_token: Option<String>,
    /// The D-TAs' client at the IdP (the device grant), once registered.
    pub idp_client_id: Option<String>,
    /// The tenant and group devices enrol in, once created at the TBS.
    pub tenant: Option<TenantRecord>,
    /// What runs the parties (absent in a record of before compose: the supervisor).
    #[serde(default)]
    pub runner: Runner,
}

/// What runs the parties of a network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runner {
    /// The supervisor `milagro network up` starts.
    #[default]
    Supervisor,
    /// A container engine, one container per party (`deploy/container/compose.yaml`),
    /// wired by `milagro network configure`.
    Containers,
}

/// The TBS tenant and group `up` made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    /// The tenant.
    pub tenant: String,
    /// The group.
    pub group: String,
}

impl NetworkRecord {
    /// The party named `name`.
    pub fn party(&self, name: &str) -> Option<&PartyRecord> {
        self.parties.iter().find(|party| party.name == name)
    }
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Option<T>, NetworkError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| NetworkError::Corrupt {
                path: path.to_path_buf(),
                detail: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(NetworkError::io(path, e)),
    }
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), NetworkError> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| NetworkError::Corrupt {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    milagro_service::files::write_atomically(path, &bytes)
        .map_err(|e| NetworkError::File(e.to_string()))
}
