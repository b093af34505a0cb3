//! The device's side of signing in on the web (`/v1/signin/*`, [`crate::signin`]): which
//! client a sign-in page's access number stands for, and the two M-Pin passes that
//! approve it. Bodies are [`milagro_wire::signin`]'s, carrying [`milagro_mpin::wire`]'s
//! messages; both passes run behind the verifier's bounded queue.
//!
//! Errors are JSON `{"error", "error_description"}`:
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `invalid_request` | a malformed body or a mistyped access number |
//! | 400 | `invalid_grant` | no sign-in waits under the number (unknown, finished, already approved), or the proof answers another sign-in's challenge |
//! | 400 | `expired_token` | the access number expired (RFC 8628 §3.5's name) |
//! | 403 | `access_denied` | the M-Pin identity is no one's current registered device (replaced or revoked) |
//! | 404 | `not_found` | the IdP has no `[mpin]` |
//! | 429 | `too_many_attempts` | this address looked up too many unknown numbers (`Retry-After`), or the identity is locked out |
//! | | | and every refusal of the verifier ([`milagro_verifier::error`]): `login_refused` (401, wrong PIN), `identity_blocked`, `permit_expired`, `proof_in_flight`, `too_many_pending`, `unknown_login`, `not_ready` (503), `busy` (503) |

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError as _};
use milagro_mpin::wire::{ChallengeAnswer, CommitRequest, ProveRequest};
use milagro_service::unix_now;
use milagro_service::work_gate::GateError;
use milagro_verifier::VerifyError;
use milagro_wire::signin::{SigninApproved, SigninCommit, SigninProve, SigninRequest};
use serde::de::DeserializeOwned;

use super::{read_body, Params};
use crate::authentication::Authenticated;
use crate::oauth::OAuthError;
use crate::signin::access_number::AccessNumber;
use crate::signin::table::Refused;
use crate::signin::MpinSignIn;
use crate::state::AppState;

/// The path that names the request behind an access number.
pub const REQUEST_PATH: &str = "/v1/signin/request";
/// The path of pass 1.
pub const COMMIT_PATH: &str = "/v1/signin/commit";
/// The path of pass 2.
pub const PROVE_PATH: &str = "/v1/signin/prove";

/// A refusal, with the `Retry-After` to send.
pub(crate) struct Refusal(pub(crate) OAuthError, pub(crate) Option<u64>);

impl From<OAuthError> for Refusal {
    fn from(error: OAuthError) -> Self {
        Self(error, None)
    }
}

impl From<VerifyError> for Refusal {
    fn from(error: VerifyError) -> Self {
        if let VerifyError::Storage(_) = error {
            return Self(OAuthError::internal(error), None);
        }
        let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let retry_after = error.retry_after();
        Self(
            OAuthError::with_status(status, error.code(), error.to_string()),
            retry_after,
        )
    }
}

impl From<Refused> for Refusal {
    fn from(refused: Refused) -> Self {
        let code = match refused {
            Refused::Expired => "expired_token",
            _ => "invalid_grant",
        };
        Self(OAuthError::bad_request(code, refused.to_string()), None)
    }
}

impl From<GateError> for Refusal {
    fn from(error: GateError) -> Self {
        match error {
            GateError::Busy(busy) => Self(
                OAuthError::with_status(StatusCode::SERVICE_UNAVAILABLE, "busy", busy.to_string()),
                Some(busy.retry_after_secs),
            ),
            lost => Self(OAuthError::internal(lost), None),
        }
    }
}

/// The JSON answer of `outcome` (`Cache-Control: no-store`), or its refusal with any
/// `Retry-After`.
pub(crate) fn answer<T: serde::Serialize>(outcome: Result<T, Refusal>) -> HttpResponse {
    match outcome {
        Ok(body) => HttpResponse::Ok()
            .insert_header(("Cache-Control", "no-store"))
            .json(body),
        Err(Refusal(error, retry_after)) => {
            let mut response = error.error_response();
            if let Some(secs) = retry_after {
                if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&secs.to_string())
                {
                    response
                        .headers_mut()
                        .insert(actix_web::http::header::RETRY_AFTER, value);
                }
            }
            response
        }
    }
}

pub(crate) fn configured(state: &AppState) -> Result<Arc<MpinSignIn>, Refusal> {
    state.mpin.clone().ok_or_else(|| {
        Refusal(
            OAuthError::with_status(
                StatusCode::NOT_FOUND,
                "not_found",
                "this IdP has no m-pin sign-in ([mpin] is not configured)",
            ),
            None,
        )
    })
}

pub(crate) async fn json<T: DeserializeOwned>(
    req: &HttpRequest,
    body: web::Payload,
) -> Result<T, Refusal> {
    if !milagro_service::api::is_json(req) {
        return Err(OAuthError::from(milagro_service::api::unsupported_media_type()).into());
    }
    let bytes = read_body(body).await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        OAuthError::invalid_request(format!("the body is not the expected JSON: {e}")).into()
    })
}

/// The access number of a request, parsed; a failure counts against `address`, which
/// is refused once it spent its failures.
fn number(
    mpin: &MpinSignIn,
    address: Option<IpAddr>,
    text: &str,
    now: u64,
) -> Result<AccessNumber, Refusal> {
    if let Some(address) = address {
        mpin.lookups.check(&address, now).map_err(|limited| {
            Refusal(
                OAuthError::with_status(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    format!("too many unknown access numbers from this address; {limited}"),
                ),
                Some(limited.retry_after_secs),
            )
        })?;
    }
    AccessNumber::parse(text).map_err(|e| {
        failed(mpin, address, now);
        OAuthError::invalid_request(e.to_string()).into()
    })
}

fn failed(mpin: &MpinSignIn, address: Option<IpAddr>, now: u64) {
    if let Some(address) = address {
        mpin.lookups.failed(&address, now);
    }
}

/// A table refusal, counted against the address when the number led nowhere.
fn refused(mpin: &MpinSignIn, address: Option<IpAddr>, now: u64, refused: Refused) -> Refusal {
    if refused == Refused::Unknown {
        failed(mpin, address, now);
    }
    refused.into()
}

/// The subject whose current registered device has the M-Pin identity `mpin_id`.
pub(crate) fn subject_of(state: &AppState, mpin_id: &str) -> Result<String, Refusal> {
    let registration = state
        .registered_devices
        .by_mpin_id(mpin_id)
        .map_err(OAuthError::internal)?;
    registration.map(|r| r.subject).ok_or_else(|| {
        Refusal(
            OAuthError::with_status(
                StatusCode::FORBIDDEN,
                "access_denied",
                "this device is not the registered device of anyone here (replaced or revoked); register it again",
            ),
            None,
        )
    })
}

/// Pass 2's proof checked by the verifier at `now`: its login handle, and the person
/// whose current registered device proved (an M-Pin sign-in), or the refusal.
pub(crate) fn prove_as_registered(
    state: &AppState,
    mpin: &MpinSignIn,
    proof: &ProveRequest,
    now: u64,
) -> Result<(String, Authenticated), Refusal> {
    let verified = mpin.verifier.prove(proof)?;
    let mpin_id = String::from_utf8_lossy(verified.id.as_bytes()).into_owned();
    let subject = subject_of(state, &mpin_id)?;
    Ok((verified.login_id, Authenticated::by_mpin(&subject, now)))
}

/// `GET /v1/signin/request?access_number=N`: the request the device is about to approve.
pub(crate) async fn request(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let address = state.client_ip(&req);
    answer((|| {
        let mpin = configured(&state)?;
        let params = Params::parse(req.query_string().as_bytes())?;
        let now = unix_now();
        let number = number(&mpin, address, params.require("access_number")?, now)?;
        let waiting = mpin
            .table()
            .lookup(&number, now)
            .map_err(|r| refused(&mpin, address, now, r))?;
        Ok(SigninRequest {
            access_number: number.to_string(),
            client_id: waiting.summary.client_id,
            client_name: waiting.summary.client_name,
            redirect_uri: waiting.summary.redirect_uri,
            scope: waiting.summary.scope,
            expires_in: waiting.expires_in,
        })
    })())
}

/// One pass of a device's sign-in: the body `B` read, then `pass` on the verifier's
/// pairing queue (bounded: 503 beyond), answered as JSON or as its refusal.
pub(crate) async fn run_pass<B, A>(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
    pass: fn(&AppState, &MpinSignIn, Option<IpAddr>, &B) -> Result<A, Refusal>,
) -> HttpResponse
where
    B: DeserializeOwned + Send + 'static,
    A: serde::Serialize + Send + 'static,
{
    let address = state.client_ip(&req);
    let outcome = async {
        let request: B = json(&req, body).await?;
        let mpin = configured(&state)?;
        let shared = AppState::clone(&state);
        let work = {
            let mpin = mpin.clone();
            move || pass(&shared, &mpin, address, &request)
        };
        mpin.verifier.pairings.run(work).await?
    };
    answer(outcome.await)
}

/// `POST /v1/signin/commit`: pass 1 for the sign-in of an access number.
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
    address: Option<IpAddr>,
    request: &SigninCommit<CommitRequest>,
) -> Result<ChallengeAnswer, Refusal> {
    let now = unix_now();
    let number = number(mpin, address, &request.access_number, now)?;
    mpin.table()
        .lookup(&number, now)
        .map_err(|r| refused(mpin, address, now, r))?;
    subject_of(state, &request.commitment.mpin_id)?;
    let challenge = mpin.verifier.commit(&request.commitment)?;
    mpin.table()
        .challenged(&number, &challenge.login_id, now)
        .map_err(|r| refused(mpin, address, now, r))?;
    Ok(challenge)
}

/// `POST /v1/signin/prove`: pass 2; a proof that verifies approves the sign-in.
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
    address: Option<IpAddr>,
    request: &SigninProve<ProveRequest>,
) -> Result<SigninApproved, Refusal> {
    let now = unix_now();
    let number = number(mpin, address, &request.access_number, now)?;
    // Bound to this sign-in's latest challenge before the proof is even checked.
    mpin.table()
        .expects(&number, &request.proof.login_id, now)
        .map_err(|r| refused(mpin, address, now, r))?;
    let (login_id, who) = prove_as_registered(state, mpin, &request.proof, now)?;
    let subject = who.subject.clone();
    let summary = mpin
        .table()
        .approve(&number, &login_id, who, now)
        .map_err(|r| refused(mpin, address, now, r))?;
    tracing::info!(client = %summary.client_id, "a device approved a sign-in");
    Ok(SigninApproved {
        status: "approved".into(),
        client_id: summary.client_id,
        subject,
    })
}
