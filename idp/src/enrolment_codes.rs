//! One-time codes that prove a person controls an e-mail address, so that a device can be
//! registered for them without any password (issue 15, item 1), in the `enrolment_codes`
//! tree.
//!
//! Two kinds, both typed on the device verification page (`/device`) together with the
//! address and the device's user code:
//!
//! - an **e-mailed code** ([`EnrolmentCodes::issue_mail_code`]): 8 digits the IdP sends to
//!   the address ([`crate::mail`]), bound to one device authorization (the key of its row in
//!   [`crate::device_grants`]) and to the address, living [`EnrolmentConfig::mail_code`];
//!   [`MAX_CODE_FAILURES`] wrong tries kill it (so a guess succeeds with probability
//!   5 · 10⁻⁸ per code sent, and sending is rate-limited per address and per client);
//! - an **activation code** ([`EnrolmentCodes::issue_activation_code`]) the operator asks for
//!   through the admin API and hands to the person: 128 random bits, bound to the address,
//!   living [`EnrolmentConfig::activation_code`].
//!
//! Only SHA-256 digests of codes and addresses are stored, compared in constant time;
//! each code is removed when it is used. The tree holds at most [`MAX_CODES`] live codes of
//! each kind: rows are counted, expired ones are swept when a kind reaches that count, and
//! beyond it the issue is refused (503), so no caller can grow the table without bound and
//! issuing costs no scan until then.
//!
//! Rows: `a\0 ‖ SHA-256(activation code)` → JSON [`ActivationRow`];
//! `m\0 ‖ device authorization key` → JSON [`MailRow`].

use std::sync::atomic::{AtomicUsize, Ordering};

use milagro_service::attempts::FailureLimiter;
use rand_core::RngCore as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use crate::clients::random_token;
use crate::grants::{hashed, update};
use crate::oauth::OAuthError;
use crate::users::email_domain;

/// Wrong tries of one e-mailed code before it is dead.
pub const MAX_CODE_FAILURES: u32 = 5;
/// Live codes of each kind the tree holds at most.
pub const MAX_CODES: usize = 100_000;
/// Digits of an e-mailed code.
pub const MAIL_CODE_DIGITS: usize = 8;

/// E-mails one e-mail address may be sent per window.
pub const SENDS_PER_EMAIL: u32 = 3;
/// E-mails one client address may cause per window (more than per e-mail address: one
/// address may stand for many people behind a NAT).
pub const SENDS_PER_ADDRESS: u32 = 10;
/// The window of [`SENDS_PER_EMAIL`] and [`SENDS_PER_ADDRESS`], in seconds.
pub const SEND_WINDOW_SECS: u64 = 900;

/// What the device page needs to register people without a password.
#[derive(Debug)]
pub struct Enrolment {
    /// The codes.
    pub codes: EnrolmentCodes,
    /// The SMTP sender, if `[smtp]` is configured.
    pub mailer: Option<crate::mail::Mailer>,
    /// Codes sent per client address ([`SENDS_PER_ADDRESS`] per [`SEND_WINDOW_SECS`]).
    pub sends_per_address: FailureLimiter<std::net::IpAddr>,
    /// Codes sent per e-mail address ([`SENDS_PER_EMAIL`]), keyed by its SHA-256 (never
    /// the address itself).
    pub sends_per_email: FailureLimiter<[u8; 32]>,
}

/// `[enrolment]`: who may register without a password, and how long codes live.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnrolmentConfig {
    /// Domains whose addresses may register themselves with an e-mailed code (lowercase).
    /// Others register only with an operator's activation code (or already exist).
    pub allowed_domains: Vec<String>,
    /// How long an e-mailed code lives.
    pub mail_code: std::time::Duration,
    /// How long an activation code lives.
    pub activation_code: std::time::Duration,
}

impl Default for EnrolmentConfig {
    fn default() -> Self {
        Self {
            allowed_domains: Vec::new(),
            mail_code: std::time::Duration::from_secs(600),
            activation_code: std::time::Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl EnrolmentConfig {
    /// Whether an address of this (normalised) e-mail's domain may register itself.
    pub fn self_registers(&self, email: &str) -> bool {
        let domain = email_domain(email);
        self.allowed_domains.iter().any(|d| d == domain)
    }
}

/// An operator's activation code as stored (under its hash).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationRow {
    /// SHA-256 of the normalised address it was issued for.
    pub email_sha256: [u8; 32],
    /// Expiry (Unix seconds).
    pub expires: u64,
}

/// An e-mailed code as stored (under its device authorization).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailRow {
    /// SHA-256 of the normalised address it was sent to.
    pub email_sha256: [u8; 32],
    /// SHA-256 of the code.
    pub code_sha256: [u8; 32],
    /// Expiry (Unix seconds).
    pub expires: u64,
    /// Wrong tries so far.
    pub failures: u32,
}

/// What checking an e-mailed code came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Right: the code is spent.
    Accepted,
    /// Wrong, unknown, expired, for another address or another authorization.
    Refused,
}

/// The `enrolment_codes` tree.
#[derive(Debug, Clone)]
pub struct EnrolmentCodes {
    tree: sled::Tree,
    /// Rows of each kind ([`ACTIVATION`], [`MAIL`]), counted at open and kept as rows
    /// come and go (a row that expires unseen is counted until the next sweep recounts):
    /// so that issuing a code costs a scan only when the kind looks full.
    rows: std::sync::Arc<[AtomicUsize; 2]>,
}

/// The activation codes' prefix and counter index.
const ACTIVATION: (&[u8], usize) = (b"a\0", 0);
/// The e-mailed codes' prefix and counter index.
const MAIL: (&[u8], usize) = (b"m\0", 1);

fn email_hash(email: &str) -> [u8; 32] {
    hashed(email)
}

fn mail_key(device_key: &[u8]) -> Vec<u8> {
    [&b"m\0"[..], device_key].concat()
}

fn storage(e: impl std::fmt::Display) -> OAuthError {
    OAuthError::internal(e.to_string())
}

impl EnrolmentCodes {
    /// Opens the tree in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        let tree = db.open_tree("enrolment_codes")?;
        let count = |prefix: &[u8]| AtomicUsize::new(tree.scan_prefix(prefix).count());
        let rows = std::sync::Arc::new([count(ACTIVATION.0), count(MAIL.0)]);
        Ok(Self { tree, rows })
    }

    fn added(&self, (_, kind): (&[u8], usize)) {
        self.rows[kind].fetch_add(1, Ordering::Relaxed);
    }

    fn removed(&self, (_, kind): (&[u8], usize)) {
        let _ = self.rows[kind].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            Some(n.saturating_sub(1))
        });
    }

    /// Makes room for one more code of a kind: when it looks full, sweeps its expired rows
    /// (and recounts), and refuses (503) if it still is full.
    fn make_room(&self, (prefix, kind): (&[u8], usize), now: u64) -> Result<(), OAuthError> {
        if self.rows[kind].load(Ordering::Relaxed) < MAX_CODES {
            return Ok(());
        }
        let mut live = 0usize;
        for entry in self.tree.scan_prefix(prefix) {
            let (key, value) = entry.map_err(storage)?;
            let expires = serde_json::from_slice::<serde_json::Value>(&value)
                .ok()
                .and_then(|row| row["expires"].as_u64())
                .unwrap_or(0);
            if expires <= now {
                self.tree.remove(key).map_err(storage)?;
            } else {
                live += 1;
            }
        }
        self.rows[kind].store(live, Ordering::Relaxed);
        if live >= MAX_CODES {
            return Err(OAuthError::with_status(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "too many enrolment codes are live; try again later",
            ));
        }
        Ok(())
    }

    /// A new activation code for the normalised `email`, expiring at `expires`: returned
    /// once, stored only as its hash.
    pub fn issue_activation_code(
        &self,
        email: &str,
        now: u64,
        expires: u64,
    ) -> Result<Zeroizing<String>, OAuthError> {
        self.make_room(ACTIVATION, now)?;
        let code = random_token(16);
        let row = ActivationRow {
            email_sha256: email_hash(email),
            expires,
        };
        let key = [&b"a\0"[..], &hashed(&code)].concat();
        let json = serde_json::to_vec(&row).map_err(storage)?;
        self.tree.insert(key, json).map_err(storage)?;
        self.added(ACTIVATION);
        self.tree.flush().map_err(storage)?;
        Ok(code)
    }

    /// Spends the activation code `code` if it is live and was issued for the normalised
    /// `email` (compared in constant time). A code typed with the wrong address is not
    /// spent: the address is part of what must be known.
    pub fn redeem_activation_code(
        &self,
        email: &str,
        code: &str,
        now: u64,
    ) -> Result<Checked, OAuthError> {
        let key = [&b"a\0"[..], &hashed(code.trim())].concat();
        let presented = email_hash(email);
        update(&self.tree, &key, |row: Option<ActivationRow>| {
            let Some(row) = row.filter(|r| now < r.expires) else {
                return Ok((None, Checked::Refused));
            };
            if bool::from(row.email_sha256.ct_eq(&presented)) {
                Ok((None, Checked::Accepted))
            } else {
                Ok((Some(row), Checked::Refused))
            }
        })
        .and_then(|checked| {
            if checked == Checked::Accepted {
                self.tree.remove(&key).map_err(storage)?;
                self.removed(ACTIVATION);
                self.tree.flush().map_err(storage)?;
            }
            Ok(checked)
        })
    }

    /// A new e-mailed code for the device authorization at `device_key` and the normalised
    /// `email`, replacing any earlier one of that authorization (a resend, or another
    /// address typed: only the newest counts).
    pub fn issue_mail_code(
        &self,
        device_key: &[u8],
        email: &str,
        now: u64,
        expires: u64,
    ) -> Result<Zeroizing<String>, OAuthError> {
        self.make_room(MAIL, now)?;
        let mut raw = [0u8; 8];
        rand_core::OsRng.fill_bytes(&mut raw);
        // u64 mod 10⁸: the bias is below 10⁻¹⁰, far under one guess in the few allowed.
        let value = u64::from_be_bytes(raw) % 10u64.pow(MAIL_CODE_DIGITS as u32);
        let code = Zeroizing::new(format!("{value:0width$}", width = MAIL_CODE_DIGITS));
        let row = MailRow {
            email_sha256: email_hash(email),
            code_sha256: hashed(&code),
            expires,
            failures: 0,
        };
        let json = serde_json::to_vec(&row).map_err(storage)?;
        let replaced = self
            .tree
            .insert(mail_key(device_key), json)
            .map_err(storage)?;
        if replaced.is_none() {
            self.added(MAIL);
        }
        self.tree.flush().map_err(storage)?;
        Ok(code)
    }

    /// Checks an e-mailed code typed for the device authorization at `device_key` with the
    /// normalised `email`: accepted once if both match (constant time) and it is live; a
    /// wrong try counts, and the [`MAX_CODE_FAILURES`]th kills the code.
    pub fn check_mail_code(
        &self,
        device_key: &[u8],
        email: &str,
        code: &str,
        now: u64,
    ) -> Result<Checked, OAuthError> {
        let typed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let (code_sha256, email_sha256) = (hashed(&typed), email_hash(email));
        let key = mail_key(device_key);
        let checked = update(&self.tree, &key, |row: Option<MailRow>| {
            let Some(mut row) = row.filter(|r| now < r.expires) else {
                return Ok((None, Checked::Refused));
            };
            let right = row.code_sha256.ct_eq(&code_sha256) & row.email_sha256.ct_eq(&email_sha256);
            if bool::from(right) {
                return Ok((None, Checked::Accepted));
            }
            row.failures = row.failures.saturating_add(1);
            Ok((Some(row), Checked::Refused))
        })?;
        // Spent on success; dead after too many failures or once expired.
        let remove = match checked {
            Checked::Accepted => true,
            Checked::Refused => match self.tree.get(&key).map_err(storage)? {
                Some(bytes) => serde_json::from_slice::<MailRow>(&bytes).map_or(true, |row| {
                    row.failures >= MAX_CODE_FAILURES || now >= row.expires
                }),
                None => false,
            },
        };
        if remove {
            self.tree.remove(&key).map_err(storage)?;
            self.removed(MAIL);
            self.tree.flush().map_err(storage)?;
        }
        Ok(checked)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn codes() -> EnrolmentCodes {
        let db = sled::Config::new().temporary(true).open().unwrap();
        EnrolmentCodes::open(&db).unwrap()
    }

    #[test]
    fn an_activation_code_is_spent_once_and_only_with_its_address() {
        let codes = codes();
        let code = codes.issue_activation_code("a@x.org", 10, 100).unwrap();
        assert_eq!(
            codes.redeem_activation_code("b@x.org", &code, 11).unwrap(),
            Checked::Refused
        );
        assert_eq!(
            codes
                .redeem_activation_code("a@x.org", "guess", 11)
                .unwrap(),
            Checked::Refused
        );
        assert_eq!(
            codes.redeem_activation_code("a@x.org", &code, 11).unwrap(),
            Checked::Accepted
        );
        assert_eq!(
            codes.redeem_activation_code("a@x.org", &code, 12).unwrap(),
            Checked::Refused
        );
        let late = codes.issue_activation_code("a@x.org", 10, 100).unwrap();
        assert_eq!(
            codes.redeem_activation_code("a@x.org", &late, 100).unwrap(),
            Checked::Refused
        );
    }

    #[test]
    fn a_mailed_code_belongs_to_one_authorization_and_dies_after_failures() {
        let codes = codes();
        let code = codes.issue_mail_code(b"d1", "a@x.org", 10, 100).unwrap();
        assert_eq!(code.len(), MAIL_CODE_DIGITS);
        for (device, email) in [(&b"d2"[..], "a@x.org"), (b"d1", "b@x.org")] {
            assert_eq!(
                codes.check_mail_code(device, email, &code, 11).unwrap(),
                Checked::Refused
            );
        }
        assert_eq!(
            codes.check_mail_code(b"d1", "a@x.org", &code, 11).unwrap(),
            Checked::Accepted
        );
        assert_eq!(
            codes.check_mail_code(b"d1", "a@x.org", &code, 12).unwrap(),
            Checked::Refused,
            "spent"
        );

        let code = codes.issue_mail_code(b"d1", "a@x.org", 20, 100).unwrap();
        for _ in 0..MAX_CODE_FAILURES {
            let wrong = if code.as_str() == "00000000" {
                "11111111"
            } else {
                "00000000"
            };
            codes.check_mail_code(b"d1", "a@x.org", wrong, 21).unwrap();
        }
        assert_eq!(
            codes.check_mail_code(b"d1", "a@x.org", &code, 22).unwrap(),
            Checked::Refused,
            "dead after {MAX_CODE_FAILURES} failures"
        );

        let code = codes.issue_mail_code(b"d1", "a@x.org", 30, 40).unwrap();
        assert_eq!(
            codes.check_mail_code(b"d1", "a@x.org", &code, 40).unwrap(),
            Checked::Refused,
            "expired"
        );
    }

    #[test]
    fn a_full_kind_sweeps_its_expired_rows_and_refuses_when_still_full() {
        let codes = codes();
        // Pretend the kind is full: the sweep recounts and finds the one live row.
        codes.issue_mail_code(b"d1", "a@x.org", 10, 20).unwrap();
        codes.rows[MAIL.1].store(MAX_CODES, Ordering::Relaxed);
        codes.issue_mail_code(b"d2", "a@x.org", 30, 40).unwrap();
        assert_eq!(
            codes.rows[MAIL.1].load(Ordering::Relaxed),
            1,
            "d1 swept, d2 added"
        );
        assert_eq!(codes.tree.scan_prefix(MAIL.0).count(), 1);
        // Truly full of live rows: refused.
        for n in 0..MAX_CODES {
            codes
                .tree
                .insert(mail_key(&n.to_be_bytes()), &br#"{"expires":99}"#[..])
                .unwrap();
        }
        codes.rows[MAIL.1].store(MAX_CODES, Ordering::Relaxed);
        assert!(codes.issue_mail_code(b"d3", "a@x.org", 31, 40).is_err());
    }

    #[test]
    fn self_registration_follows_the_domains() {
        let config = EnrolmentConfig {
            allowed_domains: vec!["x.org".into()],
            ..EnrolmentConfig::default()
        };
        assert!(config.self_registers("a@x.org"));
        assert!(!config.self_registers("a@y.org"));
        assert!(!config.self_registers("a@sub.x.org"));
    }
}
