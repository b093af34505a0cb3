//! Approving a relying party's backchannel authentication request (OpenID Connect CIBA
//! at the IdP) from the device: the device lists the requests waiting for its person
//! ([`pending`], a DPoP proof by its anchored key naming its M-Pin identity), shows the
//! client and the binding message, then approves one with the same two M-Pin passes as a
//! sign-in on the web ([`approve`], [`crate::authenticate::two_passes`]) or denies it
//! ([`deny`]).
//!
//! Refusals are [`Error::Server`] with the IdP's code: `invalid_grant` (no request of
//! this person has the id, or it is decided already), `expired_token`, `access_denied`
//! (this device is no longer the person's registered device), `invalid_dpop_proof`,
//! `login_refused` (wrong PIN), `too_many_attempts`, `identity_blocked`, `not_ready`.

use milagro_anchor::dpop;
use milagro_anchor::keys::SecretKey;
use milagro_mpin::wire::{CommitRequest, ProveRequest};
use milagro_mpin::Pin;
use milagro_wire::ciba::{CibaCommit, CibaDenied, CibaDeny, CibaProve, CibaRequest, CibaRequests};
use milagro_wire::signin::SigninApproved;

use crate::authenticate::two_passes;
use crate::error::{Error, Step};
use crate::http::ServiceClient;
use crate::idp_login::dpop_proof_for;
use crate::mpin_key::MpinKey;

/// The requests waiting for the device's person.
pub const REQUESTS_PATH: &str = "/v1/ciba/requests";
/// Pass 1 of an approval.
pub const COMMIT_PATH: &str = "/v1/ciba/commit";
/// Pass 2 of an approval.
pub const PROVE_PATH: &str = "/v1/ciba/prove";
/// Denying a request.
pub const DENY_PATH: &str = "/v1/ciba/deny";

/// The M-Pin identity of `key` as the IdP names it (hex text).
fn identity(key: &MpinKey) -> String {
    String::from_utf8_lossy(key.id.as_bytes()).into_owned()
}

/// The requests at `idp` waiting for the person whose registered device holds
/// `device_key` and the M-Pin key `key`, soonest to expire first.
pub fn pending(
    idp: &ServiceClient,
    device_key: &SecretKey,
    key: &MpinKey,
) -> Result<Vec<CibaRequest>, Error> {
    let step = Step::SignIn;
    let query = serde_urlencoded::to_string([("mpin_id", identity(key))])
        .map_err(|e| Error::unexpected(step, e))?;
    let uri = format!("{}{REQUESTS_PATH}", idp.base_url());
    let proof = dpop_proof_for(device_key, "GET", &uri, None);
    let listed: CibaRequests = idp
        .get_with(
            step,
            &format!("{REQUESTS_PATH}?{query}"),
            &[(dpop::HEADER, &proof)],
        )?
        .read(step)?;
    Ok(listed.requests)
}

/// Approves the request `request_id` at `idp` with `key` and `pin`.
pub fn approve(
    idp: &ServiceClient,
    key: &MpinKey,
    pin: Pin,
    request_id: &str,
) -> Result<SigninApproved, Error> {
    let step = Step::SignIn;
    two_passes(
        key,
        pin,
        |commitment: CommitRequest| {
            let body = CibaCommit {
                request_id: request_id.to_owned(),
                commitment,
            };
            idp.post(step, COMMIT_PATH, &body)?.read(step)
        },
        |proof: ProveRequest| {
            let body = CibaProve {
                request_id: request_id.to_owned(),
                proof,
            };
            idp.post(step, PROVE_PATH, &body)?.read(step)
        },
    )
}

/// Denies the request `request_id` at `idp` (a proof by `device_key`, the device whose
/// M-Pin key is `key`): its client hears `access_denied`.
pub fn deny(
    idp: &ServiceClient,
    device_key: &SecretKey,
    key: &MpinKey,
    request_id: &str,
) -> Result<CibaDenied, Error> {
    let step = Step::SignIn;
    let uri = format!("{}{DENY_PATH}", idp.base_url());
    let proof = dpop_proof_for(device_key, "POST", &uri, None);
    let body = CibaDeny {
        request_id: request_id.to_owned(),
        mpin_id: identity(key),
    };
    idp.post_with(step, DENY_PATH, &[(dpop::HEADER, &proof)], &body)?
        .read(step)
}
