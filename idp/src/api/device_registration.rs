//! `POST /v1/devices`: a device registers itself as its person's device, the one whose
//! M-Pin key may sign them in ([`crate::devices`]).
//!
//! The request is the device's own: an access token from the device authorization grant
//! (the person approved this device's code), DPoP-bound to the device's anchored key,
//! presented with a fresh proof by that key for this request (RFC 9449 §7). The key the
//! proof is by is the key registered, and the M-Pin identity is derived from it
//! ([`milagro_mpin::MpinId::of_device`]) exactly as the D-TAs derive the identity they
//! issue shares for. A token from a browser sign-in, a bearer token, or a proof by
//! another key registers nothing. Registering another key replaces (and so revokes) the
//! person's previous device; registering the same key again changes nothing.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use milagro_anchor::keys::CompressedKey;
use milagro_mpin::MpinId;
use milagro_wire::idp::DeviceRegistration;

use super::resource::grant_of;
use super::{access_token, blocking};
use crate::devices::Registration;
use crate::dpop::proof_of;
use crate::oauth::OAuthError;
use crate::state::AppState;

/// The route.
pub const DEVICES_PATH: &str = "/v1/devices";

fn forbidden(description: &str) -> OAuthError {
    OAuthError::with_status(StatusCode::FORBIDDEN, "insufficient_scope", description)
}

/// `POST /v1/devices`.
pub(crate) async fn register_device(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, OAuthError> {
    let (scheme, token) =
        access_token(&req).ok_or_else(|| OAuthError::invalid_token("no access token"))?;
    let proof = proof_of(&req)?;
    let answer = blocking(&state, move |state| {
        let now = milagro_service::unix_now();
        let (auth, proved) = grant_of(state, scheme, &token, proof, "POST", DEVICES_PATH, now)?;
        let Some(proved) = proved else {
            return Err(OAuthError::invalid_token(
                "a device registers with an access token bound to its key by DPoP",
            ));
        };
        if !auth.device_grant {
            return Err(forbidden(
                "only a token from the device authorization grant registers a device",
            ));
        }
        if !auth.has_scope("openid") {
            return Err(forbidden("the token was not granted the openid scope"));
        }
        let key = proved.key();
        let mpin_id = MpinId::of_device(state.issuer(), &auth.subject, &key.to_sec1())
            .map_err(OAuthError::internal)?;
        let mpin_id =
            String::from_utf8(mpin_id.as_bytes().to_vec()).map_err(OAuthError::internal)?;
        if let Some(current) = state
            .registered_devices
            .current(&auth.subject)
            .map_err(OAuthError::internal)?
            .filter(|current| current.device_key == *key)
        {
            return Ok((StatusCode::OK, answer(&current, None)));
        }
        let registration = Registration {
            subject: auth.subject.clone(),
            device_key: CompressedKey::from(key),
            mpin_id,
            registered: now,
        };
        let replaced = state
            .registered_devices
            .register(&registration)
            .map_err(OAuthError::internal)?;
        tracing::info!(
            device = %registration.device_key,
            replaced = replaced.is_some(),
            "device registered"
        );
        Ok((
            StatusCode::CREATED,
            answer(&registration, replaced.as_ref()),
        ))
    })
    .await?;
    let (status, body) = answer;
    Ok(HttpResponse::build(status)
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

fn answer(registration: &Registration, replaced: Option<&Registration>) -> DeviceRegistration {
    DeviceRegistration {
        subject: registration.subject.clone(),
        device_key: registration.device_key.to_string(),
        mpin_id: registration.mpin_id.clone(),
        registered: registration.registered,
        replaced_device_key: replaced.map(|old| old.device_key.to_string()),
    }
}
