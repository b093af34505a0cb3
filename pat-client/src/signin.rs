//! Approving a sign-in on the web from the device (the IdP's access-number flow): the
//! person reads the access number off the sign-in page (or scans its QR code, which
//! carries the URL of [`lookup`]), the device shows which client asks, then runs the two
//! M-Pin passes against the IdP for that very request ([`approve`]), with the same code
//! as a login at the authentication server ([`crate::authenticate::two_passes`]).
//!
//! Refusals are [`Error::Server`] with the IdP's code: `invalid_grant` (no sign-in waits
//! under the number, or it is already approved), `expired_token`, `access_denied` (this
//! device is no longer the person's registered device), `login_refused` (wrong PIN),
//! `too_many_attempts`, `identity_blocked`, `permit_expired`, `not_ready`.

use milagro_mpin::wire::{CommitRequest, ProveRequest};
use milagro_mpin::Pin;
use milagro_wire::signin::{SigninApproved, SigninCommit, SigninProve, SigninRequest};

use crate::authenticate::two_passes;
use crate::error::{Error, Step};
use crate::http::ServiceClient;
use crate::mpin_key::MpinKey;

/// The path that names the request behind an access number.
pub const REQUEST_PATH: &str = "/v1/signin/request";
/// The path of pass 1.
pub const COMMIT_PATH: &str = "/v1/signin/commit";
/// The path of pass 2.
pub const PROVE_PATH: &str = "/v1/signin/prove";

/// Where to approve: the IdP, and the access number as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The IdP's base URL (its issuer).
    pub idp: String,
    /// The access number (digits; spaces and dashes are the IdP's to ignore).
    pub access_number: String,
}

impl Approval {
    /// The approval a QR code's `url` names
    /// (`<issuer>/v1/signin/request?access_number=N`), if it is one.
    pub fn from_url(url: &str) -> Option<Self> {
        let (base, query) = url.split_once('?')?;
        let idp = base.strip_suffix(REQUEST_PATH)?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
        let access_number = pairs
            .into_iter()
            .find_map(|(key, value)| (key == "access_number").then_some(value))?;
        Some(Self {
            idp: idp.to_owned(),
            access_number,
        })
    }
}

/// The request behind `access_number` at the IdP `idp` (which client asks, for what).
pub fn lookup(idp: &ServiceClient, access_number: &str) -> Result<SigninRequest, Error> {
    let query = serde_urlencoded::to_string([("access_number", access_number)])
        .map_err(|e| Error::unexpected(Step::SignIn, e))?;
    idp.get(Step::SignIn, &format!("{REQUEST_PATH}?{query}"))?
        .read(Step::SignIn)
}

/// Approves the sign-in of `access_number` at `idp` with `key` and `pin`.
pub fn approve(
    idp: &ServiceClient,
    key: &MpinKey,
    pin: Pin,
    access_number: &str,
) -> Result<SigninApproved, Error> {
    let step = Step::SignIn;
    let number = access_number.to_owned();
    two_passes(
        key,
        pin,
        |commitment: CommitRequest| {
            let body = SigninCommit {
                access_number: number.clone(),
                commitment,
            };
            idp.post(step, COMMIT_PATH, &body)?.read(step)
        },
        |proof: ProveRequest| {
            let body = SigninProve {
                access_number: number.clone(),
                proof,
            };
            idp.post(step, PROVE_PATH, &body)?.read(step)
        },
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_qr_code_url_names_the_idp_and_the_number() {
        let approval =
            Approval::from_url("https://idp.test/base/v1/signin/request?access_number=123456782")
                .unwrap();
        assert_eq!(approval.idp, "https://idp.test/base");
        assert_eq!(approval.access_number, "123456782");
        for other in [
            "https://idp.test/v1/signin/request",
            "https://idp.test/v1/other?access_number=1",
            "https://idp.test/v1/signin/request?number=1",
        ] {
            assert_eq!(Approval::from_url(other), None, "{other}");
        }
    }
}
