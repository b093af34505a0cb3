//! The TBS configuration file (`tbs.toml`), parsed without side effects.
//!
//! [`Config::parse`] is pure: it reads TOML text, refuses unknown keys (naming every one of
//! them, with its section), checks every value, and returns a [`Config`] whose fields have
//! their final types. Creating directories, keys and sockets happens later, in
//! [`crate::Tbs::start`]. Every field is documented in `tbs/tbs.example.toml`.
//!
//! Relative paths (`state_dir`, `node.rpc_cookie`) are relative to the working directory
//! of the process, not to the configuration file.

use std::path::Path;
use std::time::Duration;

use milagro_anchor::funding_pool::MAX_FAN_OUT_COINS;
use milagro_service::config::{invalid, load_text, parse_raw, NODE_KEYS, SYNC_KEYS};
pub use milagro_service::config::{AuditConfig, ConfigError, NodeConfig, SyncConfig};
use milagro_service::party_config::{PartyConfig, RawParty};

use crate::tenants::model::TokenHash;
use serde::Deserialize;

/// The TBS's example configuration, every key commented: the documentation of the
/// file, and the template `milagro init` fills in.
pub const EXAMPLE_CONFIG: &str = include_str!("../../tbs.example.toml");

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
            "enrolment",
            "admin",
            "audit",
            "tls",
            "proxy",
        ],
    ),
    ("node", NODE_KEYS),
    ("tls", milagro_service::https::TLS_KEYS),
    ("proxy", milagro_service::proxy::PROXY_KEYS),
    ("sync", SYNC_KEYS),
    (
        "anchoring",
        &[
            "fee_rate_sat_vb",
            "min_depth",
            "batch_interval_secs",
            "funding_pool",
        ],
    ),
    (
        "enrolment",
        &[
            "offer_expiry_secs",
            "requests_per_minute_per_address",
            "requests_per_minute_per_tenant",
            "max_pending_offers_per_tenant",
            "max_queued",
        ],
    ),
    ("admin", &["token_sha256"]),
    ("audit", &["checkpoint_interval_secs", "origin"]),
];

const MAX_BATCH_INTERVAL_SECS: u64 = 24 * 3600;

/// The longest an offer may hold its pool coin.
const MAX_OFFER_EXPIRY_SECS: u64 = 24 * 3600;

/// The most devices one batch anchors, and so the most the queue may hold.
pub const MAX_QUEUED: usize = 1_000_000;

/// A validated TBS configuration.
///
/// Only [`Config::parse`] (or [`Config::load`]) makes one; the fields are public to read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The keys every service has: `listen`, `public_url`, `name`, `state_dir`, `[node]`,
    /// `[sync]`, `[tls]`, `[audit]`, the fee rate and depth of its anchors.
    pub party: PartyConfig,
    /// How the TBS anchors its own Birth Certificate.
    pub anchoring: AnchoringConfig,
    /// The limits on device enrolments.
    pub enrolment: EnrolmentConfig,
    /// SHA-256 of the operator's admin token; without it, no tenant can be created.
    pub admin_token: Option<TokenHash>,
}

/// `[anchoring]` beyond the fee rate and depth every service has (those are in
/// [`PartyConfig`]): batches and the funding pool.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnchoringConfig {
    /// How often the queued devices of batch-mode groups are anchored as one batch root.
    pub batch_interval: Duration,
    /// Coins the funding pool is refilled to (at least 1: every direct-mode offer holds
    /// one until its device signs or the offer expires).
    pub funding_pool: usize,
}

/// `[enrolment]`: what one client or tenant may ask of the enrolment API. Past a limit the
/// TBS answers `429` with `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnrolmentConfig {
    /// How long an offer holds its pool coin before the coin returns to the pool and the
    /// device must ask again.
    pub offer_expiry: Duration,
    /// Enrolment requests one client address may send per minute.
    pub per_address_per_minute: u32,
    /// Enrolment requests one tenant's devices may send per minute, all together.
    pub per_tenant_per_minute: u32,
    /// Offers of one tenant's devices that may wait for a signature at once.
    pub max_pending_offers_per_tenant: usize,
    /// Batch-mode devices that may wait for the next batch, across all tenants.
    pub max_queued: usize,
}

/// The service's own keys; the ones every service has are read again as a
/// [`RawParty`]. Unknown keys are refused by `parse_raw`'s schema check.
#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    anchoring: RawAnchoring,
    #[serde(default)]
    enrolment: RawEnrolment,
    #[serde(default)]
    admin: Option<RawAdmin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    token_sha256: String,
}

/// The TBS's own `[anchoring]` keys (the fee rate and depth are every service's:
/// [`RawParty`]).
#[derive(Deserialize)]
#[serde(default)]
struct RawAnchoring {
    batch_interval_secs: u64,
    funding_pool: usize,
}

impl Default for RawAnchoring {
    fn default() -> Self {
        Self {
            batch_interval_secs: 600,
            funding_pool: 100,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawEnrolment {
    offer_expiry_secs: u64,
    requests_per_minute_per_address: u32,
    requests_per_minute_per_tenant: u32,
    max_pending_offers_per_tenant: usize,
    max_queued: usize,
}

impl Default for RawEnrolment {
    fn default() -> Self {
        Self {
            offer_expiry_secs: 600,
            requests_per_minute_per_address: 60,
            requests_per_minute_per_tenant: 600,
            max_pending_offers_per_tenant: 100,
            max_queued: MAX_QUEUED,
        }
    }
}

impl RawEnrolment {
    fn check(self) -> Result<EnrolmentConfig, ConfigError> {
        if !(1..=MAX_OFFER_EXPIRY_SECS).contains(&self.offer_expiry_secs) {
            return Err(invalid(
                "enrolment.offer_expiry_secs",
                format!("must be between 1 and {MAX_OFFER_EXPIRY_SECS}"),
            ));
        }
        let positive = [
            (
                "enrolment.requests_per_minute_per_address",
                self.requests_per_minute_per_address as usize,
            ),
            (
                "enrolment.requests_per_minute_per_tenant",
                self.requests_per_minute_per_tenant as usize,
            ),
            (
                "enrolment.max_pending_offers_per_tenant",
                self.max_pending_offers_per_tenant,
            ),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(invalid(key, "must be at least 1"));
        }
        if !(1..=MAX_QUEUED).contains(&self.max_queued) {
            return Err(invalid(
                "enrolment.max_queued",
                format!("must be between 1 and {MAX_QUEUED}"),
            ));
        }
        Ok(EnrolmentConfig {
            offer_expiry: Duration::from_secs(self.offer_expiry_secs),
            per_address_per_minute: self.requests_per_minute_per_address,
            per_tenant_per_minute: self.requests_per_minute_per_tenant,
            max_pending_offers_per_tenant: self.max_pending_offers_per_tenant,
            max_queued: self.max_queued,
        })
    }
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
        if !(1..=MAX_BATCH_INTERVAL_SECS).contains(&raw.anchoring.batch_interval_secs) {
            return Err(invalid(
                "anchoring.batch_interval_secs",
                format!("must be between 1 and {MAX_BATCH_INTERVAL_SECS}"),
            ));
        }
        if !(1..=MAX_FAN_OUT_COINS).contains(&raw.anchoring.funding_pool) {
            return Err(invalid(
                "anchoring.funding_pool",
                format!(
                    "must be between 1 and {MAX_FAN_OUT_COINS} (a device is paid only from a \
                     pool coin, reserved for its offer)"
                ),
            ));
        }
        let enrolment = raw.enrolment.check()?;
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
        Ok(Self {
            party,
            anchoring: AnchoringConfig {
                batch_interval: Duration::from_secs(raw.anchoring.batch_interval_secs),
                funding_pool: raw.anchoring.funding_pool,
            },
            enrolment,
            admin_token,
        })
    }
}

#[cfg(test)]
mod tests;
