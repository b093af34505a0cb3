//! The IdP configuration file (`idp.toml`), parsed without side effects.
//!
//! [`Config::parse`] is pure: it refuses unknown keys (naming each with its section),
//! checks every value and returns final types; files, keys and sockets are made later by
//! [`crate::Idp::start`]. The sections a service always has (`[node]`, `[sync]`,
//! `[audit]`, the anchoring fee rate and depth) are [`milagro_service::config`]'s; this
//! file adds the OpenID Connect ones. Every key is shown in `idp/idp.example.toml`.

use std::path::Path;
use std::time::Duration;

use milagro_service::config::{invalid, load_text, parse_raw, NODE_KEYS, SYNC_KEYS};
pub use milagro_service::config::{AuditConfig, ConfigError, NodeConfig, SyncConfig};
use milagro_service::party_config::{PartyConfig, RawParty};
use milagro_service::token::TokenHash;
pub use milagro_verifier::config::{DtaPeer, LoginConfig};

pub use crate::ciba::CibaConfig;
pub use crate::enrolment_codes::EnrolmentConfig;
use crate::mail::RawSmtp;
pub use crate::mail::SmtpConfig;

mod raw;
use raw::{first_party, seconds, token_hash, RawConfig, RawMpin};

/// The IdP's example configuration, every key commented: the documentation of the
/// file, and the template `milagro init` fills in.
pub const EXAMPLE_CONFIG: &str = include_str!("../../idp.example.toml");

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
            "proxy",
            "sessions",
            "consent",
            "enrolment",
            "smtp",
            "mpin",
            "passwords",
        ],
    ),
    ("passwords", &["enabled"]),
    (
        "mpin",
        &[
            "min_peer_depth",
            "signin_secs",
            "max_signins",
            "dtas",
            "login",
            "ciba",
        ],
    ),
    (
        "enrolment",
        &["allowed_domains", "mail_code_secs", "activation_code_secs"],
    ),
    ("smtp", crate::mail::SMTP_KEYS),
    ("node", NODE_KEYS),
    ("tls", milagro_service::https::TLS_KEYS),
    ("proxy", milagro_service::proxy::PROXY_KEYS),
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
    /// `[mpin.ciba]`: backchannel authentication requests ([`crate::ciba`]).
    pub ciba: CibaConfig,
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
    /// `[passwords] enabled`: whether people may sign in with a password (argon2id, as
    /// before M-Pin), for an operator migrating accounts. Off by default: the sign-in page,
    /// the device page, `POST /login` and `POST /v1/admin/users` then know no password.
    pub passwords: bool,
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
            passwords: raw.passwords.enabled,
        })
    }
}

#[cfg(test)]
mod tests;
