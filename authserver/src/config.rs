//! The authentication server's configuration file (`authserver.toml`), parsed without
//! side effects.
//!
//! [`Config::parse`] is pure: it refuses unknown keys (naming each with its section),
//! checks every value and returns final types; files, sockets and connections are made
//! only by [`crate::AuthServer::start`]. The sections every service has (`[node]`,
//! `[sync]`, `[audit]`, `[anchoring]`) are [`milagro_service::config`]'s. Every key is
//! shown in `authserver/authserver.example.toml`.

use std::path::Path;
use std::time::Duration;

use milagro_service::config::{
    check_min_depth, check_token_hash, invalid, load_text, parse_raw, ANCHORING_KEYS, AUDIT_KEYS,
    NODE_KEYS, SYNC_KEYS,
};
pub use milagro_service::config::{AuditConfig, ConfigError, NodeConfig, SyncConfig};
use milagro_service::party_config::{PartyConfig, RawParty};
use milagro_service::token::TokenHash;
use milagro_verifier::config::{
    check_dtas, in_range, DtaKeys, LoginKeys, RawDta, RawLogin, DTA_KEYS, LOGIN_KEYS,
};
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
            "proxy",
        ],
    ),
    ("dtas", DTA_KEYS),
    ("login", LOGIN_KEYS),
    ("admin", &["token_sha256"]),
    ("node", NODE_KEYS),
    ("tls", milagro_service::https::TLS_KEYS),
    ("proxy", milagro_service::proxy::PROXY_KEYS),
    ("sync", SYNC_KEYS),
    ("anchoring", ANCHORING_KEYS),
    ("audit", AUDIT_KEYS),
];

pub use milagro_verifier::config::{DtaPeer, LoginConfig};

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
struct RawAdmin {
    token_sha256: String,
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
        let dtas = check_dtas(raw.dtas, DtaKeys::TOP)?;
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
            login: raw.login.check(LoginKeys::TOP)?,
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
