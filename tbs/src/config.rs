//! The TBS configuration file (`tbs.toml`), parsed without side effects.
//!
//! [`Config::parse`] is pure: it reads TOML text, refuses unknown keys (naming every one of
//! them, with its section), checks every value, and returns a [`Config`] whose fields have
//! their final types. Creating directories, keys and sockets happens later, in
//! [`crate::Tbs::start`]. Every field is documented in `tbs/tbs.example.toml`.
//!
//! Relative paths (`state_dir`, `node.rpc_cookie`) are relative to the working directory
//! of the process, not to the configuration file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use bitcoin::{FeeRate, Network};
use milagro_anchor::checkpoint::KeyName;
use milagro_anchor::funding_pool::MAX_FAN_OUT_COINS;

use crate::tenants::model::TokenHash;
use serde::Deserialize;

/// The keys each section admits; anything else is refused by [`Config::parse`].
const SCHEMA: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "listen",
            "public_url",
            "name",
            "state_dir",
            "node",
            "sync",
            "anchoring",
            "admin",
            "audit",
        ],
    ),
    ("node", &["rpc_url", "rpc_cookie", "network"]),
    (
        "sync",
        &["poll_interval_ms", "max_backoff_ms", "start_height"],
    ),
    (
        "anchoring",
        &[
            "fee_rate_sat_vb",
            "min_depth",
            "batch_interval_secs",
            "funding_pool",
        ],
    ),
    ("admin", &["token_sha256"]),
    ("audit", &["checkpoint_interval_secs", "origin"]),
];

const MIN_POLL_MS: u64 = 10;
const MAX_POLL_MS: u64 = 3_600_000;
const MAX_FEE_RATE_SAT_VB: u64 = 10_000;
const MAX_MIN_DEPTH: u32 = 1_000;
const MAX_NAME_CHARS: usize = 256;
const MAX_CHECKPOINT_INTERVAL_SECS: u64 = 30 * 24 * 3600;
const MAX_BATCH_INTERVAL_SECS: u64 = 24 * 3600;

/// A validated TBS configuration.
///
/// Only [`Config::parse`] (or [`Config::load`]) makes one; the fields are public to read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Where the HTTP API listens (port 0 picks a free port; see [`crate::RunningTbs::addr`]).
    pub listen: SocketAddr,
    /// The URL clients reach this TBS at; the Birth Certificate's only endpoint.
    pub public_url: String,
    /// The TBS's human-readable name, as written in its Birth Certificate.
    pub name: String,
    /// Where the key, the Birth Certificate, the pending anchor and the index live.
    pub state_dir: PathBuf,
    /// The full node the TBS follows.
    pub node: NodeConfig,
    /// How the TBS follows the chain.
    pub sync: SyncConfig,
    /// How the TBS anchors its own Birth Certificate.
    pub anchoring: AnchoringConfig,
    /// SHA-256 of the operator's admin token; without it, no tenant can be created.
    pub admin_token: Option<TokenHash>,
    /// The audit log's checkpoints.
    pub audit: AuditConfig,
}

/// `[audit]`: the audit log's signed checkpoints (see [`crate::audit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditConfig {
    /// Least time between two anchored checkpoints (one is made only if the log grew).
    pub checkpoint_interval: Duration,
    /// The checkpoints' origin line, also their signing key's name.
    pub origin: KeyName,
}

/// `[node]`: the full node next to the TBS.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeConfig {
    /// The node's JSON-RPC URL; its wallet (the only one loaded) pays the TBS's fees.
    pub rpc_url: String,
    /// The node's `.cookie` file (re-read when the node restarts).
    pub rpc_cookie: PathBuf,
    /// The chain the node must be on; the TBS refuses to index another one.
    pub network: Network,
}

/// `[sync]`: the chain follower.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncConfig {
    /// Time between two polls of the node when nothing fails.
    pub poll_interval: Duration,
    /// Longest wait between two attempts while the node fails (the wait doubles from
    /// `poll_interval` up to this).
    pub max_backoff: Duration,
    /// The first height indexed (no Milagro record is older than the protocol's launch).
    pub start_height: u32,
}

/// `[anchoring]`: the TBS's own anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnchoringConfig {
    /// Fee rate of the TBS's anchoring transactions.
    pub fee_rate: FeeRate,
    /// Confirmations before the TBS serves its Birth Certificate as anchored.
    pub min_depth: u32,
    /// How often the queued devices of batch-mode groups are anchored as one batch root.
    pub batch_interval: Duration,
    /// Coins the funding pool is refilled to (0: every device is paid by the wallet).
    pub funding_pool: usize,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, or a value of the wrong type, or a required key missing.
    #[error("invalid configuration: {0}")]
    Toml(#[from] toml::de::Error),
    /// Keys this version does not know (typos, or options of another version).
    #[error("unknown configuration key{}: {}", if .0.len() == 1 { "" } else { "s" }, .0.join(", "))]
    UnknownKeys(Vec<String>),
    /// A value of the right type but out of range or malformed.
    #[error("invalid value for {key}: {reason}")]
    Invalid {
        /// The key, with its section (`sync.poll_interval_ms`).
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    public_url: String,
    name: String,
    state_dir: PathBuf,
    node: RawNode,
    #[serde(default)]
    sync: RawSync,
    #[serde(default)]
    anchoring: RawAnchoring,
    #[serde(default)]
    admin: Option<RawAdmin>,
    #[serde(default)]
    audit: RawAudit,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAudit {
    checkpoint_interval_secs: u64,
    origin: Option<String>,
}

impl Default for RawAudit {
    fn default() -> Self {
        Self {
            checkpoint_interval_secs: 3600,
            origin: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    token_sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    rpc_url: String,
    rpc_cookie: PathBuf,
    network: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSync {
    poll_interval_ms: u64,
    max_backoff_ms: u64,
    start_height: u32,
}

impl Default for RawSync {
    fn default() -> Self {
        Self {
            poll_interval_ms: 1_000,
            max_backoff_ms: 30_000,
            start_height: 0,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAnchoring {
    fee_rate_sat_vb: u64,
    min_depth: u32,
    batch_interval_secs: u64,
    funding_pool: usize,
}

impl Default for RawAnchoring {
    fn default() -> Self {
        Self {
            fee_rate_sat_vb: 2,
            min_depth: 1,
            batch_interval_secs: 600,
            funding_pool: 100,
        }
    }
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl Config {
    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses and checks configuration text. No side effects.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = toml::from_str(text)?;
        let unknown = unknown_keys(&table);
        if !unknown.is_empty() {
            return Err(ConfigError::UnknownKeys(unknown));
        }
        let raw: RawConfig = toml::from_str(text)?;
        Self::check(raw)
    }

    fn check(raw: RawConfig) -> Result<Self, ConfigError> {
        let listen = SocketAddr::from_str(raw.listen.trim()).map_err(|e| {
            invalid(
                "listen",
                format!("{:?} is not an ip:port socket address ({e})", raw.listen),
            )
        })?;
        check_url("public_url", &raw.public_url)?;
        check_url("node.rpc_url", &raw.node.rpc_url)?;
        let chars = raw.name.chars().count();
        if chars == 0 || chars > MAX_NAME_CHARS || raw.name.chars().any(char::is_control) {
            return Err(invalid(
                "name",
                "1 to 256 characters, no control characters",
            ));
        }
        if raw.state_dir.as_os_str().is_empty() {
            return Err(invalid("state_dir", "empty path"));
        }
        if raw.node.rpc_cookie.as_os_str().is_empty() {
            return Err(invalid("node.rpc_cookie", "empty path"));
        }
        let network = Network::from_str(&raw.node.network).map_err(|_| {
            invalid(
                "node.network",
                format!(
                    "{:?} is not one of bitcoin, testnet, testnet4, signet, regtest",
                    raw.node.network
                ),
            )
        })?;
        let (low, high) = (MIN_POLL_MS, MAX_POLL_MS);
        if !(low..=high).contains(&raw.sync.poll_interval_ms) {
            return Err(invalid(
                "sync.poll_interval_ms",
                format!("must be between {low} and {high}"),
            ));
        }
        if !(raw.sync.poll_interval_ms..=high).contains(&raw.sync.max_backoff_ms) {
            return Err(invalid(
                "sync.max_backoff_ms",
                format!("must be between sync.poll_interval_ms and {high}"),
            ));
        }
        if !(1..=MAX_FEE_RATE_SAT_VB).contains(&raw.anchoring.fee_rate_sat_vb) {
            return Err(invalid(
                "anchoring.fee_rate_sat_vb",
                format!("must be between 1 and {MAX_FEE_RATE_SAT_VB}"),
            ));
        }
        let fee_rate = FeeRate::from_sat_per_vb(raw.anchoring.fee_rate_sat_vb)
            .ok_or_else(|| invalid("anchoring.fee_rate_sat_vb", "overflows"))?;
        if !(1..=MAX_MIN_DEPTH).contains(&raw.anchoring.min_depth) {
            return Err(invalid(
                "anchoring.min_depth",
                format!("must be between 1 and {MAX_MIN_DEPTH}"),
            ));
        }
        if !(1..=MAX_BATCH_INTERVAL_SECS).contains(&raw.anchoring.batch_interval_secs) {
            return Err(invalid(
                "anchoring.batch_interval_secs",
                format!("must be between 1 and {MAX_BATCH_INTERVAL_SECS}"),
            ));
        }
        if raw.anchoring.funding_pool > MAX_FAN_OUT_COINS {
            return Err(invalid(
                "anchoring.funding_pool",
                format!("must be between 0 and {MAX_FAN_OUT_COINS}"),
            ));
        }
        let admin_token = raw
            .admin
            .map(|admin| TokenHash::from_hex(&admin.token_sha256))
            .transpose()
            .map_err(|_| {
                invalid(
                    "admin.token_sha256",
                    "64 hex characters: the SHA-256 of the admin token",
                )
            })?;
        let audit = check_audit(&raw.audit, &raw.public_url)?;
        Ok(Self {
            listen,
            public_url: raw.public_url,
            name: raw.name,
            state_dir: raw.state_dir,
            node: NodeConfig {
                rpc_url: raw.node.rpc_url,
                rpc_cookie: raw.node.rpc_cookie,
                network,
            },
            sync: SyncConfig {
                poll_interval: Duration::from_millis(raw.sync.poll_interval_ms),
                max_backoff: Duration::from_millis(raw.sync.max_backoff_ms),
                start_height: raw.sync.start_height,
            },
            anchoring: AnchoringConfig {
                fee_rate,
                min_depth: raw.anchoring.min_depth,
                batch_interval: Duration::from_secs(raw.anchoring.batch_interval_secs),
                funding_pool: raw.anchoring.funding_pool,
            },
            admin_token,
            audit,
        })
    }
}

/// The `[audit]` section; the origin defaults to `public_url` without its scheme (and
/// trailing `/`), followed by `/audit`.
fn check_audit(raw: &RawAudit, public_url: &str) -> Result<AuditConfig, ConfigError> {
    let seconds = raw.checkpoint_interval_secs;
    if !(1..=MAX_CHECKPOINT_INTERVAL_SECS).contains(&seconds) {
        return Err(invalid(
            "audit.checkpoint_interval_secs",
            format!("must be between 1 and {MAX_CHECKPOINT_INTERVAL_SECS}"),
        ));
    }
    let origin = raw.origin.clone().unwrap_or_else(|| {
        let bare = public_url
            .split_once("://")
            .map_or(public_url, |(_, rest)| rest);
        format!("{}/audit", bare.trim_end_matches('/'))
    });
    let origin = KeyName::new(&origin)
        .map_err(|e| invalid("audit.origin", format!("{e} (set audit.origin explicitly)")))?;
    Ok(AuditConfig {
        checkpoint_interval: Duration::from_secs(seconds),
        origin,
    })
}

/// Every key of `table` that [`SCHEMA`] does not admit, as `section.key`.
fn unknown_keys(table: &toml::Table) -> Vec<String> {
    let known = |section: &str| {
        SCHEMA
            .iter()
            .find(|(name, _)| *name == section)
            .map_or(&[][..], |(_, keys)| *keys)
    };
    let mut unknown = Vec::new();
    for (key, value) in table {
        if !known("").contains(&key.as_str()) {
            unknown.push(key.clone());
            continue;
        }
        if let toml::Value::Table(section) = value {
            unknown.extend(
                section
                    .keys()
                    .filter(|sub| !known(key).contains(&sub.as_str()))
                    .map(|sub| format!("{key}.{sub}")),
            );
        }
    }
    unknown
}

/// An `http://` or `https://` URL with a host and no white space (what a Birth
/// Certificate endpoint must be; the certificate checks the rest when it is signed).
fn check_url(key: &'static str, url: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| invalid(key, format!("{url:?} is not an http:// or https:// URL")))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(key, format!("{url:?} is not a valid URL")));
    }
    if url.len() > 2048 {
        return Err(invalid(key, "longer than 2048 bytes"));
    }
    Ok(())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
