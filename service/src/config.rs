//! The configuration sections every service shares, parsed without side effects: the
//! node (`[node]`), how to follow it (`[sync]`), how to anchor (`fee_rate_sat_vb`,
//! `min_depth`), the audit log's checkpoints (`[audit]`), and the helpers each service's
//! `Config::parse` uses (unknown keys named with their section, URL checks).
//!
//! Each `Raw*` struct is what TOML holds (with the documented defaults); its `check`
//! returns the typed section or a [`ConfigError`] naming the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use bitcoin::{FeeRate, Network};
use milagro_anchor::checkpoint::KeyName;
use serde::Deserialize;

const MIN_POLL_MS: u64 = 10;
const MAX_POLL_MS: u64 = 3_600_000;
const MAX_FEE_RATE_SAT_VB: u64 = 10_000;
const MAX_MIN_DEPTH: u32 = 1_000;
const MAX_CHECKPOINT_INTERVAL_SECS: u64 = 30 * 24 * 3600;
/// The longest `name`, in characters.
pub const MAX_NAME_CHARS: usize = 256;

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

/// The keys of `[node]`, for a service's schema.
pub const NODE_KEYS: &[&str] = &["rpc_url", "rpc_cookie", "network"];
/// The keys of `[sync]`, for a service's schema.
pub const SYNC_KEYS: &[&str] = &["poll_interval_ms", "max_backoff_ms", "start_height"];

/// Checks the top-level keys every service has (`listen`, `public_url`, `name`,
/// `state_dir`); returns the listening address.
pub fn check_common(
    listen: &str,
    public_url: &str,
    name: &str,
    state_dir: &Path,
) -> Result<SocketAddr, ConfigError> {
    let addr = SocketAddr::from_str(listen.trim()).map_err(|e| {
        invalid(
            "listen",
            format!("{listen:?} is not an ip:port socket address ({e})"),
        )
    })?;
    check_url("public_url", public_url)?;
    check_name(name)?;
    if state_dir.as_os_str().is_empty() {
        return Err(invalid("state_dir", "empty path"));
    }
    Ok(addr)
}

/// The keys of `schema` (as `section.key`) that the example file `text` does not show as
/// `key = ` (or, for a top-level section, `[key]`): what its documentation misses.
pub fn undocumented_keys(text: &str, schema: &[(&str, &[&str])]) -> Vec<String> {
    let mut missing = Vec::new();
    for (section, keys) in schema {
        for key in *keys {
            let line = format!("\n{key} = ");
            let header = format!("\n[{key}]\n");
            if !(text.contains(&line) || (section.is_empty() && text.contains(&header))) {
                missing.push(format!("{section}.{key}"));
            }
        }
    }
    missing
}

/// A [`ConfigError::Invalid`].
pub fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// Reads a configuration file.
pub fn load_text(path: &std::path::Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses TOML `text` into `Raw` after refusing every key `schema` does not admit.
///
/// `schema` lists, per section (`""` for the top level), the keys it admits.
pub fn parse_raw<Raw: serde::de::DeserializeOwned>(
    text: &str,
    schema: &[(&str, &[&str])],
) -> Result<Raw, ConfigError> {
    let table: toml::Table = toml::from_str(text)?;
    let unknown = unknown_keys(&table, schema);
    if !unknown.is_empty() {
        return Err(ConfigError::UnknownKeys(unknown));
    }
    Ok(toml::from_str(text)?)
}

/// Every key of `table` that `schema` does not admit, as `section.key`.
fn unknown_keys(table: &toml::Table, schema: &[(&str, &[&str])]) -> Vec<String> {
    let known = |section: &str| {
        schema
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
pub fn check_url(key: &'static str, url: &str) -> Result<(), ConfigError> {
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

/// `host:port` (the value of `key`): a port of 1 to 65535 after the last `:` and a host of
/// letters, digits, `.`, `-`, `:` or brackets (an IPv6 address) before it.
pub fn check_host_port(key: &'static str, text: &str) -> Result<(), ConfigError> {
    let bad = || {
        invalid(
            key,
            format!("{text:?} is not host:port (e.g. dta1.example.com:8092)"),
        )
    };
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    match port.parse::<u16>() {
        Ok(port) if port != 0 && host_ok => Ok(()),
        _ => Err(bad()),
    }
}

/// An optional admin token hash (the value of `key`, 64 hex characters: the SHA-256 of
/// the token, see [`crate::token`]).
pub fn check_token_hash(
    key: &'static str,
    hex: Option<&str>,
) -> Result<Option<crate::token::TokenHash>, ConfigError> {
    hex.map(crate::token::TokenHash::from_hex)
        .transpose()
        .map_err(|_| invalid(key, "64 hex characters: the SHA-256 of the token"))
}

/// A service's `name`: 1 to 256 characters, no control characters.
pub fn check_name(name: &str) -> Result<(), ConfigError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            "1 to 256 characters, no control characters",
        ));
    }
    Ok(())
}

/// `[node]`: the full node next to the service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeConfig {
    /// The node's JSON-RPC URL; its wallet (the only one loaded) pays the service's fees.
    pub rpc_url: String,
    /// The node's `.cookie` file (re-read when the node restarts).
    pub rpc_cookie: PathBuf,
    /// The chain the node must be on; the service refuses to index another one.
    pub network: Network,
}

/// `[node]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    rpc_url: String,
    rpc_cookie: PathBuf,
    network: String,
}

impl RawNode {
    /// Checks every value.
    pub fn check(self) -> Result<NodeConfig, ConfigError> {
        check_url("node.rpc_url", &self.rpc_url)?;
        if self.rpc_cookie.as_os_str().is_empty() {
            return Err(invalid("node.rpc_cookie", "empty path"));
        }
        let network = Network::from_str(&self.network).map_err(|_| {
            invalid(
                "node.network",
                format!(
                    "{:?} is not one of bitcoin, testnet, testnet4, signet, regtest",
                    self.network
                ),
            )
        })?;
        Ok(NodeConfig {
            rpc_url: self.rpc_url,
            rpc_cookie: self.rpc_cookie,
            network,
        })
    }
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

/// `[sync]` as written (defaults: 1000 ms, 30000 ms, height 0).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSync {
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

impl RawSync {
    /// Checks every value.
    pub fn check(&self) -> Result<SyncConfig, ConfigError> {
        let (low, high) = (MIN_POLL_MS, MAX_POLL_MS);
        if !(low..=high).contains(&self.poll_interval_ms) {
            return Err(invalid(
                "sync.poll_interval_ms",
                format!("must be between {low} and {high}"),
            ));
        }
        if !(self.poll_interval_ms..=high).contains(&self.max_backoff_ms) {
            return Err(invalid(
                "sync.max_backoff_ms",
                format!("must be between sync.poll_interval_ms and {high}"),
            ));
        }
        Ok(SyncConfig {
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            max_backoff: Duration::from_millis(self.max_backoff_ms),
            start_height: self.start_height,
        })
    }
}

/// `anchoring.fee_rate_sat_vb`: 1 to 10000.
pub fn check_fee_rate(sat_vb: u64) -> Result<FeeRate, ConfigError> {
    if !(1..=MAX_FEE_RATE_SAT_VB).contains(&sat_vb) {
        return Err(invalid(
            "anchoring.fee_rate_sat_vb",
            format!("must be between 1 and {MAX_FEE_RATE_SAT_VB}"),
        ));
    }
    FeeRate::from_sat_per_vb(sat_vb)
        .ok_or_else(|| invalid("anchoring.fee_rate_sat_vb", "overflows"))
}

/// `anchoring.min_depth`: 1 to 1000.
pub fn check_min_depth(depth: u32) -> Result<u32, ConfigError> {
    if !(1..=MAX_MIN_DEPTH).contains(&depth) {
        return Err(invalid(
            "anchoring.min_depth",
            format!("must be between 1 and {MAX_MIN_DEPTH}"),
        ));
    }
    Ok(depth)
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

/// The `checkpoint_interval_secs` and `origin` of an `[audit]` section; the origin
/// defaults to `public_url` without its scheme (and trailing `/`), followed by `/audit`.
pub fn check_audit(
    checkpoint_interval_secs: u64,
    origin: Option<&str>,
    public_url: &str,
) -> Result<AuditConfig, ConfigError> {
    let seconds = checkpoint_interval_secs;
    if !(1..=MAX_CHECKPOINT_INTERVAL_SECS).contains(&seconds) {
        return Err(invalid(
            "audit.checkpoint_interval_secs",
            format!("must be between 1 and {MAX_CHECKPOINT_INTERVAL_SECS}"),
        ));
    }
    let origin = origin.map_or_else(
        || {
            let bare = public_url
                .split_once("://")
                .map_or(public_url, |(_, rest)| rest);
            format!("{}/audit", bare.trim_end_matches('/'))
        },
        str::to_owned,
    );
    let origin = KeyName::new(&origin)
        .map_err(|e| invalid("audit.origin", format!("{e} (set audit.origin explicitly)")))?;
    Ok(AuditConfig {
        checkpoint_interval: Duration::from_secs(seconds),
        origin,
    })
}

/// The `[anchoring]` keys every service has ([`crate::party_config::RawParty`] reads
/// them), for a service's schema.
pub const ANCHORING_KEYS: &[&str] = &["fee_rate_sat_vb", "min_depth"];
/// The `[audit]` keys every service has, for a service's schema.
pub const AUDIT_KEYS: &[&str] = &["checkpoint_interval_secs", "origin"];
