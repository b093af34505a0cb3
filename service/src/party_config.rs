//! The keys every service's configuration file has, in one section type: where it
//! listens (`listen`, `[tls]`), who it is (`name`, `public_url`), where its state lives
//! (`state_dir`), its node (`[node]`, `[sync]`), how it anchors (fee rate, depth) and its
//! audit log (`[audit]`). A service's `Config` holds a [`PartyConfig`] as `party`; its
//! file keeps these keys at the top, read once as the service's own raw section and once
//! as a [`RawParty`] (not a flattened field: serde would lose the key's name in a type
//! error), with unknown keys refused by [`crate::config::parse_raw`]'s schema.

use std::net::SocketAddr;
use std::path::PathBuf;

use bitcoin::FeeRate;
use serde::Deserialize;

use crate::config::{
    check_audit, check_common, check_fee_rate, check_min_depth, AuditConfig, ConfigError,
    NodeConfig, RawNode, RawSync, SyncConfig,
};
use crate::https::{check_tls, RawTls, TlsSettings};
use crate::proxy::TrustedProxies;

/// The keys every service has, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartyConfig {
    /// Where the public HTTP(S) server listens.
    pub listen: SocketAddr,
    /// The URL the service is reached at: its Birth Certificate's only endpoint.
    pub public_url: String,
    /// The human-readable name written in the Birth Certificate.
    pub name: String,
    /// Where the key, the certificate, the index and the databases live.
    pub state_dir: PathBuf,
    /// `[node]`: the full node the service anchors through and follows.
    pub node: NodeConfig,
    /// `[sync]`: how it follows the chain.
    pub sync: SyncConfig,
    /// `[tls]`: the certificate chain and key it serves HTTPS with; `None`: plain HTTP.
    pub tls: Option<TlsSettings>,
    /// `[audit]`: its log's checkpoints.
    pub audit: AuditConfig,
    /// Fee rate of its anchoring transactions.
    pub fee_rate: FeeRate,
    /// Confirmations before its Birth Certificate is served as anchored.
    pub min_depth: u32,
    /// `[proxy] trusted`: the reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
}

/// The same keys as written (other keys of the file are ignored here: the service's
/// schema admits or refuses them).
#[derive(Debug, Deserialize)]
pub struct RawParty {
    /// `listen`.
    pub listen: String,
    /// `public_url`.
    pub public_url: String,
    /// `name`.
    pub name: String,
    /// `state_dir`.
    pub state_dir: PathBuf,
    /// `[node]`.
    pub node: RawNode,
    /// `[sync]` (defaults when absent).
    #[serde(default)]
    pub sync: RawSync,
    /// `[tls]`.
    #[serde(default)]
    pub tls: Option<RawTls>,
    /// The `[audit]` keys every log has.
    #[serde(default)]
    pub audit: RawAudit,
    /// The `[anchoring]` keys every service has.
    #[serde(default)]
    pub anchoring: RawAnchoring,
    /// `[proxy]`.
    #[serde(default)]
    pub proxy: RawProxy,
}

/// `[proxy]`: the reverse proxies in front of the service (none by default).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RawProxy {
    trusted: Vec<String>,
}

/// `checkpoint_interval_secs` and `origin` of `[audit]` (defaults: 3600 s, the origin of
/// [`check_audit`]); a service's other `[audit]` keys are its own.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawAudit {
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

/// `fee_rate_sat_vb` and `min_depth` of `[anchoring]` (defaults: 2 sat/vB, depth 1); a
/// service's other `[anchoring]` keys are its own.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct RawAnchoring {
    fee_rate_sat_vb: u64,
    min_depth: u32,
}

impl Default for RawAnchoring {
    fn default() -> Self {
        Self {
            fee_rate_sat_vb: 2,
            min_depth: 1,
        }
    }
}

impl RawParty {
    /// Checks every value.
    pub fn check(self) -> Result<PartyConfig, ConfigError> {
        let listen = check_common(&self.listen, &self.public_url, &self.name, &self.state_dir)?;
        let audit = check_audit(
            self.audit.checkpoint_interval_secs,
            self.audit.origin.as_deref(),
            &self.public_url,
        )?;
        Ok(PartyConfig {
            listen,
            node: self.node.check()?,
            sync: self.sync.check()?,
            tls: check_tls(self.tls)?,
            public_url: self.public_url,
            name: self.name,
            state_dir: self.state_dir,
            audit,
            fee_rate: check_fee_rate(self.anchoring.fee_rate_sat_vb)?,
            min_depth: check_min_depth(self.anchoring.min_depth)?,
            trusted_proxies: TrustedProxies::parse(&self.proxy.trusted)?,
        })
    }
}
