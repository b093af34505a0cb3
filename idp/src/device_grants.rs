//! The device authorization grant's state (RFC 8628), in the `devices` tree.
//!
//! A device asks for a *device code* (secret, 256 bits, stored as its SHA-256) and a
//! *user code* (8 letters from the 20 consonants RFC 8628 §6.1 suggests, about 34.6 bits,
//! shown as `BCDF-GHJK`), which the person types on the verification page. The device
//! polls; each poll answers `authorization_pending`, `slow_down` (polled faster than the
//! interval), `access_denied`, `expired_token`, or the approval, once.
//!
//! Guessing a user code is bounded three ways. The verification page checks the person's
//! credentials before it looks at the code and answers a wrong password the same way
//! whether the code is live or not, so without an account nothing is learned. Each client
//! address gets [`DEVICE_FAILURES_PER_ADDRESS`] failed attempts per
//! [`DEVICE_FAILURE_WINDOW_SECS`] (429 beyond). And a live code that failed
//! [`MAX_FAILURES_PER_CODE`] times is denied: its device is told `access_denied` and
//! starts again.
//!
//! A person whose password and code were right is not taken at their word yet: the page
//! shows which client asks ([`DeviceGrants::await_consent`]) and the person allows or
//! denies it with a one-time consent token ([`DeviceGrants::consent`]) that only the page
//! shown to them holds (RFC 8628 §5.4: someone who sends a victim a code started for
//! their own client is then seen for what it is).
//!
//! Rows: `d\0 ‖ SHA-256(device code)` → JSON [`DeviceRow`]; `u\0 ‖ user code` → that
//! hash.

use rand_core::RngCore as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::clients::random_token;
use crate::grants::{hashed, update};
use crate::oauth::OAuthError;

const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Failed approvals (wrong credentials or code) one client address may make per window.
pub const DEVICE_FAILURES_PER_ADDRESS: u32 = 10;
/// The window of [`DEVICE_FAILURES_PER_ADDRESS`], in seconds.
pub const DEVICE_FAILURE_WINDOW_SECS: u64 = 600;
/// Client addresses whose failures are tracked at most (bounded memory).
pub const DEVICE_ADDRESSES_TRACKED: usize = 100_000;
/// Failed approvals of one live code before it is denied.
pub const MAX_FAILURES_PER_CODE: u32 = 5;
/// How long a person has to allow or deny a client once shown it, in seconds.
pub const CONSENT_SECS: u64 = 300;

/// Where a device authorization stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// Waiting for the person.
    Pending,
    /// Approved by the user `subject`, who authenticated at `auth_time`.
    Approved {
        /// The user.
        subject: String,
        /// When they logged in.
        auth_time: u64,
    },
    /// The person refused.
    Denied,
    /// Tokens were issued; the code is spent.
    Redeemed,
}

/// A device authorization as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRow {
    /// The client that asked.
    pub client_id: String,
    /// Requested scopes.
    pub scope: String,
    /// The user code, normalised (8 letters).
    pub user_code: String,
    /// Expiry (Unix seconds).
    pub expires: u64,
    /// Least seconds between polls.
    pub interval: u64,
    /// The last poll (Unix seconds).
    pub last_poll: Option<u64>,
    /// Where it stands.
    pub state: DeviceState,
    /// Failed approvals typed with this code (rows written before the count read as 0).
    #[serde(default)]
    pub failures: u32,
    /// The person who proved who they are and is being shown the client, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Consent>,
}

/// A consent being asked: who authenticated, and the hash of the one-time token the page
/// shown to them posts back with their choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// The user.
    pub subject: String,
    /// When they logged in.
    pub auth_time: u64,
    /// SHA-256 of the consent token.
    pub token_sha256: [u8; 32],
    /// Until when the choice may be made (Unix seconds).
    pub expires: u64,
}

/// A new device authorization, as returned to the device.
#[derive(Debug)]
pub struct Started {
    /// The device code (secret).
    pub device_code: Zeroizing<String>,
    /// The user code, formatted `XXXX-XXXX`.
    pub user_code: String,
}

/// Normalises what a person typed: letters upper-cased, dashes and spaces dropped.
pub fn normalise_user_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == 8 && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// The `devices` tree.
#[derive(Debug, Clone)]
pub struct DeviceGrants {
    tree: sled::Tree,
}

fn device_key(device_code: &str) -> Vec<u8> {
    [&b"d\0"[..], &hashed(device_code)].concat()
}

impl DeviceGrants {
    /// Opens the tree in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        Ok(Self {
            tree: db.open_tree("devices")?,
        })
    }

    /// Starts an authorization for `client_id`.
    pub fn start(
        &self,
        client_id: &str,
        scope: &str,
        expires: u64,
        interval: u64,
    ) -> Result<Started, OAuthError> {
        let device_code = random_token(32);
        let key = device_key(&device_code);
        for _ in 0..8 {
            let mut raw = [0u8; 8];
            rand_core::OsRng.fill_bytes(&mut raw);
            let user_code: String = raw
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
                .collect();
            let row = DeviceRow {
                client_id: client_id.to_owned(),
                scope: scope.to_owned(),
                user_code: user_code.clone(),
                expires,
                interval,
                last_poll: None,
                state: DeviceState::Pending,
                failures: 0,
                consent: None,
            };
            let json = serde_json::to_vec(&row).map_err(OAuthError::internal)?;
            let user_key = [b"u\0", user_code.as_bytes()].concat();
            // A user code is unique among live ones; a clash (rare) draws another.
            let claimed = self
                .tree
                .compare_and_swap(&user_key, None as Option<&[u8]>, Some(key.as_slice()))
                .map_err(OAuthError::internal)?;
            if claimed.is_ok() {
                self.tree.insert(&key, json).map_err(OAuthError::internal)?;
                self.tree.flush().map_err(OAuthError::internal)?;
                let shown = format!("{}-{}", &user_code[..4], &user_code[4..]);
                return Ok(Started {
                    device_code,
                    user_code: shown,
                });
            }
        }
        Err(OAuthError::internal("no free user code"))
    }

    /// The pending authorization a person typed the code of, if it is live.
    pub fn pending(
        &self,
        user_code: &str,
        now: u64,
    ) -> Result<Option<(Vec<u8>, DeviceRow)>, OAuthError> {
        let Some(user_code) = normalise_user_code(user_code) else {
            return Ok(None);
        };
        let Some(key) = self
            .tree
            .get([b"u\0", user_code.as_bytes()].concat())
            .map_err(OAuthError::internal)?
        else {
            return Ok(None);
        };
        let Some(bytes) = self.tree.get(&key).map_err(OAuthError::internal)? else {
            return Ok(None);
        };
        let row: DeviceRow = serde_json::from_slice(&bytes).map_err(OAuthError::internal)?;
        Ok((row.state == DeviceState::Pending && now < row.expires).then(|| (key.to_vec(), row)))
    }

    /// Counts a failed approval typed with a live code; at [`MAX_FAILURES_PER_CODE`] the
    /// authorization is denied. Returns whether it was.
    pub fn failed_approval(&self, key: &[u8], now: u64) -> Result<bool, OAuthError> {
        update(&self.tree, key, |row: Option<DeviceRow>| {
            let Some(mut row) = row.filter(|r| r.state == DeviceState::Pending && now < r.expires)
            else {
                return Ok((None, false));
            };
            row.failures = row.failures.saturating_add(1);
            let denied = row.failures >= MAX_FAILURES_PER_CODE;
            if denied {
                row.state = DeviceState::Denied;
            }
            Ok((Some(row), denied))
        })
    }

    /// The person `subject` (who logged in at `auth_time`) proved who they are for the
    /// pending authorization at `key`: they are shown its client, and the returned token
    /// (secret, 256 bits) posts their choice to [`Self::consent`].
    pub fn await_consent(
        &self,
        key: &[u8],
        subject: &str,
        auth_time: u64,
        now: u64,
    ) -> Result<Zeroizing<String>, OAuthError> {
        let token = random_token(32);
        let token_sha256 = hashed(&token);
        update(&self.tree, key, |row: Option<DeviceRow>| {
            let Some(mut row) = row.filter(|r| r.state == DeviceState::Pending && now < r.expires)
            else {
                return Err(OAuthError::invalid_request("the code is no longer pending"));
            };
            row.consent = Some(Consent {
                subject: subject.to_owned(),
                auth_time,
                token_sha256,
                expires: now.saturating_add(CONSENT_SECS).min(row.expires),
            });
            Ok((Some(row), ()))
        })?;
        Ok(token)
    }

    /// The person's choice on the client shown for `user_code`, posted with the consent
    /// `token`: the authorization is approved for them (`allow`) or denied. `None` when
    /// the code is not pending, no consent is asked, it lapsed, or the token is not its
    /// own (compared in constant time).
    pub fn consent(
        &self,
        user_code: &str,
        token: &str,
        allow: bool,
        now: u64,
    ) -> Result<Option<DeviceState>, OAuthError> {
        let Some((key, _)) = self.pending(user_code, now)? else {
            return Ok(None);
        };
        let presented = hashed(token);
        update(&self.tree, &key, |row: Option<DeviceRow>| {
            let Some(mut row) = row.filter(|r| r.state == DeviceState::Pending && now < r.expires)
            else {
                return Ok((None, None));
            };
            let Some(consent) = row
                .consent
                .clone()
                .filter(|c| now < c.expires && bool::from(c.token_sha256.ct_eq(&presented)))
            else {
                return Ok((None, None));
            };
            row.state = if allow {
                DeviceState::Approved {
                    subject: consent.subject,
                    auth_time: consent.auth_time,
                }
            } else {
                DeviceState::Denied
            };
            row.consent = None;
            let decided = row.state.clone();
            Ok((Some(row), Some(decided)))
        })
    }

    /// Records the person's decision on a pending authorization.
    pub fn decide(&self, key: &[u8], decision: DeviceState, now: u64) -> Result<(), OAuthError> {
        update(&self.tree, key, |row: Option<DeviceRow>| {
            let Some(mut row) = row.filter(|r| r.state == DeviceState::Pending && now < r.expires)
            else {
                return Err(OAuthError::invalid_request("the code is no longer pending"));
            };
            row.state = decision.clone();
            Ok((Some(row), ()))
        })
    }

    /// A poll by the device: the approved row once, or the RFC 8628 §3.5 error.
    pub fn poll(
        &self,
        device_code: &str,
        client_id: &str,
        now: u64,
    ) -> Result<DeviceRow, OAuthError> {
        update(
            &self.tree,
            &device_key(device_code),
            |row: Option<DeviceRow>| {
                let Some(mut row) = row.filter(|r| r.client_id == client_id) else {
                    return Err(OAuthError::invalid_grant("unknown device code"));
                };
                if now >= row.expires {
                    return Err(OAuthError::bad_request(
                        "expired_token",
                        "the device code has expired",
                    ));
                }
                let too_soon = row
                    .last_poll
                    .is_some_and(|last| now < last.saturating_add(row.interval));
                row.last_poll = Some(now);
                let answer = match &row.state {
                    DeviceState::Pending if too_soon => Err(OAuthError::bad_request(
                        "slow_down",
                        "polling faster than the interval; wait 5 more seconds each time",
                    )),
                    DeviceState::Pending => Err(OAuthError::bad_request(
                        "authorization_pending",
                        "the user has not answered yet",
                    )),
                    DeviceState::Denied => {
                        Err(OAuthError::bad_request("access_denied", "the user refused"))
                    }
                    DeviceState::Redeemed => Err(OAuthError::invalid_grant(
                        "the device code was already used",
                    )),
                    DeviceState::Approved { .. } => Ok(row.clone()),
                };
                if answer.is_ok() {
                    row.state = DeviceState::Redeemed;
                } else if too_soon {
                    // RFC 8628 §3.5: every slow_down adds 5 seconds to the interval.
                    row.interval = row.interval.saturating_add(5);
                }
                Ok((Some(row), answer))
            },
        )?
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_device_polls_until_the_person_approves_then_gets_it_once() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let devices = DeviceGrants::open(&db).unwrap();
        let started = devices.start("tv", "openid", 100, 5).unwrap();
        let code = started.device_code.as_str();
        assert_eq!(
            devices.poll(code, "tv", 0).unwrap_err().code(),
            "authorization_pending"
        );
        assert_eq!(devices.poll(code, "tv", 1).unwrap_err().code(), "slow_down");
        assert_eq!(
            devices.poll(code, "other", 20).unwrap_err().code(),
            "invalid_grant"
        );
        let typed = started.user_code.to_lowercase().replace('-', " ");
        let (key, row) = devices.pending(&typed, 20).unwrap().unwrap();
        assert_eq!(row.client_id, "tv");
        let approved = DeviceState::Approved {
            subject: "alice".into(),
            auth_time: 20,
        };
        devices.decide(&key, approved.clone(), 20).unwrap();
        assert_eq!(devices.poll(code, "tv", 30).unwrap().state, approved);
        assert_eq!(
            devices.poll(code, "tv", 40).unwrap_err().code(),
            "invalid_grant"
        );
        assert!(devices.pending(&started.user_code, 41).unwrap().is_none());
        assert_eq!(
            devices.poll(code, "tv", 100).unwrap_err().code(),
            "expired_token"
        );
    }

    #[test]
    fn a_client_is_approved_only_with_the_consent_token_of_the_person_shown_it() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let devices = DeviceGrants::open(&db).unwrap();
        let started = devices.start("tv", "openid", 1000, 5).unwrap();
        let code = started.device_code.as_str();
        let (key, _) = devices.pending(&started.user_code, 10).unwrap().unwrap();
        // No consent asked yet: no token counts.
        assert_eq!(
            devices.consent(&started.user_code, "x", true, 10).unwrap(),
            None
        );
        let token = devices.await_consent(&key, "alice", 10, 10).unwrap();
        // Still pending for the device while the person decides.
        assert_eq!(
            devices.poll(code, "tv", 11).unwrap_err().code(),
            "authorization_pending"
        );
        assert_eq!(
            devices
                .consent(&started.user_code, "not the token", true, 12)
                .unwrap(),
            None
        );
        // Lapsed.
        assert_eq!(
            devices
                .consent(&started.user_code, &token, true, 10 + CONSENT_SECS)
                .unwrap(),
            None
        );
        let approved = DeviceState::Approved {
            subject: "alice".into(),
            auth_time: 10,
        };
        assert_eq!(
            devices
                .consent(&started.user_code, &token, true, 20)
                .unwrap(),
            Some(approved.clone())
        );
        // Once only.
        assert_eq!(
            devices
                .consent(&started.user_code, &token, true, 21)
                .unwrap(),
            None
        );
        assert_eq!(devices.poll(code, "tv", 30).unwrap().state, approved);

        // Denying tells the device so.
        let other = devices.start("tv", "openid", 1000, 5).unwrap();
        let (key, _) = devices.pending(&other.user_code, 10).unwrap().unwrap();
        let token = devices.await_consent(&key, "alice", 10, 10).unwrap();
        assert_eq!(
            devices
                .consent(&other.user_code, &token, false, 20)
                .unwrap(),
            Some(DeviceState::Denied)
        );
        assert_eq!(
            devices
                .poll(other.device_code.as_str(), "tv", 30)
                .unwrap_err()
                .code(),
            "access_denied"
        );
    }

    #[test]
    fn user_codes_are_normalised_and_checked() {
        assert_eq!(
            normalise_user_code("bcdf-ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(normalise_user_code("BCDF GHJ"), None);
        assert_eq!(normalise_user_code("AEIO-UBCD"), None);
    }
}
