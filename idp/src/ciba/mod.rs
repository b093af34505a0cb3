//! Signing in without a browser: OpenID Connect Client-Initiated Backchannel
//! Authentication (CIBA Core 1.0), poll mode. A relying party asks the IdP, at
//! `POST /bc-authorize`, to authenticate a person it names (`login_hint`); the person's
//! registered device lists the requests waiting for them (a DPoP proof by the device's
//! registered key) and approves one with the same two M-Pin passes as a sign-in on the
//! web, or denies it; the client polls the token endpoint with its `auth_req_id`
//! (`urn:openid:params:grant-type:ciba`) and gets tokens once approved (ADR 0019).
//!
//! - [`table`]: the requests waiting, bounded per client, per person and overall;
//! - [`Ciba`]: the table and its configuration (`[mpin.ciba]`), part of
//!   [`crate::signin::MpinSignIn`]: without `[mpin]` there is no CIBA;
//! - [`check_binding_message`], [`lifetime`]: the pure checks of the request's
//!   parameters.
//!
//! Only the device registered for the hinted subject ([`crate::devices`]) may approve:
//! the M-Pin identity that proves must be that subject's current registration. The
//! routes are in `api::ciba`.

pub mod table;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The grant type of the token request (CIBA §10.1).
pub use crate::clients::GRANT_CIBA;

/// The one token delivery mode served (CIBA §5): the client polls.
pub const DELIVERY_POLL: &str = "poll";

/// The longest binding message accepted, in characters: what a device screen shows on a
/// line or two (CIBA §7.1 asks for a "relatively small" one).
pub const MAX_BINDING_MESSAGE: usize = 64;

/// `[mpin.ciba]`: how long a backchannel authentication request waits for the person's
/// device, how often the client may poll, and how many wait at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CibaConfig {
    /// The lifetime of a request, and the most a client's `requested_expiry` gets.
    pub request: Duration,
    /// The least seconds between two polls of one request (`interval`).
    pub poll_interval: Duration,
    /// Requests waiting at most (beyond: refused with `slow_down`).
    pub max_requests: usize,
}

impl CibaConfig {
    /// The defaults: 300 s, 5 s, 10,000.
    pub const fn new() -> Self {
        Self {
            request: Duration::from_secs(300),
            poll_interval: Duration::from_secs(5),
            max_requests: 10_000,
        }
    }

    /// With the given values (already checked by the configuration parser).
    pub const fn with(request: Duration, poll_interval: Duration, max_requests: usize) -> Self {
        Self {
            request,
            poll_interval,
            max_requests,
        }
    }
}

impl Default for CibaConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// The backchannel authentication requests of this IdP.
#[derive(Debug)]
pub struct Ciba {
    /// The configuration.
    pub config: CibaConfig,
    table: Mutex<table::Table>,
}

impl Ciba {
    /// An empty table configured by `config`.
    pub fn new(config: CibaConfig) -> Self {
        Self {
            table: Mutex::new(table::Table::new(
                config.poll_interval.as_secs(),
                config.max_requests,
            )),
            config,
        }
    }

    /// The requests, locked.
    pub fn table(&self) -> MutexGuard<'_, table::Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a request parameter is refused (each names its CIBA §13 error code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadParameter {
    /// `invalid_binding_message`.
    #[error("the binding_message must be 1 to {MAX_BINDING_MESSAGE} printable characters")]
    BindingMessage,
    /// `invalid_request`: `requested_expiry` is not a positive whole number of seconds.
    #[error("requested_expiry must be a positive whole number of seconds")]
    RequestedExpiry,
}

impl BadParameter {
    /// The CIBA §13 error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BindingMessage => "invalid_binding_message",
            Self::RequestedExpiry => "invalid_request",
        }
    }
}

/// A binding message the device can show as it is: 1 to [`MAX_BINDING_MESSAGE`]
/// characters, none a control character (no line breaks or escapes to spoof the
/// device's own text with).
pub fn check_binding_message(message: &str) -> Result<(), BadParameter> {
    let count = message.chars().count();
    if (1..=MAX_BINDING_MESSAGE).contains(&count) && !message.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(BadParameter::BindingMessage)
    }
}

/// The lifetime of a request asking for `requested` seconds (`requested_expiry`, CIBA
/// §7.1), at most `most`: a client may ask for less than the configured lifetime, never
/// more (more is cut to it, as the answer's `expires_in` tells).
pub fn lifetime(requested: Option<&str>, most: u64) -> Result<u64, BadParameter> {
    let Some(text) = requested else {
        return Ok(most);
    };
    let seconds: u64 = text
        .parse()
        .ok()
        .filter(|&s| s > 0 && text.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(BadParameter::RequestedExpiry)?;
    Ok(seconds.min(most))
}

#[cfg(test)]
mod tests;
