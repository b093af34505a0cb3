//! The device's side of CIBA (`/v1/ciba/*`): the person's registered device lists the
//! backchannel authentication requests naming its person, then approves one with the two
//! M-Pin passes (the same pass runner, verifier, lockouts and device check as a sign-in
//! on the web, [`super::super::signin`]) or denies it.
//!
//! Listing and denying carry no token: a DPoP proof (RFC 9449) by the device's key for
//! this very request is the credential, matched to the registration its M-Pin identity
//! names (ADR 0019). The passes need none: the M-Pin proof itself says which registered
//! device (and so which person) proved, and a request of another person is refused as an
//! unknown one, before the verifier is asked.
//!
//! Errors are JSON `{"error", "error_description"}`:
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `invalid_request` | a malformed body or query |
//! | 400 | `invalid_dpop_proof` | no DPoP proof, or one that does not verify or is replayed (listing, denying) |
//! | 400 | `invalid_grant` | no request of this person has the id (unknown, another person's, gone), it is decided already, or the proof answers another challenge |
//! | 400 | `expired_token` | the request expired |
//! | 403 | `access_denied` | the identity is no one's current registered device, or the proof is not by its key |
//! | 404 | `not_found` | the IdP has no `[mpin]` |
//! | | | and every refusal of the verifier, as at `/v1/signin/*`: `login_refused` (401, wrong PIN), `too_many_attempts` (429), `identity_blocked`, `busy` (503)... |

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use milagro_anchor::dpop;
use milagro_anchor::keys::CompressedKey;
use milagro_mpin::wire::{ChallengeAnswer, CommitRequest, ProveRequest};
use milagro_service::unix_now;
use milagro_wire::ciba::{CibaCommit, CibaDenied, CibaDeny, CibaProve, CibaRequest, CibaRequests};
use milagro_wire::signin::SigninApproved;

use super::super::signin::{
    answer, configured, json, prove_as_registered, run_pass, subject_of, Refusal,
};
use super::super::Params;
use crate::ciba::table::Refused;
use crate::dpop::{check as check_proof, invalid_proof, proof_of};
use crate::oauth::OAuthError;
use crate::signin::MpinSignIn;
use crate::state::AppState;

/// The requests waiting for the device's person.
pub const REQUESTS_PATH: &str = "/v1/ciba/requests";
/// Pass 1 of an approval.
pub const COMMIT_PATH: &str = "/v1/ciba/commit";
/// Pass 2 of an approval.
pub const PROVE_PATH: &str = "/v1/ciba/prove";
/// The person says no.
pub const DENY_PATH: &str = "/v1/ciba/deny";

impl From<Refused> for Refusal {
    fn from(refused: Refused) -> Self {
        let code = match refused {
            Refused::Expired => "expired_token",
            _ => "invalid_grant",
        };
        Self(OAuthError::bad_request(code, refused.to_string()), None)
    }
}

/// The subject whose current registered device has the M-Pin identity `mpin_id` and
/// signed `proof` for `method` on `path` with its registered key. Blocking (sled).
fn proven_device(
    state: &AppState,
    proof: Option<&str>,
    mpin_id: &str,
    method: &str,
    path: &str,
) -> Result<String, Refusal> {
    let proof = proof.ok_or_else(|| {
        invalid_proof("send a DPoP proof by the device's registered key for this request")
    })?;
    let uri = format!("{}{path}", state.issuer());
    let request = dpop::Request {
        method,
        uri: &uri,
        access_token: None,
    };
    let proved = check_proof(&state.seen_proofs, proof, &request, unix_now())?;
    let registration = state
        .registered_devices
        .by_mpin_id(mpin_id)
        .map_err(OAuthError::internal)?
        .filter(|registration| registration.device_key == CompressedKey::from(proved.key()));
    registration.map(|r| r.subject).ok_or_else(|| {
        OAuthError::with_status(
            StatusCode::FORBIDDEN,
            "access_denied",
            "the proof is not by the registered device of this m-pin identity",
        )
        .into()
    })
}

/// `GET /v1/ciba/requests?mpin_id=…`, with a DPoP proof by the device's key.
pub(crate) async fn requests(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let outcome = async {
        let mpin = configured(&state)?;
        let proof = proof_of(&req)?;
        let params = Params::parse(req.query_string().as_bytes())?;
        let mpin_id = params.require("mpin_id")?.to_owned();
        let shared = AppState::clone(&state);
        let listed = web::block(move || -> Result<CibaRequests, Refusal> {
            let subject = proven_device(&shared, proof.as_deref(), &mpin_id, "GET", REQUESTS_PATH)?;
            let listed = mpin.ciba.table().for_subject(&subject, unix_now());
            Ok(CibaRequests {
                requests: listed
                    .into_iter()
                    .map(|l| CibaRequest {
                        request_id: l.request_id,
                        client_id: l.client_id,
                        client_name: l.client_name,
                        scope: l.scope,
                        binding_message: l.binding_message,
                        expires_in: l.expires_in,
                    })
                    .collect(),
            })
        });
        listed.await.map_err(OAuthError::from)?
    };
    answer(outcome.await)
}

/// `POST /v1/ciba/deny`, with a DPoP proof by the device's key.
pub(crate) async fn deny(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> HttpResponse {
    let outcome = async {
        let request: CibaDeny = json(&req, body).await?;
        let mpin = configured(&state)?;
        let proof = proof_of(&req)?;
        let shared = AppState::clone(&state);
        let denied = web::block(move || -> Result<CibaDenied, Refusal> {
            let subject = proven_device(
                &shared,
                proof.as_deref(),
                &request.mpin_id,
                "POST",
                DENY_PATH,
            )?;
            let client_id = mpin
                .ciba
                .table()
                .deny(&request.request_id, &subject, unix_now())?;
            tracing::info!(client = %client_id, "a person denied a backchannel authentication");
            Ok(CibaDenied {
                status: "denied".into(),
                client_id,
            })
        });
        denied.await.map_err(OAuthError::from)?
    };
    answer(outcome.await)
}

/// `POST /v1/ciba/commit`: pass 1 for the request `request_id`.
pub(crate) async fn commit(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> HttpResponse {
    run_pass(req, state, body, begin).await
}

fn begin(
    state: &AppState,
    mpin: &MpinSignIn,
    _address: Option<IpAddr>,
    request: &CibaCommit<CommitRequest>,
) -> Result<ChallengeAnswer, Refusal> {
    let now = unix_now();
    // The device's person must be the one hinted, before the verifier does any work.
    let subject = subject_of(state, &request.commitment.mpin_id)?;
    mpin.ciba
        .table()
        .check(&request.request_id, &subject, now)?;
    let challenge = mpin.verifier.commit(&request.commitment)?;
    mpin.ciba
        .table()
        .challenged(&request.request_id, &subject, &challenge.login_id, now)?;
    Ok(challenge)
}

/// `POST /v1/ciba/prove`: pass 2; a proof that verifies as the hinted person approves.
pub(crate) async fn prove(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> HttpResponse {
    run_pass(req, state, body, approve).await
}

fn approve(
    state: &AppState,
    mpin: &MpinSignIn,
    _address: Option<IpAddr>,
    request: &CibaProve<ProveRequest>,
) -> Result<SigninApproved, Refusal> {
    let now = unix_now();
    mpin.ciba
        .table()
        .expects(&request.request_id, &request.proof.login_id, now)?;
    let (login_id, who) = prove_as_registered(state, mpin, &request.proof, now)?;
    let subject = who.subject.clone();
    let client_id = mpin
        .ciba
        .table()
        .approve(&request.request_id, &login_id, who, now)?;
    tracing::info!(client = %client_id, "a device approved a backchannel authentication");
    Ok(SigninApproved {
        status: "approved".into(),
        client_id,
        subject,
    })
}
