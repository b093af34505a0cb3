//! The IdP configuration file (`idp.toml`), parsed without side effects.
//!
//! [`Config::parse`] is pure: it refuses unknown keys (naming each with its section),
//! checks every value and returns final types; files, keys and sockets are made later by
//! [`crate::Idp::start`]. The sections a service always has (`[node]`, `[sync]`,
//! `[audit]`, the anchoring fee rate and depth) are [`milagro_service::config`]'s; this
//! file adds the OpenID Connect ones. Every key is shown in `idp/idp.example.toml`.

use std::path::Path;
use std::time::Duration;

use milagro_service::config::{
    check_min_depth, invalid, load_text, parse_raw, NODE_KEYS, SYNC_KEYS,
};
pub use milagro_service::config::{AuditConfig, ConfigError, NodeConfig, SyncConfig};
use milagro_service::party_config::{PartyConfig, RawParty};
use milagro_service::token::TokenHash;
use milagro_verifier::config::{check_dtas, in_range, DtaKeys, LoginKeys, RawDta, RawLogin};
pub use milagro_verifier::config::{DtaPeer, LoginConfig};
use serde::Deserialize;

pub use crate::enrolment_codes::EnrolmentConfig;
use crate::mail::RawSmtp;
pub use crate::mail::SmtpConfig;

/// The IdP's example configuration, every key commented: the documentation of the
/// file, and the template `milagro init` fills in.
pub const EXAMPLE_CONFIG: &str = include_str!("../idp.example.toml");

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
            "registration",
            "tokens",
            "keys",
            "audit",
            "tls",
            "sessions",
            "consent",
            "enrolment",
            "smtp",
            "mpin",
        ],
    ),
    (
        "mpin",
        &[
            "min_peer_depth",
            "signin_secs",
            "max_signins",
            "dtas",
            "login",
        ],
    ),
    (
        "enrolment",
        &["allowed_domains", "mail_code_secs", "activation_code_secs"],
    ),
    ("smtp", crate::mail::SMTP_KEYS),
    ("node", NODE_KEYS),
    ("tls", milagro_service::https::TLS_KEYS),
    ("sync", SYNC_KEYS),
    ("anchoring", &["fee_rate_sat_vb", "min_depth"]),
    ("admin", &["token_sha256"]),
    ("registration", &["initial_access_token_sha256"]),
    (
        "tokens",
        &[
            "code_secs",
            "access_secs",
            "id_token_secs",
            "refresh_secs",
            "device_code_secs",
            "device_poll_secs",
        ],
    ),
    ("keys", &["rotation_secs", "prepublish_secs"]),
    ("sessions", &["lifetime_secs"]),
    (
        "consent",
        &["required", "first_party_clients", "remember_secs"],
    ),
    (
        "audit",
        &["checkpoint_interval_secs", "origin", "period_secs"],
    ),
];

const DAY: u64 = 24 * 3600;

/// `[mpin]`: the D-TAs whose server shares the IdP sums to verify M-Pin sign-ins, and
/// how sign-ins are limited.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MpinConfig {
    /// Confirmations a D-TA's anchor needs before its share is accepted.
    pub min_peer_depth: u32,
    /// How long a sign-in page's access number is good for.
    pub signin: Duration,
    /// Sign-ins waiting for a device at most (more: the page answers 503).
    pub max_signins: usize,
    /// `[[mpin.dtas]]`: the D-TAs (at least one); each must list the IdP's certificate
    /// digest in its `authservers`.
    pub dtas: Vec<DtaPeer>,
    /// `[mpin.login]`: the challenge lifetime and PIN-guess limits, as the auth server's
    /// `[login]`.
    pub login: LoginConfig,
}

/// A validated IdP configuration. Only [`Config::parse`] (or [`Config::load`]) makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The keys every service has: `listen`, `public_url`, `name`, `state_dir`, `[node]`,
    /// `[sync]`, `[tls]`, `[audit]`, the fee rate and depth of its anchors.
    pub party: PartyConfig,
    /// `[mpin]`: sign-in with a device's M-Pin key; `None` without the section (no
    /// sign-in page with an access number, no `/v1/signin/*`).
    pub mpin: Option<MpinConfig>,
    /// SHA-256 of the operator's admin token; without it the admin API refuses every call.
    pub admin_token: Option<TokenHash>,
    /// SHA-256 of the initial access token that dynamic registration requires; open
    /// registration without it.
    pub initial_access_token: Option<TokenHash>,
    /// Lifetimes of what the IdP issues.
    pub tokens: TokenLifetimes,
    /// Rotation of the ID-token signing keys.
    pub keys: KeyRotation,
    /// The time period of the activity log's entries (`H(subject ‖ period)`).
    pub audit_period: Duration,
    /// How long a login session lasts (single sign-on across clients) from the sign-in.
    pub session_lifetime: Duration,
    /// Consent to clients (the consent screen).
    pub consent: ConsentConfig,
    /// `[enrolment]`: registration without a password.
    pub enrolment: EnrolmentConfig,
    /// `[smtp]`: where e-mailed codes are sent from; without it, only activation codes.
    pub smtp: Option<SmtpConfig>,
}

/// `[consent]`: which clients people are not asked about, and how long a consent lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsentConfig {
    /// Whether any client needs consent; `false` trusts every client as first-party (for
    /// deployments whose operator registers every client, and for tests).
    pub required: bool,
    /// The client ids the operator vouches for: no consent screen for them.
    pub first_party_clients: Vec<String>,
    /// How long a person's approval of a client's scopes is remembered.
    pub remember: Duration,
}

impl ConsentConfig {
    /// Whether `client_id` is first-party (no consent screen).
    pub fn is_first_party(&self, client_id: &str) -> bool {
        !self.required || self.first_party_clients.iter().any(|c| c == client_id)
    }
}

/// `[tokens]`: how long each issued thing lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenLifetimes {
    /// Authorization codes (single use).
    pub code: Duration,
    /// Access tokens.
    pub access: Duration,
    /// ID tokens.
    pub id_token: Duration,
    /// Refresh tokens (each use rotates it).
    pub refresh: Duration,
    /// Device codes of the device authorization grant.
    pub device_code: Duration,
    /// The least interval between two polls of a device code.
    pub device_poll: Duration,
}

/// `[keys]`: ES256 signing key rotation (see [`crate::keys`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyRotation {
    /// How long a key signs before the next one takes over.
    pub rotation: Duration,
    /// How long a new key is published in the JWKS before it signs anything.
    pub prepublish: Duration,
}

/// The service's own keys; the ones every service has are read again as a
/// [`RawParty`]. Unknown keys are refused by `parse_raw`'s schema check.
#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    mpin: Option<RawMpin>,
    #[serde(default)]
    admin: Option<RawHash>,
    #[serde(default)]
    registration: Option<RawRegistration>,
    #[serde(default)]
    tokens: RawTokens,
    #[serde(default)]
    keys: RawKeys,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    sessions: RawSessions,
    #[serde(default)]
    consent: RawConsent,
    #[serde(default)]
    enrolment: RawEnrolment,
    #[serde(default)]
    smtp: Option<RawSmtp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawSessions {
    lifetime_secs: u64,
}

impl Default for RawSessions {
    fn default() -> Self {
        Self {
            lifetime_secs: 8 * 3600,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawConsent {
    required: bool,
    first_party_clients: Vec<String>,
    remember_secs: u64,
}

impl Default for RawConsent {
    fn default() -> Self {
        Self {
            required: true,
            first_party_clients: Vec::new(),
            remember_secs: 365 * DAY,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawEnrolment {
    allowed_domains: Vec<String>,
    mail_code_secs: u64,
    activation_code_secs: u64,
}

impl Default for RawEnrolment {
    fn default() -> Self {
        let defaults = EnrolmentConfig::default();
        Self {
            allowed_domains: Vec::new(),
            mail_code_secs: defaults.mail_code.as_secs(),
            activation_code_secs: defaults.activation_code.as_secs(),
        }
    }
}

impl RawEnrolment {
    fn check(self) -> Result<EnrolmentConfig, ConfigError> {
        let mut domains = Vec::with_capacity(self.allowed_domains.len());
        for domain in self.allowed_domains {
            let domain = domain.to_ascii_lowercase();
            if crate::users::normalise_email(&format!("x@{domain}")).is_none() {
                return Err(invalid(
                    "enrolment.allowed_domains",
                    "each a domain name such as \"example.com\"",
                ));
            }
            domains.push(domain);
        }
        Ok(EnrolmentConfig {
            allowed_domains: domains,
            mail_code: seconds("enrolment.mail_code_secs", self.mail_code_secs, 1, 3600)?,
            activation_code: seconds(
                "enrolment.activation_code_secs",
                self.activation_code_secs,
                1,
                90 * DAY,
            )?,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMpin {
    #[serde(default = "default_peer_depth")]
    min_peer_depth: u32,
    #[serde(default = "default_signin_secs")]
    signin_secs: u64,
    #[serde(default = "default_max_signins")]
    max_signins: usize,
    #[serde(default)]
    dtas: Vec<RawDta>,
    #[serde(default)]
    login: RawLogin,
}

fn default_peer_depth() -> u32 {
    milagro_anchor::proof::FINAL_DEPTH
}

fn default_signin_secs() -> u64 {
    300
}

fn default_max_signins() -> usize {
    10_000
}

impl RawMpin {
    fn check(self) -> Result<MpinConfig, ConfigError> {
        Ok(MpinConfig {
            min_peer_depth: check_min_depth(self.min_peer_depth)
                .map_err(|_| invalid("mpin.min_peer_depth", "must be between 1 and 1000"))?,
            signin: seconds("mpin.signin_secs", self.signin_secs, 30, 3600)?,
            max_signins: in_range("mpin.max_signins", self.max_signins, 1..=1_000_000)?,
            dtas: check_dtas(self.dtas, DtaKeys::MPIN)?,
            login: self.login.check(LoginKeys::MPIN)?,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHash {
    token_sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistration {
    initial_access_token_sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTokens {
    code_secs: u64,
    access_secs: u64,
    id_token_secs: u64,
    refresh_secs: u64,
    device_code_secs: u64,
    device_poll_secs: u64,
}

impl Default for RawTokens {
    fn default() -> Self {
        Self {
            code_secs: 60,
            access_secs: 600,
            id_token_secs: 600,
            refresh_secs: 30 * DAY,
            device_code_secs: 600,
            device_poll_secs: 5,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawKeys {
    rotation_secs: u64,
    prepublish_secs: u64,
}

impl Default for RawKeys {
    fn default() -> Self {
        Self {
            rotation_secs: 30 * DAY,
            prepublish_secs: DAY,
        }
    }
}

/// The IdP's own `[audit]` key (the checkpoint keys are every service's: [`RawParty`]).
#[derive(Deserialize)]
#[serde(default)]
struct RawAudit {
    period_secs: u64,
}

impl Default for RawAudit {
    fn default() -> Self {
        Self { period_secs: DAY }
    }
}

/// `value` seconds, within `low..=high`, or an error naming `key`.
fn seconds(key: &'static str, value: u64, low: u64, high: u64) -> Result<Duration, ConfigError> {
    if !(low..=high).contains(&value) {
        return Err(invalid(key, format!("must be between {low} and {high}")));
    }
    Ok(Duration::from_secs(value))
}

fn token_hash(key: &'static str, hex: &str) -> Result<TokenHash, ConfigError> {
    TokenHash::from_hex(hex)
        .map_err(|_| invalid(key, "64 hex characters: the SHA-256 of the token"))
}

/// The first-party client ids: at most 1024, each 1 to 128 printable characters.
fn first_party(ids: Vec<String>) -> Result<Vec<String>, ConfigError> {
    let key = "consent.first_party_clients";
    if ids.len() > 1024 {
        return Err(invalid(key, "at most 1024 client ids"));
    }
    if ids
        .iter()
        .any(|id| id.is_empty() || id.len() > 128 || id.chars().any(char::is_control))
    {
        return Err(invalid(
            key,
            "each client id is 1 to 128 printable characters",
        ));
    }
    Ok(ids)
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
        // The issuer is compared as a string by relying parties (OpenID Connect
        // Discovery §4.3): one spelling, no query or fragment.
        if party.public_url.ends_with('/') || party.public_url.contains(['?', '#']) {
            return Err(invalid(
                "public_url",
                "the issuer has no trailing '/', query or fragment",
            ));
        }
        let t = &raw.tokens;
        let tokens = TokenLifetimes {
            code: seconds("tokens.code_secs", t.code_secs, 1, 600)?,
            access: seconds("tokens.access_secs", t.access_secs, 1, DAY)?,
            id_token: seconds("tokens.id_token_secs", t.id_token_secs, 1, DAY)?,
            refresh: seconds("tokens.refresh_secs", t.refresh_secs, 1, 365 * DAY)?,
            device_code: seconds("tokens.device_code_secs", t.device_code_secs, 1, DAY)?,
            device_poll: seconds("tokens.device_poll_secs", t.device_poll_secs, 0, 600)?,
        };
        let keys = KeyRotation {
            rotation: seconds("keys.rotation_secs", raw.keys.rotation_secs, 1, 3650 * DAY)?,
            prepublish: seconds(
                "keys.prepublish_secs",
                raw.keys.prepublish_secs,
                0,
                365 * DAY,
            )?,
        };
        if keys.prepublish >= keys.rotation {
            return Err(invalid(
                "keys.prepublish_secs",
                "must be shorter than keys.rotation_secs",
            ));
        }
        Ok(Self {
            party,
            mpin: raw.mpin.map(RawMpin::check).transpose()?,
            admin_token: raw
                .admin
                .map(|a| token_hash("admin.token_sha256", &a.token_sha256))
                .transpose()?,
            initial_access_token: raw
                .registration
                .map(|r| {
                    token_hash(
                        "registration.initial_access_token_sha256",
                        &r.initial_access_token_sha256,
                    )
                })
                .transpose()?,
            tokens,
            keys,
            audit_period: seconds("audit.period_secs", raw.audit.period_secs, 1, 366 * DAY)?,
            session_lifetime: seconds(
                "sessions.lifetime_secs",
                raw.sessions.lifetime_secs,
                1,
                30 * DAY,
            )?,
            consent: ConsentConfig {
                required: raw.consent.required,
                first_party_clients: first_party(raw.consent.first_party_clients)?,
                remember: seconds(
                    "consent.remember_secs",
                    raw.consent.remember_secs,
                    1,
                    3650 * DAY,
                )?,
            },
            enrolment: raw.enrolment.check()?,
            smtp: raw.smtp.map(RawSmtp::check).transpose()?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses_and_documents_every_key() {
        let text = include_str!("../idp.example.toml");
        let config = Config::parse(text).unwrap();
        assert_eq!(config.party.public_url, "https://idp.example.com");
        let missing = milagro_service::config::undocumented_keys(text, SCHEMA);
        // `[[mpin.dtas]]` (an array of tables) and `[mpin.login]` (a nested table) are
        // not looked for by the check: their keys are checked here instead.
        assert_eq!(
            missing,
            ["mpin.dtas", "mpin.login"],
            "idp.example.toml does not show {missing:?}"
        );
        let mpin = config.mpin.unwrap();
        assert_eq!(mpin.dtas.len(), 2);
        assert_eq!(mpin.login, LoginConfig::new());
        assert_eq!(mpin.signin, Duration::from_secs(300));
        for key in milagro_verifier::config::LOGIN_KEYS {
            assert!(text.contains(&format!("\n{key} = ")), "{key}");
        }
    }

    #[test]
    fn the_mpin_section_is_checked_by_key() {
        let base = EXAMPLE_CONFIG;
        let cases = [
            ("signin_secs = 300", "signin_secs = 10", "mpin.signin_secs"),
            ("max_signins = 10000", "max_signins = 0", "mpin.max_signins"),
            (
                "min_peer_depth = 6",
                "min_peer_depth = 0",
                "mpin.min_peer_depth",
            ),
            (
                "max_failures = 5",
                "max_failures = 0",
                "mpin.login.max_failures",
            ),
            (
                "share_api = \"dta1.example.com:8092\"",
                "share_api = \"dta1\"",
                "mpin.dtas.share_api",
            ),
            (
                "bc_digest = \"1a2b",
                "bc_digest = \"zz2b",
                "mpin.dtas.bc_digest",
            ),
            (
                "bc_digest = \"9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0\"",
                "bc_digest = \"1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809\"",
                "mpin.dtas.bc_digest",
            ),
        ];
        for (from, to, key) in cases {
            assert!(base.contains(from), "{from}");
            match Config::parse(&base.replacen(from, to, 1)) {
                Err(ConfigError::Invalid { key: found, .. }) => assert_eq!(found, key, "{to}"),
                other => panic!("{to}: {other:?}"),
            }
        }
        // Without [mpin], no M-Pin sign-in; with it, at least one D-TA.
        let start = base.find("\n[mpin]").unwrap();
        assert!(Config::parse(&base[..start]).unwrap().mpin.is_none());
        let no_dtas = format!("{}\n[mpin]\n", &base[..start]);
        match Config::parse(&no_dtas) {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "mpin.dtas"),
            other => panic!("{other:?}"),
        }
        assert!(Config::parse(&base.replacen("max_lockouts = 3", "max_lockout = 3", 1)).is_err());
    }

    #[test]
    fn bad_values_are_refused_by_key() {
        let minimal = r#"
listen = "127.0.0.1:0"
public_url = "https://idp.milagro.test"
name = "IdP"
state_dir = "state"
[node]
rpc_url = "http://127.0.0.1:18443"
rpc_cookie = "/tmp/.cookie"
network = "regtest"
"#;
        let config = Config::parse(minimal).unwrap();
        assert_eq!(config.tokens.code, Duration::from_secs(60));
        assert_eq!(config.party.audit.origin.as_str(), "idp.milagro.test/audit");
        let cases = [
            (
                minimal.replace("milagro.test\"", "milagro.test/\""),
                "public_url",
            ),
            (
                format!("{minimal}[tokens]\ncode_secs = 0\n"),
                "tokens.code_secs",
            ),
            (
                format!("{minimal}[keys]\nrotation_secs = 10\nprepublish_secs = 10\n"),
                "keys.prepublish_secs",
            ),
            (
                format!("{minimal}[admin]\ntoken_sha256 = \"xy\"\n"),
                "admin.token_sha256",
            ),
            (
                format!("{minimal}[enrolment]\nallowed_domains = [\"no domain\"]\n"),
                "enrolment.allowed_domains",
            ),
            (
                format!("{minimal}[smtp]\nhost = \"mail.example.com\"\nport = 25\ntls = \"none\"\nfrom = \"a@b.c\"\n"),
                "smtp.tls",
            ),
        ];
        for (text, key) in cases {
            match Config::parse(&text) {
                Err(ConfigError::Invalid { key: found, .. }) => assert_eq!(found, key),
                other => panic!("{key}: {other:?}"),
            }
        }
        assert!(matches!(
            Config::parse(&format!("{minimal}[tokens]\nfoo = 1\n")),
            Err(ConfigError::UnknownKeys(_))
        ));
    }
}
