//! OpenID Connect CIBA, poll mode ([`crate::ciba`]): the client's side. `POST
//! /bc-authorize` (CIBA §7) keeps a request for the person the client names; the token
//! endpoint's `urn:openid:params:grant-type:ciba` arm calls `redeem` (§10–11). The
//! device's side is [`device`].
//!
//! `POST /bc-authorize` takes the token endpoint's client authentication and answers
//! `{auth_req_id, expires_in, interval}`, or one of CIBA §13's errors (JSON, never 5xx
//! for a request's fault):
//!
//! | status | code | when |
//! |---|---|---|
//! | 400 | `invalid_request` | no `scope`, not exactly one hint, `id_token_hint` or `login_hint_token` (not supported: only `login_hint`), a bad `requested_expiry`, a malformed form |
//! | 400 | `invalid_scope` | the scopes granted lack `openid` |
//! | 400 | `invalid_binding_message` | a `binding_message` that is empty, longer than 64 characters or has control characters |
//! | 400 | `unknown_user_id` | the hint names nobody with a registered device |
//! | 400 | `unauthorized_client` | the client did not register the CIBA grant |
//! | 401 | `invalid_client` | client authentication failed |
//! | 404 | `not_found` | the IdP has no `[mpin]` (nothing could approve) |
//! | 429 | `slow_down` | too many requests wait (overall, for this client or for this person), or this address named too many unknown people |
//!
//! `unknown_user_id` tells an authenticated client whether an identifier belongs to
//! someone with a registered device; CIBA §13 names the error, and hiding it (an answer
//! that then only expires) would leave the client polling for nothing. What bounds the
//! enumeration is the address: unknown hints count as failed look-ups against the same
//! per-address limit as unknown access numbers ([`crate::signin::LOOKUP_FAILURES`] per
//! [`crate::signin::LOOKUP_WINDOW_SECS`]), after which the address hears `slow_down`.

pub mod device;

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use milagro_wire::ciba::BackchannelAuthentication;

use super::{blocking, ClientForm, Params};
use crate::ciba::table::{Full, NewRequest, NotGranted};
use crate::ciba::{check_binding_message, lifetime, GRANT_CIBA};
use crate::clients::Client;
use crate::grants::Authorization;
use crate::oauth::OAuthError;
use crate::scopes::granted_scopes;
use crate::signin::MpinSignIn;
use crate::state::AppState;
use crate::users::normalise_email;

/// The backchannel authentication endpoint.
pub const BC_AUTHORIZE_PATH: &str = "/bc-authorize";

/// The hints CIBA §7.1 defines; a request carries exactly one.
const HINTS: [&str; 3] = ["login_hint", "id_token_hint", "login_hint_token"];

fn slow_down(description: impl Into<String>) -> OAuthError {
    OAuthError::with_status(StatusCode::TOO_MANY_REQUESTS, "slow_down", description)
}

fn not_configured() -> OAuthError {
    OAuthError::with_status(
        StatusCode::NOT_FOUND,
        "not_found",
        "this IdP has no m-pin sign-in ([mpin] is not configured), so no backchannel authentication",
    )
}

/// `POST /bc-authorize`.
pub(crate) async fn bc_authorize(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let address = state.client_ip(&req);
    let form = ClientForm::read(&req, body).await?;
    let answer = blocking(&state, move |state| {
        let client = form.authenticate(state)?;
        let mpin = state.mpin.clone().ok_or_else(not_configured)?;
        if !client.allows(GRANT_CIBA) {
            return Err(OAuthError::bad_request(
                "unauthorized_client",
                format!("the client did not register the {GRANT_CIBA} grant"),
            ));
        }
        let request = checked_request(state, &mpin, &client, &form.params, address)?;
        let now = milagro_service::unix_now();
        let begun = mpin
            .ciba
            .table()
            .begin(request, now)
            .map_err(|full: Full| slow_down(full.to_string()))?;
        tracing::info!(client = %client.client_id, "backchannel authentication requested");
        Ok(BackchannelAuthentication {
            auth_req_id: begun.auth_req_id.to_string(),
            expires_in: begun.expires_in,
            interval: begun.interval,
        })
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}

/// The request `params` make, checked in CIBA §7.1's order: scope, hint, binding
/// message, expiry; the person last (it may count against `address`).
fn checked_request(
    state: &AppState,
    mpin: &MpinSignIn,
    client: &Client,
    params: &Params,
    address: Option<IpAddr>,
) -> Result<NewRequest, OAuthError> {
    let scope = granted_scopes(params.require("scope")?).join(" ");
    if !scope.split(' ').any(|s| s == "openid") {
        return Err(OAuthError::bad_request(
            "invalid_scope",
            "a backchannel authentication request asks for the openid scope",
        ));
    }
    let hints: Vec<&str> = HINTS
        .into_iter()
        .filter(|h| params.get(h).is_some())
        .collect();
    let hint = match hints.as_slice() {
        ["login_hint"] => params.require("login_hint")?,
        [other] => {
            return Err(OAuthError::invalid_request(format!(
                "{other} is not supported: name the person with login_hint (their e-mail address or subject)"
            )))
        }
        _ => {
            return Err(OAuthError::invalid_request(
                "send exactly one of login_hint, id_token_hint and login_hint_token",
            ))
        }
    };
    let binding_message = params.get("binding_message").map(str::to_owned);
    if let Some(message) = &binding_message {
        check_binding_message(message)
            .map_err(|e| OAuthError::bad_request(e.code(), e.to_string()))?;
    }
    let most = mpin.ciba.config.request.as_secs();
    let lifetime = lifetime(params.get("requested_expiry"), most)
        .map_err(|e| OAuthError::bad_request(e.code(), e.to_string()))?;
    let subject = person(state, mpin, hint, address)?;
    Ok(NewRequest {
        client_id: client.client_id.clone(),
        client_name: client.client_name.clone(),
        subject,
        scope,
        binding_message,
        lifetime,
    })
}

/// The subject `hint` names (a username or e-mail address, or a subject) who has a
/// registered device; an unknown one counts against `address`.
fn person(
    state: &AppState,
    mpin: &MpinSignIn,
    hint: &str,
    address: Option<IpAddr>,
) -> Result<String, OAuthError> {
    let now = milagro_service::unix_now();
    if let Some(address) = address {
        mpin.lookups.check(&address, now).map_err(|limited| {
            slow_down(format!(
                "too many unknown people named from this address; {limited}"
            ))
        })?;
    }
    let users = &state.users;
    let user = match users.by_username(hint).map_err(OAuthError::internal)? {
        Some(user) => Some(user),
        None => match normalise_email(hint) {
            Some(email) => users.by_username(&email).map_err(OAuthError::internal)?,
            None => None,
        },
    };
    let subject = match user {
        Some(user) => Some(user.subject),
        None => users
            .by_subject(hint)
            .map_err(OAuthError::internal)?
            .map(|user| user.subject),
    };
    let registered = match subject {
        Some(subject) => state
            .registered_devices
            .current(&subject)
            .map_err(OAuthError::internal)?
            .map(|registration| registration.subject),
        None => None,
    };
    registered.ok_or_else(|| {
        if let Some(address) = address {
            mpin.lookups.failed(&address, now);
        }
        // One answer for nobody and for somebody without a device: neither can approve.
        OAuthError::bad_request(
            "unknown_user_id",
            "the login_hint names nobody with a registered device here",
        )
    })
}

/// The token endpoint's CIBA arm (CIBA §10.1): the grant of the approved request
/// `auth_req_id` of `client`, taken once; else `authorization_pending`, `slow_down`,
/// `expired_token`, `access_denied` or `invalid_grant` (§11).
pub(crate) fn redeem(
    state: &AppState,
    client: &Client,
    params: &Params,
    now: u64,
) -> Result<Authorization, OAuthError> {
    let id = params.require("auth_req_id")?;
    let mpin = state
        .mpin
        .as_ref()
        .ok_or_else(|| OAuthError::invalid_grant("no backchannel authentication here"))?;
    let polled = mpin.ciba.table().poll(id, &client.client_id, now);
    let granted = polled.map_err(|not| match not {
        NotGranted::Pending => OAuthError::bad_request(
            "authorization_pending",
            "the person has not approved the request yet",
        ),
        NotGranted::SlowDown => OAuthError::bad_request(
            "slow_down",
            format!(
                "poll at most every {} s",
                mpin.ciba.config.poll_interval.as_secs()
            ),
        ),
        NotGranted::Expired => OAuthError::bad_request("expired_token", "the request expired"),
        NotGranted::Denied => {
            OAuthError::bad_request("access_denied", "the person denied the request")
        }
        NotGranted::Invalid(why) => OAuthError::invalid_grant(why),
    })?;
    state.log_authentication(&granted.who.subject, granted.who.auth_time)?;
    Ok(Authorization::new(
        &client.client_id,
        &granted.who,
        &granted.scope,
        None,
    ))
}
