//! What a verifier is configured with: the D-TAs whose server shares it sums
//! ([`DtaPeer`]) and how logins are limited ([`LoginConfig`]), with the raw TOML forms a
//! service's configuration parser embeds ([`RawDta`], [`RawLogin`]) and checks with
//! their `check` (pure: no side effects).

use std::str::FromStr as _;
use std::time::Duration;

use milagro_anchor::digest::Digest;
use milagro_service::config::{check_host_port, invalid, ConfigError};
use serde::Deserialize;

/// The keys of one `[[dtas]]` entry.
pub const DTA_KEYS: &[&str] = &["bc_digest", "share_api"];

/// The keys of `[login]`.
pub const LOGIN_KEYS: &[&str] = &[
    "challenge_ttl_secs",
    "max_failures",
    "lockout_secs",
    "max_lockouts",
    "max_pending",
    "max_pending_per_identity",
];

/// One D-TA whose server-secret share the verifier sums.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DtaPeer {
    /// The digest of the D-TA's anchored Birth Certificate: the only party the Milagro
    /// TLS session to `share_api` accepts, and the `dta` its answer must name.
    pub bc_digest: Digest,
    /// `host:port` of the D-TA's share API (Milagro TLS).
    pub share_api: String,
}

impl DtaPeer {
    /// The D-TA of certificate digest `bc_digest` whose share API is at `share_api`.
    pub fn new(bc_digest: Digest, share_api: String) -> Self {
        Self {
            bc_digest,
            share_api,
        }
    }
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

/// A `[[dtas]]` entry as written; [`RawDta::check`] makes the [`DtaPeer`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDta {
    bc_digest: String,
    share_api: String,
}

/// `[login]` as written, defaults filled in; [`RawLogin::check`] makes the
/// [`LoginConfig`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLogin {
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

/// `value` of `key` if it lies in `range`.
pub fn in_range<T: PartialOrd + std::fmt::Display>(
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

/// The full names of the login keys in a configuration, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginKeys([&'static str; 6]);

impl LoginKeys {
    /// `[login]` (the authentication server).
    pub const TOP: Self = Self([
        "login.challenge_ttl_secs",
        "login.max_failures",
        "login.lockout_secs",
        "login.max_lockouts",
        "login.max_pending",
        "login.max_pending_per_identity",
    ]);
    /// `[mpin.login]` (the IdP).
    pub const MPIN: Self = Self([
        "mpin.login.challenge_ttl_secs",
        "mpin.login.max_failures",
        "mpin.login.lockout_secs",
        "mpin.login.max_lockouts",
        "mpin.login.max_pending",
        "mpin.login.max_pending_per_identity",
    ]);
}

impl RawLogin {
    /// The checked values; errors name the key as `keys` does.
    pub fn check(self, keys: LoginKeys) -> Result<LoginConfig, ConfigError> {
        let [ttl, failures, lockout, lockouts, pending, per_identity] = keys.0;
        let secs = |key, value, range| in_range(key, value, range).map(Duration::from_secs);
        Ok(LoginConfig {
            challenge_ttl: secs(ttl, self.challenge_ttl_secs, 5..=600)?,
            max_failures: in_range(failures, self.max_failures, 1..=100)?,
            lockout: secs(lockout, self.lockout_secs, 1..=86_400)?,
            max_lockouts: in_range(lockouts, self.max_lockouts, 1..=20)?,
            max_pending: in_range(pending, self.max_pending, 1..=1_000_000)?,
            max_pending_per_identity: in_range(
                per_identity,
                self.max_pending_per_identity,
                1..=100,
            )?,
        })
    }
}

/// The names a configuration gives the D-TA list and its keys, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtaKeys {
    /// The list (`dtas`).
    pub list: &'static str,
    /// Its `bc_digest`.
    pub bc_digest: &'static str,
    /// Its `share_api`.
    pub share_api: &'static str,
}

impl DtaKeys {
    /// Top-level `[[dtas]]` (the authentication server).
    pub const TOP: Self = Self {
        list: "dtas",
        bc_digest: "dtas.bc_digest",
        share_api: "dtas.share_api",
    };
    /// `[[mpin.dtas]]` (the IdP).
    pub const MPIN: Self = Self {
        list: "mpin.dtas",
        bc_digest: "mpin.dtas.bc_digest",
        share_api: "mpin.dtas.share_api",
    };
}

impl RawDta {
    /// The checked peer; errors name the key as `keys` does.
    pub fn check(self, keys: DtaKeys) -> Result<DtaPeer, ConfigError> {
        let bc_digest = Digest::from_str(&self.bc_digest).map_err(|_| {
            invalid(
                keys.bc_digest,
                format!(
                    "{:?}: 64 hex characters, the D-TA's birth certificate digest",
                    self.bc_digest
                ),
            )
        })?;
        check_host_port(keys.share_api, &self.share_api)?;
        Ok(DtaPeer {
            bc_digest,
            share_api: self.share_api,
        })
    }
}

/// Checks a list of D-TA entries: at least one, each valid, no digest twice.
pub fn check_dtas(raw: Vec<RawDta>, keys: DtaKeys) -> Result<Vec<DtaPeer>, ConfigError> {
    let dtas = raw
        .into_iter()
        .map(|d| d.check(keys))
        .collect::<Result<Vec<_>, _>>()?;
    if dtas.is_empty() {
        return Err(invalid(
            keys.list,
            "list at least one D-TA (with bc_digest and share_api)",
        ));
    }
    for (i, dta) in dtas.iter().enumerate() {
        if dtas[..i].iter().any(|o| o.bc_digest == dta.bc_digest) {
            return Err(invalid(
                keys.bc_digest,
                format!("{} is listed twice", dta.bc_digest),
            ));
        }
    }
    Ok(dtas)
}
