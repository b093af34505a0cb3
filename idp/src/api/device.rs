//! The device authorization grant (RFC 8628): the device's request, and the page where
//! a person enters the user code and logs in (with a password, or without one by proving
//! an e-mail address: [`super::enrolment`]), is shown which client asks (its name and
//! `client_id`), and allows or denies it.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use milagro_wire::idp::DeviceAuthorization;

use super::pages::{
    credentials, csrf_token, error_page, escape, hidden, limited_page, page, posted_form,
    PASSWORDS_OFF,
};
use super::{blocking, password_work, ClientForm, Params};
use crate::clients::GRANT_DEVICE;
use crate::device_grants::DeviceState;
use crate::oauth::OAuthError;
use crate::state::AppState;
use milagro_service::attempts::TooManyFailures;

/// `POST /device_authorization` (client authentication as at the token endpoint).
pub(crate) async fn device_authorization(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, OAuthError> {
    let form = ClientForm::read(&req, body).await?;
    let body = blocking(&state, move |state| {
        let client = form.authenticate(state)?;
        let params = &form.params;
        if !client.allows(GRANT_DEVICE) {
            return Err(OAuthError::bad_request(
                "unauthorized_client",
                "the client did not register the device_code grant",
            ));
        }
        // Unknown scopes are dropped (RFC 6749 §3.3), as at the authorization endpoint.
        let scope =
            crate::scopes::granted_scopes(params.get("scope").unwrap_or("openid")).join(" ");
        if scope.is_empty() {
            return Err(OAuthError::bad_request(
                "invalid_scope",
                "none of the scopes asked for is offered",
            ));
        }
        let scope = scope.as_str();
        let now = milagro_service::unix_now();
        let tokens = state.config.tokens;
        let started = state.devices.start(
            &client.client_id,
            scope,
            now.saturating_add(tokens.device_code.as_secs()),
            tokens.device_poll.as_secs(),
        )?;
        let verification = format!("{}/device", state.issuer());
        Ok(DeviceAuthorization {
            device_code: started.device_code.as_str().to_owned(),
            verification_uri_complete: Some(format!(
                "{verification}?user_code={}",
                started.user_code
            )),
            user_code: started.user_code,
            verification_uri: verification,
            expires_in: tokens.device_code.as_secs(),
            interval: Some(tokens.device_poll.as_secs()),
        })
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

fn form(
    state: &AppState,
    req: &HttpRequest,
    (user_code, code): (&str, &str),
    username: &str,
    error: Option<&str>,
) -> HttpResponse {
    let csrf = csrf_token(req);
    let fields = hidden(&[("csrf", &csrf)]);
    let email_form = super::enrolment::email_form(state, &csrf, user_code, code, None);
    if !state.config.passwords {
        let body = format!(
            "<p class=\"muted\">Enter the code your device shows and your e-mail address \
             to let it in.</p>{email_form}"
        );
        return page(
            StatusCode::OK,
            &format!("Connect a device to {}", state.config.party.name),
            &body,
            Some(&csrf),
            state.issuer().starts_with("https://"),
        );
    }
    let body = format!(
        "<p class=\"muted\">Enter the code your device shows, then sign in to let it in.</p>\
         {}{email_form}",
        credentials(
            "/device",
            &format!(
                "{fields}<label for=\"user_code\">Device code</label>\
                 <input id=\"user_code\" name=\"user_code\" value=\"{}\" required>",
                escape(user_code)
            ),
            "Allow device",
            error,
            username,
        ),
    );
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    page(
        status,
        &format!("Connect a device to {}", state.config.party.name),
        &body,
        Some(&csrf),
        state.issuer().starts_with("https://"),
    )
}

/// `GET /device[?user_code=…[&code=…]]`: the verification page (the link of an e-mailed
/// code fills in both).
pub(crate) async fn verification_page(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> HttpResponse {
    let params = Params::parse(req.query_string().as_bytes()).ok();
    let get = |name| {
        params
            .as_ref()
            .and_then(|p| p.get(name).map(str::to_owned))
            .unwrap_or_default()
    };
    form(&state, &req, (&get("user_code"), &get("code")), "", None)
}

/// What a `POST /device` came to.
enum Approval {
    /// Credentials and code are right: the person is shown the client and decides.
    Consent {
        /// The one-time token their choice is posted with.
        token: zeroize::Zeroizing<String>,
        /// The client asking.
        client_id: String,
        /// Its registered name, if any.
        client_name: Option<String>,
        /// Who logged in.
        username: String,
    },
    /// Refused, with the message to show.
    Refused(&'static str),
    /// The client address spent its failures.
    Limited(TooManyFailures),
}

/// `POST /device`: checks the client address's budget, then the credentials, then the
/// code, and shows the person which client asks. A wrong password gets the same answer
/// whether the code is live or not (and counts against a live code:
/// [`crate::device_grants`]). The person's choice comes back as another `POST /device`
/// with the consent token ([`decide`]).
pub(crate) async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> HttpResponse {
    let params = match posted_form(&req, body, true).await {
        Ok(params) => params,
        Err(page) => return page,
    };
    if params.get("consent").is_some() {
        return decide(&req, &state, params).await;
    }
    if params.get("email").is_some_and(|e| !e.is_empty()) {
        return super::enrolment::verify_email(&req, &state, params).await;
    }
    if !state.config.passwords {
        return error_page(StatusCode::FORBIDDEN, PASSWORDS_OFF);
    }
    let user_code = params.get("user_code").unwrap_or_default().to_owned();
    let username = params.get("username").unwrap_or_default().to_owned();
    let address = state.client_ip(&req);
    let outcome = password_work(&state, move |state| {
        let now = milagro_service::unix_now();
        if let Some(address) = address {
            if let Err(limited) = state.device_attempts.check(&address, now) {
                return Ok(Approval::Limited(limited));
            }
        }
        let user = state
            .users
            .authenticate(
                params.get("username").unwrap_or_default(),
                params.get("password").unwrap_or_default(),
            )
            .map_err(OAuthError::internal)?;
        let live = state
            .devices
            .pending(params.get("user_code").unwrap_or_default(), now)?;
        let (user, key, row) = match (user, live) {
            (Some(user), Some((key, row))) => (user, key, row),
            (user, live) => {
                if let Some(address) = address {
                    state.device_attempts.failed(&address, now);
                }
                if user.is_some() {
                    return Ok(Approval::Refused("That code is unknown or has expired."));
                }
                // A wrong password counts against the code it was typed with.
                if let Some((key, _)) = live {
                    if state.devices.failed_approval(&key, now)? {
                        tracing::warn!("a device code was denied after failed approvals");
                    }
                }
                return Ok(Approval::Refused(WRONG_CREDENTIALS));
            }
        };
        state.log_authentication(&user.subject, now)?;
        let token = state.devices.await_consent(&key, &user.subject, now, now)?;
        let client_name = state
            .clients
            .get(&row.client_id)?
            .and_then(|client| client.client_name);
        Ok(Approval::Consent {
            token,
            client_id: row.client_id,
            client_name,
            username: user.username,
        })
    })
    .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(busy) => return busy,
    };
    match outcome {
        Ok(Approval::Consent {
            token,
            client_id,
            client_name,
            username,
        }) => consent_page(
            &state,
            &req,
            &user_code,
            &token,
            (&client_id, client_name.as_deref()),
            &username,
        ),
        Ok(Approval::Refused(problem)) => {
            form(&state, &req, (&user_code, ""), &username, Some(problem))
        }
        Ok(Approval::Limited(limited)) => limited_page(&limited),
        Err(error) => error_page(
            actix_web::ResponseError::status_code(&error),
            error.description(),
        ),
    }
}

/// The one answer to wrong credentials, whatever the code: it must not tell whether the
/// code is live.
const WRONG_CREDENTIALS: &str = "Wrong username or password (or the code is unknown or expired).";

/// The page that shows the person which client asks, as whom, and takes their choice.
pub(super) fn consent_page(
    state: &AppState,
    req: &HttpRequest,
    user_code: &str,
    token: &str,
    (client_id, client_name): (&str, Option<&str>),
    username: &str,
) -> HttpResponse {
    let csrf = csrf_token(req);
    let fields = hidden(&[
        ("csrf", csrf.as_str()),
        ("user_code", user_code),
        ("consent", token),
    ]);
    let name = client_name.map_or_else(
        || "An unnamed client".to_owned(),
        |name| format!("<strong id=\"client_name\">{}</strong>", escape(name)),
    );
    let body = format!(
        "<p>{name} (client <code id=\"client_id\">{}</code>) asks to sign in as \
         <strong>{}</strong> on a device.</p>\
         <p class=\"muted\">Allow it only if you started this on your own device and know this \
         app. If someone sent you this code, deny it.</p>\
         <form method=\"post\" action=\"/device\">{fields}\
         <button id=\"allow\" type=\"submit\" name=\"decision\" value=\"allow\">Allow</button> \
         <button id=\"deny\" type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
        escape(client_id),
        escape(username)
    );
    page(
        StatusCode::OK,
        &format!("Allow this device at {}?", state.config.party.name),
        &body,
        Some(&csrf),
        state.issuer().starts_with("https://"),
    )
}

/// The second `POST /device`: the person's choice (`decision` `allow` or `deny`) with
/// the consent token of the page they were shown.
async fn decide(req: &HttpRequest, state: &web::Data<AppState>, params: Params) -> HttpResponse {
    let allow = match params.get("decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Choose whether to allow the device.",
            )
        }
    };
    let address = state.client_ip(req);
    let decided = blocking(state, move |state| {
        let now = milagro_service::unix_now();
        let decided = state.devices.consent(
            params.get("user_code").unwrap_or_default(),
            params.get("consent").unwrap_or_default(),
            allow,
            now,
        )?;
        if let (None, Some(address)) = (&decided, address) {
            state.device_attempts.failed(&address, now);
        }
        Ok(decided)
    })
    .await;
    match decided {
        Ok(Some(DeviceState::Approved { .. })) => page(
            StatusCode::OK,
            "Device connected",
            "<p id=\"done\">You can return to your device.</p>",
            None,
            false,
        ),
        Ok(Some(_)) => page(
            StatusCode::OK,
            "Device refused",
            "<p id=\"done\">The device was not let in.</p>",
            None,
            false,
        ),
        Ok(None) => error_page(
            StatusCode::BAD_REQUEST,
            "That request is no longer waiting for you: enter the code again.",
        ),
        Err(error) => error_page(
            actix_web::ResponseError::status_code(&error),
            error.description(),
        ),
    }
}
