//! The D-TA configuration file (`dta.toml`), parsed without side effects.
//!
//! [`Config::parse`] is pure: it refuses unknown keys (naming each with its section),
//! checks every value and returns final types; the sealing key is read, and files and
//! sockets made, only by [`crate::Dta::start`]. The sections every service has
//! (`[node]`, `[sync]`, `[audit]`, anchoring) are [`milagro_service::config`]'s. Every key
//! is shown in `dta/dta.example.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;

use milagro_anchor::digest::Digest;

use milagro_service::config::{
    check_host_port, check_min_depth, check_url, invalid, load_text, parse_raw, ANCHORING_KEYS,
    AUDIT_KEYS, NODE_KEYS, SYNC_KEYS,
};
pub use milagro_service::config::{AuditConfig, ConfigError, NodeConfig, SyncConfig};
use milagro_service::party_config::{PartyConfig, RawParty};

pub use crate::relying_party::{IdpTrust, TrustedIdp};
use serde::Deserialize;

/// The D-TA's example configuration, every key commented: the documentation of the
/// file, and the template `milagro init` fills in.
pub const EXAMPLE_CONFIG: &str = include_str!("../../dta.example.toml");

/// The keys each section admits; anything else is refused by [`Config::parse`].
const SCHEMA: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "listen",
            "tls_listen",
            "tls_public_addr",
            "public_url",
            "name",
            "state_dir",
            "min_peer_depth",
            "master_key",
            "trusted_idps",
            "shares",
            "node",
            "sync",
            "anchoring",
            "audit",
            "tls",
            "proxy",
            "outbound_http",
        ],
    ),
    ("master_key", &["env", "file"]),
    (
        "trusted_idps",
        &["issuer", "trust", "bc_digest", "client_id"],
    ),
    ("shares", &["authservers"]),
    ("node", NODE_KEYS),
    ("tls", milagro_service::https::TLS_KEYS),
    ("proxy", milagro_service::proxy::PROXY_KEYS),
    ("outbound_http", milagro_service::https::OUTBOUND_HTTP_KEYS),
    ("sync", SYNC_KEYS),
    ("anchoring", ANCHORING_KEYS),
    ("audit", AUDIT_KEYS),
];

/// Where the key that seals the master-secret share comes from (32 bytes as 64 hex
/// characters). It is never in `dta.toml` itself, so the file can be shared and backed up
/// without the share's protection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MasterKeySource {
    /// An environment variable of the D-TA process.
    Env(String),
    /// A file readable by its owner only (mode 0600 or stricter).
    File(PathBuf),
}

/// A validated D-TA configuration. Only [`Config::parse`] (or [`Config::load`]) makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The keys every service has: `listen`, `public_url`, `name`, `state_dir`, `[node]`,
    /// `[sync]`, `[tls]`, `[audit]`, the fee rate and depth of its anchors.
    pub party: PartyConfig,
    /// Where the share API listens, over Milagro TLS only.
    pub tls_listen: SocketAddr,
    /// The `host:port` PATs and authentication servers reach the share API at, as
    /// `/v1/status` tells them; `None`: the bound address of `tls_listen`.
    pub tls_public_addr: Option<String>,
    /// Confirmations a peer's anchor needs before it may open a session.
    pub min_peer_depth: u32,
    /// Where the sealing key of the master-secret share comes from.
    pub master_key: MasterKeySource,
    /// The IdPs whose ID tokens prove a PAT's user (none: no client shares are issued).
    pub trusted_idps: Vec<TrustedIdp>,
    /// The Birth Certificate digests of the authentication servers that get the
    /// server-secret share (none: no server shares are issued).
    pub authservers: Vec<Digest>,
    /// `[outbound_http]`: the roots the trusted IdPs' HTTPS is verified with, and whether
    /// an issuer may be plain `http://` off loopback.
    pub outbound_http: milagro_http_client::ClientOptions,
}

/// The service's own keys; the ones every service has are read again as a
/// [`RawParty`]. Unknown keys are refused by `parse_raw`'s schema check.
#[derive(Deserialize)]
struct RawConfig {
    tls_listen: String,
    tls_public_addr: Option<String>,
    #[serde(default = "default_peer_depth")]
    min_peer_depth: u32,
    master_key: RawMasterKey,
    #[serde(default)]
    trusted_idps: Vec<RawTrustedIdp>,
    #[serde(default)]
    shares: RawShares,
    #[serde(default)]
    outbound_http: milagro_service::https::RawOutboundHttp,
}

fn default_peer_depth() -> u32 {
    milagro_anchor::proof::FINAL_DEPTH
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrustedIdp {
    issuer: String,
    #[serde(default)]
    trust: RawTrust,
    bc_digest: Option<String>,
    client_id: String,
}

/// `trust` in `[[trusted_idps]]`; anything else is refused by serde, naming the values.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawTrust {
    #[default]
    Anchored,
    WebPki,
}

impl RawTrustedIdp {
    fn check(self) -> Result<TrustedIdp, ConfigError> {
        check_url("trusted_idps.issuer", &self.issuer)?;
        if self.issuer.ends_with('/') || self.issuer.contains(['?', '#']) {
            return Err(invalid(
                "trusted_idps.issuer",
                "an issuer has no trailing '/', query or fragment",
            ));
        }
        let trust = match (self.trust, self.bc_digest) {
            (RawTrust::Anchored, Some(bc_digest)) => IdpTrust::Anchored {
                bc_digest: Digest::from_str(&bc_digest).map_err(|_| {
                    invalid(
                        "trusted_idps.bc_digest",
                        "64 hex characters: the IdP's birth certificate digest",
                    )
                })?,
            },
            (RawTrust::Anchored, None) => {
                return Err(invalid(
                    "trusted_idps.bc_digest",
                    "required with trust = \"anchored\" (the default): the IdP's birth certificate digest",
                ))
            }
            // Only the channel vouches for a web-PKI IdP's keys: never plain HTTP, even to
            // loopback or with allow_plain_http.
            (RawTrust::WebPki, None) if self.issuer.starts_with("https://") => IdpTrust::WebPki,
            (RawTrust::WebPki, None) => {
                return Err(invalid(
                    "trusted_idps.issuer",
                    format!(
                        "{:?}: trust = \"web_pki\" needs an https:// issuer (its keys are believed because verified HTTPS served them)",
                        self.issuer
                    ),
                ))
            }
            // A digest the D-TA would not check would look like protection it is not.
            (RawTrust::WebPki, Some(_)) => {
                return Err(invalid(
                    "trusted_idps.bc_digest",
                    "not with trust = \"web_pki\": a third-party IdP has no birth certificate (use trust = \"anchored\" for an anchored one)",
                ))
            }
        };
        if self.client_id.is_empty() || self.client_id.chars().any(char::is_control) {
            return Err(invalid(
                "trusted_idps.client_id",
                "empty or control characters",
            ));
        }
        Ok(TrustedIdp {
            issuer: self.issuer,
            trust,
            client_id: self.client_id,
        })
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawShares {
    #[serde(default)]
    authservers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMasterKey {
    env: Option<String>,
    file: Option<PathBuf>,
}

impl Config {
    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::parse(&load_text(path)?)
    }

    /// Parses and checks configuration text. No side effects.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::check(parse_raw(text, SCHEMA)?, parse_raw(text, SCHEMA)?)
    }

    fn check(raw: RawConfig, party: RawParty) -> Result<Self, ConfigError> {
        let party = party.check()?;
        let listen = party.listen;
        let tls_listen = SocketAddr::from_str(raw.tls_listen.trim()).map_err(|e| {
            invalid(
                "tls_listen",
                format!(
                    "{:?} is not an ip:port socket address ({e})",
                    raw.tls_listen
                ),
            )
        })?;
        if tls_listen == listen && listen.port() != 0 {
            return Err(invalid("tls_listen", "must differ from listen"));
        }
        let tls_public_addr = raw
            .tls_public_addr
            .map(|addr| check_host_port("tls_public_addr", &addr).map(|()| addr))
            .transpose()?;
        let master_key = match (raw.master_key.env, raw.master_key.file) {
            (Some(name), None) if is_env_name(&name) => MasterKeySource::Env(name),
            (Some(_), None) => {
                return Err(invalid(
                    "master_key.env",
                    "an environment variable name: letters, digits and _",
                ))
            }
            (None, Some(path)) if !path.as_os_str().is_empty() => MasterKeySource::File(path),
            (None, Some(_)) => return Err(invalid("master_key.file", "empty path")),
            _ => {
                return Err(invalid(
                    "master_key",
                    "set exactly one of env (a variable name) or file (a path)",
                ))
            }
        };
        let trusted_idps = raw
            .trusted_idps
            .into_iter()
            .map(RawTrustedIdp::check)
            .collect::<Result<Vec<_>, _>>()?;
        let outbound_http = raw.outbound_http.check()?;
        for idp in &trusted_idps {
            milagro_service::https::check_outbound_url(
                "trusted_idps.issuer",
                &idp.issuer,
                &outbound_http,
            )?;
        }
        for (i, idp) in trusted_idps.iter().enumerate() {
            if trusted_idps[..i].iter().any(|o| o.issuer == idp.issuer) {
                return Err(invalid(
                    "trusted_idps.issuer",
                    format!("{} is listed twice", idp.issuer),
                ));
            }
        }
        let authservers = raw
            .shares
            .authservers
            .iter()
            .map(|digest| {
                Digest::from_str(digest).map_err(|_| {
                    invalid(
                        "shares.authservers",
                        format!("{digest:?}: 64 hex characters, a birth certificate digest"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            party,
            tls_listen,
            tls_public_addr,
            min_peer_depth: check_min_depth(raw.min_peer_depth)
                .map_err(|_| invalid("min_peer_depth", "must be between 1 and 1000"))?,
            master_key,
            trusted_idps,
            authservers,
            outbound_http,
        })
    }
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests;
