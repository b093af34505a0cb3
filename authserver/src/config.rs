//! The authentication server's configuration file (`authserver.toml`), parsed without
//! side effects.
//!
//! [`Config::parse`] is pure: it refuses unknown keys (naming each with its section),
//! checks every value and returns final types; files, sockets and connections are made
//! only by [`crate::AuthServer::start`]. The sections every service has (`[node]`,
//! `[sync]`, `[audit]`, `[anchoring]`) are [`milagro_service::config`]'s. Every key is
//! shown in `authserver/authserver.example.toml`.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use milagro_anchor::digest::Digest;
use milagro_service::config::{
    check_host_port, check_min_depth, check_token_hash, invalid, load_text, parse_raw,
    ANCHORING_KEYS, AUDIT_KEYS, NODE_KEYS, SYNC_KEYS,
};
pub use milagro_service::config::{AuditConfig, ConfigError, NodeConfig, SyncConfig};
use milagro_service::party_config::{PartyConfig, RawParty};
use milagro_service::token::TokenHash;
use serde::Deserialize;

/// The authentication server's example configuration, every key commented: the documentation of the
/// file, and the template `milagro init` fills in.
pub const EXAMPLE_CONFIG: &str = include_str!("../authserver.example.toml");

/// The keys each section admits; anything else is refused by [`Config::parse`].
const SCHEMA: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "listen",
            "public_url",
            "name",
            "state_dir",
            "min_peer_depth",
            "session_lifetime_secs",
            "dtas",
            "login",
            "admin",
            "node",
            "sync",
            "anchoring",
            "audit",
            "tls",
        ],
    ),
    ("dtas", &["bc_digest", "share_api"]),
    (
        "login",
        &[
            "challenge_ttl_secs",
            "max_failures",
            "lockout_secs",
            "max_lockouts",
            "max_pending",
            "max_pending_per_identity",
        ],
    ),
    ("admin", &["token_sha256"]),
    ("node", NODE_KEYS),
    ("tls", milagro_service::https::TLS_KEYS),
    ("sync", SYNC_KEYS),
    ("anchoring", ANCHORING_KEYS),
    ("audit", AUDIT_KEYS),
];

/// One D-TA whose server-secret share the authentication server sums.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DtaPeer {
    /// The digest of the D-TA's anchored Birth Certificate: the only party the Milagro
    /// TLS session to `share_api` accepts, and the `dta` its answer must name.
    pub bc_digest: Digest,
    /// `host:port` of the D-TA's share API (Milagro TLS).
    pub share_api: String,
}

/// `[login]`: how long a challenge waits, and how failed proofs are rate-limited.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginConfig {
    /// How long a challenge waits for its proof.
    pub challenge_ttl: Duration,
    /// Consecutive failed proofs of one identity before it is locked out.
    pub max_failures: u32,
    /// How long the first lockout lasts; each next one lasts twice as long.
    pub lockout: Duration,
    /// Lockouts after which the identity is blocked for good (a new registration is the
    /// way back).
    pub max_lockouts: u32,
    /// Pending challenges kept at most (more: 503 `busy`).
    pub max_pending: usize,
    /// Pending challenges of one identity at most (more: 429 `too_many_pending`).
    pub max_pending_per_identity: usize,
}

impl LoginConfig {
    /// The documented defaults: 60 s, 5 failures, 300 s, 3 lockouts, 10 000 pending, 3
    /// per identity.
    pub fn new() -> Self {
        Self {
            challenge_ttl: Duration::from_secs(60),
            max_failures: 5,
            lockout: Duration::from_secs(300),
            max_lockouts: 3,
            max_pending: 10_000,
            max_pending_per_identity: 3,
        }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// A validated configuration. Only [`Config::parse`] (or [`Config::load`]) makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The keys every service has: `listen`, `public_url`, `name`, `state_dir`, `[node]`,
    /// `[sync]`, `[tls]`, `[audit]`, the fee rate and depth of its anchors.
    pub party: PartyConfig,
    /// Confirmations a D-TA's anchor needs before its share is accepted.
    pub min_peer_depth: u32,
    /// How long a session token is valid.
    pub session_lifetime: Duration,
    /// The D-TAs whose server-secret shares are summed (at least one).
    pub dtas: Vec<DtaPeer>,
    /// `[login]`.
    pub login: LoginConfig,
    /// The SHA-256 of the admin token; `None`: the admin API is off.
    pub admin_token: Option<TokenHash>,
}

/// The service's own keys; the ones every service has are read again as a
/// [`RawParty`]. Unknown keys are refused by `parse_raw`'s schema check.
#[derive(Deserialize)]
struct RawConfig {
    #[serde(default = "default_peer_depth")]
    min_peer_depth: u32,
    #[serde(default = "default_session_lifetime")]
    session_lifetime_secs: u64,
    #[serde(default)]
    dtas: Vec<RawDta>,
    #[serde(default)]
    login: RawLogin,
    admin: Option<RawAdmin>,
}

fn default_peer_depth() -> u32 {
    milagro_anchor::proof::FINAL_DEPTH
}

fn default_session_lifetime() -> u64 {
    3600
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDta {
    bc_digest: String,
    share_api: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLogin {
    challenge_ttl_secs: u64,
    max_failures: u32,
    lockout_secs: u64,
    max_lockouts: u32,
    max_pending: usize,
    max_pending_per_identity: usize,
}

impl Default for RawLogin {
    fn default() -> Self {
        let defaults = LoginConfig::new();
        Self {
            challenge_ttl_secs: defaults.challenge_ttl.as_secs(),
            max_failures: defaults.max_failures,
            lockout_secs: defaults.lockout.as_secs(),
            max_lockouts: defaults.max_lockouts,
            max_pending: defaults.max_pending,
            max_pending_per_identity: defaults.max_pending_per_identity,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    token_sha256: String,
}

/// `value` of `key` if it lies in `range`.
fn in_range<T: PartialOrd + std::fmt::Display>(
    key: &'static str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(invalid(
            key,
            format!("must be between {} and {}", range.start(), range.end()),
        ))
    }
}

impl RawLogin {
    fn check(self) -> Result<LoginConfig, ConfigError> {
        let secs = |key, value, range| in_range(key, value, range).map(Duration::from_secs);
        Ok(LoginConfig {
            challenge_ttl: secs("login.challenge_ttl_secs", self.challenge_ttl_secs, 5..=600)?,
            max_failures: in_range("login.max_failures", self.max_failures, 1..=100)?,
            lockout: secs("login.lockout_secs", self.lockout_secs, 1..=86_400)?,
            max_lockouts: in_range("login.max_lockouts", self.max_lockouts, 1..=20)?,
            max_pending: in_range("login.max_pending", self.max_pending, 1..=1_000_000)?,
            max_pending_per_identity: in_range(
                "login.max_pending_per_identity",
                self.max_pending_per_identity,
                1..=100,
            )?,
        })
    }
}

impl RawDta {
    fn check(self) -> Result<DtaPeer, ConfigError> {
        let bc_digest = Digest::from_str(&self.bc_digest).map_err(|_| {
            invalid(
                "dtas.bc_digest",
                format!(
                    "{:?}: 64 hex characters, the D-TA's birth certificate digest",
                    self.bc_digest
                ),
            )
        })?;
        check_host_port("dtas.share_api", &self.share_api)?;
        Ok(DtaPeer {
            bc_digest,
            share_api: self.share_api,
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
        let dtas = raw
            .dtas
            .into_iter()
            .map(RawDta::check)
            .collect::<Result<Vec<_>, _>>()?;
        if dtas.is_empty() {
            return Err(invalid(
                "dtas",
                "list at least one D-TA ([[dtas]] with bc_digest and share_api)",
            ));
        }
        for (i, dta) in dtas.iter().enumerate() {
            if dtas[..i].iter().any(|o| o.bc_digest == dta.bc_digest) {
                return Err(invalid(
                    "dtas.bc_digest",
                    format!("{} is listed twice", dta.bc_digest),
                ));
            }
        }
        let admin_token = check_token_hash(
            "admin.token_sha256",
            raw.admin.as_ref().map(|a| a.token_sha256.as_str()),
        )?;
        Ok(Self {
            party,
            min_peer_depth: check_min_depth(raw.min_peer_depth)
                .map_err(|_| invalid("min_peer_depth", "must be between 1 and 1000"))?,
            session_lifetime: Duration::from_secs(in_range(
                "session_lifetime_secs",
                raw.session_lifetime_secs,
                60..=86_400,
            )?),
            dtas,
            login: raw.login.check()?,
            admin_token,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DTA: &str = "[[dtas]]\nbc_digest = \"ab00000000000000000000000000000000000000000000000000000000000000\"\nshare_api = \"127.0.0.1:8092\"\n";

    fn minimal() -> String {
        format!(
            r#"
listen = "127.0.0.1:0"
public_url = "https://auth.milagro.test"
name = "Auth"
state_dir = "state"
[node]
rpc_url = "http://127.0.0.1:18443"
rpc_cookie = "/tmp/.cookie"
network = "regtest"
{DTA}"#
        )
    }

    #[test]
    fn the_example_file_parses_and_documents_every_key() {
        let text = EXAMPLE_CONFIG;
        let config = Config::parse(text).unwrap();
        assert_eq!(config.party.public_url, "https://auth.example.com");
        assert_eq!(config.dtas.len(), 2);
        assert!(config.admin_token.is_some());
        let missing = milagro_service::config::undocumented_keys(text, SCHEMA);
        // `[[dtas]]` is an array of tables, which the check does not look for.
        assert_eq!(missing, [".dtas"], "authserver.example.toml");
        assert!(text.contains("\n[[dtas]]\n"));
    }

    #[test]
    fn defaults_then_bad_values_are_refused_by_key() {
        let config = Config::parse(&minimal()).unwrap();
        assert_eq!(config.min_peer_depth, 6);
        assert_eq!(config.session_lifetime, Duration::from_secs(3600));
        assert_eq!(config.login, LoginConfig::new());
        assert_eq!(config.admin_token, None);
        assert_eq!(
            config.party.audit.origin.as_str(),
            "auth.milagro.test/audit"
        );
        assert_eq!(config.dtas[0].share_api, "127.0.0.1:8092");
        let two = Config::parse(&format!("{}{}", minimal(), DTA.replace("ab", "cd"))).unwrap();
        assert_eq!(two.dtas.len(), 2);
        let login = Config::parse(&format!(
            "{}[login]\nmax_failures = 3\nlockout_secs = 10\n",
            minimal()
        ))
        .unwrap()
        .login;
        assert_eq!((login.max_failures, login.lockout.as_secs()), (3, 10));

        let top = |line: &str| format!("{line}\n{}", minimal());
        let cases = [
            (top("min_peer_depth = 0"), "min_peer_depth"),
            (top("session_lifetime_secs = 59"), "session_lifetime_secs"),
            (
                top("session_lifetime_secs = 86401"),
                "session_lifetime_secs",
            ),
            (minimal().replace(DTA, ""), "dtas"),
            (format!("{}{DTA}", minimal()), "dtas.bc_digest"),
            (minimal().replace("\"ab", "\"x"), "dtas.bc_digest"),
            (
                minimal().replace("127.0.0.1:8092", "127.0.0.1"),
                "dtas.share_api",
            ),
            (
                minimal().replace("127.0.0.1:8092", "dta one:1"),
                "dtas.share_api",
            ),
            (
                format!("{}[login]\nchallenge_ttl_secs = 4\n", minimal()),
                "login.challenge_ttl_secs",
            ),
            (
                format!("{}[login]\nmax_failures = 0\n", minimal()),
                "login.max_failures",
            ),
            (
                format!("{}[login]\nmax_pending = 0\n", minimal()),
                "login.max_pending",
            ),
            (
                format!("{}[admin]\ntoken_sha256 = \"xy\"\n", minimal()),
                "admin.token_sha256",
            ),
        ];
        for (text, key) in cases {
            match Config::parse(&text) {
                Err(ConfigError::Invalid { key: found, .. }) => assert_eq!(found, key, "{text}"),
                other => panic!("{key}: {other:?}"),
            }
        }
        for unknown in [
            format!("{}[login]\nmax_failure = 3\n", minimal()),
            format!("{}[admins]\n", minimal()),
        ] {
            assert!(matches!(
                Config::parse(&unknown),
                Err(ConfigError::UnknownKeys(_))
            ));
        }
        // Inside an array of tables, serde refuses the unknown key.
        assert!(matches!(
            Config::parse(&minimal().replace("share_api", "share_apis")),
            Err(ConfigError::Toml(_))
        ));
    }
}
