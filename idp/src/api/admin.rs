//! The admin API (the operator's token, kept only as its hash) and the activity log's
//! newest checkpoint.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use milagro_service::token::ApiToken;
use milagro_wire::idp::{ActivationCode, Checkpoint, CreatedUser, NewActivationCode, NewUser};
use zeroize::Zeroizing;

use super::{bearer, blocking, read_body};
use crate::oauth::OAuthError;
use crate::state::AppState;
use crate::users::{normalise_email, UserError};

fn check_admin(req: &HttpRequest, state: &AppState) -> Result<(), OAuthError> {
    let Some(hash) = state.config.admin_token else {
        return Err(OAuthError::with_status(
            StatusCode::FORBIDDEN,
            "forbidden",
            "no admin token is configured; the admin API is off",
        ));
    };
    let token = bearer(req)
        .and_then(|t| ApiToken::parse(&t).ok())
        .ok_or_else(|| OAuthError::invalid_token("the admin API needs the admin token"))?;
    if hash.matches(&token) {
        Ok(())
    } else {
        Err(OAuthError::invalid_token("wrong admin token"))
    }
}

/// The JSON body of an admin call, read only once the admin token is checked: 415 for
/// another content type, 400 naming `shape` for a body that is not `T`.
async fn admin_body<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    state: &AppState,
    body: web::Payload,
    shape: &str,
) -> Result<T, OAuthError> {
    check_admin(req, state)?;
    if !milagro_service::api::is_json(req) {
        return Err(milagro_service::api::unsupported_media_type().into());
    }
    let body = read_body(body).await?;
    serde_json::from_slice(&body)
        .map_err(|e| OAuthError::invalid_request(format!("the body is not {shape} JSON: {e}")))
}

/// `POST /v1/admin/users` `{"username", "password"}` → 201 `{"username", "subject"}`.
pub(crate) async fn add_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let new: NewUser = admin_body(&req, &state, body, "{username, password}").await?;
    if !state.config.passwords {
        return Err(OAuthError::with_status(
            StatusCode::FORBIDDEN,
            "passwords_disabled",
            "password sign-in is off on this IdP ([passwords] enabled = false): people \
             register with their e-mail address or an activation code",
        ));
    }
    let password = Zeroizing::new(new.password);
    let user = blocking(&state, move |state| {
        state
            .users
            .add(&new.username, &password, milagro_service::unix_now())
            .map_err(|e| match e {
                UserError::Exists(_) => {
                    OAuthError::with_status(StatusCode::CONFLICT, "conflict", e.to_string())
                }
                UserError::Invalid(_) => OAuthError::invalid_request(e.to_string()),
                other => OAuthError::internal(other),
            })
    })
    .await?;
    Ok(HttpResponse::Created().json(CreatedUser {
        username: user.username,
        subject: user.subject,
    }))
}

/// `POST /v1/admin/activation-codes` `{"email"}` → 201 `{"email", "activation_code",
/// "expires_in"}`: a one-time code the person types on the device page, with their
/// address, to register a device without a password ([`crate::enrolment_codes`]). Only
/// its hash is kept; the address is not logged.
pub(crate) async fn issue_activation_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let new: NewActivationCode = admin_body(&req, &state, body, "{email}").await?;
    let email = normalise_email(&new.email)
        .ok_or_else(|| OAuthError::invalid_request("not an e-mail address the IdP accepts"))?;
    let answer = blocking(&state, move |state| {
        let now = milagro_service::unix_now();
        let lifetime = state.config.enrolment.activation_code.as_secs();
        let code = state.enrolment.codes.issue_activation_code(
            &email,
            now,
            now.saturating_add(lifetime),
        )?;
        tracing::info!("an activation code was issued");
        Ok(ActivationCode {
            email,
            activation_code: code.as_str().to_owned(),
            expires_in: lifetime,
        })
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}

/// `GET /v1/audit/checkpoint`: the newest signed checkpoint of the activity log, its
/// anchoring transaction and the log's current size.
pub(crate) async fn checkpoint(state: web::Data<AppState>) -> Result<HttpResponse, OAuthError> {
    let body = blocking(&state, |state| {
        let latest = state
            .audit
            .store()
            .latest_checkpoint()
            .map_err(OAuthError::internal)?
            .ok_or_else(|| {
                OAuthError::with_status(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    "no checkpoint was signed yet",
                )
            })?;
        Ok(Checkpoint {
            signed: latest.to_wire(),
            log_size: state.audit.tree_head().size.get(),
            origin: state.audit.origin().as_str().to_owned(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}
