//! Signing in on the web with the device (the "access number" flow): the authorization
//! page shows a QR code and an access number bound to this one authorization request;
//! the person's device (`milagro pat approve`) names the number and runs the two M-Pin
//! passes against the IdP; the page, which polls, then goes on to the client with a
//! code.
//!
//! - [`access_number`]: nine digits with a check digit;
//! - [`table`]: the sign-ins waiting for a device, bounded, with an expiry;
//! - [`MpinSignIn`]: the table, the M-Pin verifier ([`milagro_verifier::Verifier`], the
//!   same code and rules as the authentication server's) and the per-address limit on
//!   failed look-ups of access numbers.
//!
//! The M-Pin identity names the person: only the *current* registered device of a
//! subject finds it ([`crate::devices::Devices::by_mpin_id`]); a replaced or revoked
//! device finds nobody and is refused. The routes are in `api::signin`.
//!
//! What it does not do: the access number is a bearer value for the browser's request
//! while it waits. Whoever sees a page's number (over a shoulder, or a phishing page that
//! relays it) can have their own device approve it and so sign *that* browser in as
//! themselves; it never lets anyone sign in as someone else, and the code goes only to
//! the browser showing the page (by its page handle) and then only to the client's
//! redirect URI with its PKCE verifier. Waiting sign-ins live in one process's memory.

pub mod access_number;
pub mod table;

use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use milagro_service::attempts::FailureLimiter;
use milagro_verifier::Verifier;

use crate::ciba::Ciba;
use crate::config::MpinConfig;

/// Failed look-ups of access numbers (unknown, expired, mistyped) one address may make
/// per [`LOOKUP_WINDOW_SECS`].
pub const LOOKUP_FAILURES: u32 = 10;
/// The window of [`LOOKUP_FAILURES`], in seconds.
pub const LOOKUP_WINDOW_SECS: u64 = 600;
/// Addresses whose failed look-ups are remembered at most.
pub const LOOKUP_ADDRESSES: usize = 10_000;

/// M-Pin sign-in: the verifier, the waiting sign-ins, the look-up limit.
#[derive(Debug)]
pub struct MpinSignIn {
    /// The configuration it was made from.
    pub config: MpinConfig,
    /// The M-Pin verifier (server secret, pending logins, guess counts).
    pub verifier: Verifier,
    table: Mutex<table::Table>,
    /// Failed access-number look-ups per client address (and unknown CIBA login hints).
    pub lookups: FailureLimiter<IpAddr>,
    /// Backchannel authentication requests waiting for a device ([`crate::ciba`]).
    pub ciba: Ciba,
}

impl MpinSignIn {
    /// Sign-in with `verifier`, configured by `config`.
    pub fn new(config: MpinConfig, verifier: Verifier) -> Self {
        Self {
            table: Mutex::new(table::Table::new(
                config.signin.as_secs(),
                config.max_signins,
            )),
            verifier,
            lookups: FailureLimiter::new(LOOKUP_FAILURES, LOOKUP_WINDOW_SECS, LOOKUP_ADDRESSES),
            ciba: Ciba::new(config.ciba),
            config,
        }
    }

    /// The waiting sign-ins, locked.
    pub fn table(&self) -> MutexGuard<'_, table::Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
