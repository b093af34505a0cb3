//! The file's sections as read (`Raw*`, every default here) and the checks that turn
//! each into its [`super::Config`] part.

use std::time::Duration;

use milagro_service::config::{check_min_depth, invalid, ConfigError};
use milagro_service::token::TokenHash;
use milagro_verifier::config::{check_dtas, in_range, DtaKeys, LoginKeys, RawDta, RawLogin};
use serde::Deserialize;

use super::{CibaConfig, EnrolmentConfig, MpinConfig, DAY};
use crate::mail::RawSmtp;

/// The service's own keys; the ones every service has are read again as a
/// [`RawParty`]. Unknown keys are refused by `parse_raw`'s schema check.
#[derive(Deserialize)]
pub(super) struct RawConfig {
    #[serde(default)]
    pub(super) mpin: Option<RawMpin>,
    #[serde(default)]
    pub(super) admin: Option<RawHash>,
    #[serde(default)]
    pub(super) registration: Option<RawRegistration>,
    #[serde(default)]
    pub(super) tokens: RawTokens,
    #[serde(default)]
    pub(super) keys: RawKeys,
    #[serde(default)]
    pub(super) audit: RawAudit,
    #[serde(default)]
    pub(super) sessions: RawSessions,
    #[serde(default)]
    pub(super) consent: RawConsent,
    #[serde(default)]
    pub(super) enrolment: RawEnrolment,
    #[serde(default)]
    pub(super) smtp: Option<RawSmtp>,
    #[serde(default)]
    pub(super) passwords: RawPasswords,
}

/// `[passwords]`: off unless the operator says otherwise.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawPasswords {
    pub(super) enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSessions {
    pub(super) lifetime_secs: u64,
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
pub(super) struct RawConsent {
    pub(super) required: bool,
    pub(super) first_party_clients: Vec<String>,
    pub(super) remember_secs: u64,
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
pub(super) struct RawEnrolment {
    pub(super) allowed_domains: Vec<String>,
    pub(super) mail_code_secs: u64,
    pub(super) activation_code_secs: u64,
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
    pub(super) fn check(self) -> Result<EnrolmentConfig, ConfigError> {
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
pub(super) struct RawMpin {
    #[serde(default = "default_peer_depth")]
    pub(super) min_peer_depth: u32,
    #[serde(default = "default_signin_secs")]
    pub(super) signin_secs: u64,
    #[serde(default = "default_max_signins")]
    pub(super) max_signins: usize,
    #[serde(default)]
    pub(super) dtas: Vec<RawDta>,
    #[serde(default)]
    pub(super) login: RawLogin,
    #[serde(default)]
    pub(super) ciba: RawCiba,
}

/// `[mpin.ciba]` as written, defaults filled in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCiba {
    #[serde(default = "default_ciba_request_secs")]
    request_secs: u64,
    #[serde(default = "default_ciba_poll_secs")]
    poll_interval_secs: u64,
    #[serde(default = "default_ciba_requests")]
    max_requests: usize,
}

fn default_ciba_request_secs() -> u64 {
    CibaConfig::new().request.as_secs()
}

fn default_ciba_poll_secs() -> u64 {
    CibaConfig::new().poll_interval.as_secs()
}

fn default_ciba_requests() -> usize {
    CibaConfig::new().max_requests
}

impl Default for RawCiba {
    fn default() -> Self {
        Self {
            request_secs: default_ciba_request_secs(),
            poll_interval_secs: default_ciba_poll_secs(),
            max_requests: default_ciba_requests(),
        }
    }
}

impl RawCiba {
    fn check(self) -> Result<CibaConfig, ConfigError> {
        Ok(CibaConfig::with(
            seconds("mpin.ciba.request_secs", self.request_secs, 30, 3600)?,
            seconds(
                "mpin.ciba.poll_interval_secs",
                self.poll_interval_secs,
                1,
                60,
            )?,
            in_range("mpin.ciba.max_requests", self.max_requests, 1..=1_000_000)?,
        ))
    }
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
    pub(super) fn check(self) -> Result<MpinConfig, ConfigError> {
        Ok(MpinConfig {
            min_peer_depth: check_min_depth(self.min_peer_depth)
                .map_err(|_| invalid("mpin.min_peer_depth", "must be between 1 and 1000"))?,
            signin: seconds("mpin.signin_secs", self.signin_secs, 30, 3600)?,
            max_signins: in_range("mpin.max_signins", self.max_signins, 1..=1_000_000)?,
            dtas: check_dtas(self.dtas, DtaKeys::MPIN)?,
            login: self.login.check(LoginKeys::MPIN)?,
            ciba: self.ciba.check()?,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHash {
    pub(super) token_sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRegistration {
    pub(super) initial_access_token_sha256: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawTokens {
    pub(super) code_secs: u64,
    pub(super) access_secs: u64,
    pub(super) id_token_secs: u64,
    pub(super) refresh_secs: u64,
    pub(super) device_code_secs: u64,
    pub(super) device_poll_secs: u64,
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
pub(super) struct RawKeys {
    pub(super) rotation_secs: u64,
    pub(super) prepublish_secs: u64,
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
pub(super) struct RawAudit {
    pub(super) period_secs: u64,
}

impl Default for RawAudit {
    fn default() -> Self {
        Self { period_secs: DAY }
    }
}

/// `value` seconds, within `low..=high`, or an error naming `key`.
pub(super) fn seconds(
    key: &'static str,
    value: u64,
    low: u64,
    high: u64,
) -> Result<Duration, ConfigError> {
    if !(low..=high).contains(&value) {
        return Err(invalid(key, format!("must be between {low} and {high}")));
    }
    Ok(Duration::from_secs(value))
}

pub(super) fn token_hash(key: &'static str, hex: &str) -> Result<TokenHash, ConfigError> {
    TokenHash::from_hex(hex)
        .map_err(|_| invalid(key, "64 hex characters: the SHA-256 of the token"))
}

/// The first-party client ids: at most 1024, each 1 to 128 printable characters.
pub(super) fn first_party(ids: Vec<String>) -> Result<Vec<String>, ConfigError> {
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
