//! The device page without a password: a person gives their e-mail address and proves it
//! with a code the IdP e-mails them, or with an operator's activation code
//! ([`crate::enrolment_codes`]), and then allows the device as after a password.
//!
//! One form, posted to `/device` with `email` (and `user_code`, `csrf`):
//!
//! - without `code`: a code is e-mailed, bound to this device authorization, if the address
//!   may register (it exists, or its domain is in `[enrolment] allowed_domains`). The answer
//!   is the same whether it may or not, and whether the user code is live, so the page tells
//!   nobody which addresses exist. Sends are limited per client address and per e-mail
//!   address ([`crate::enrolment_codes::SENDS_PER_KEY`]).
//! - with `code`: an 8-digit e-mailed code is checked against this authorization and the
//!   address; anything else is taken as an activation code for the address. Right: the
//!   person (created on first registration, without a password) is shown the client and
//!   decides ([`super::device`]'s consent step). Wrong: the same refusal whatever was wrong,
//!   counted against the client address and the live user code as a wrong password is.
//!
//! The link in the e-mail opens the form with the user code and the code filled in; the
//! address is not in it (URLs end up in proxies' logs and browser histories).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use milagro_service::attempts::TooManyFailures;

use super::device::consent_page;
use super::pages::{csrf_token, error_page, escape, hidden, limited_page, page};
use super::{blocking, Params};
use crate::enrolment_codes::{Checked, MAIL_CODE_DIGITS};
use crate::oauth::OAuthError;
use crate::state::AppState;
use crate::users::{normalise_email, User, UserError};

/// The one answer to a wrong code, whatever was wrong with it.
const WRONG_CODE: &str = "That code is wrong, used or expired (or the device code is).";
/// The one answer to a request for an e-mailed code.
const SENT: &str = "If this address may register here, a code is on its way to it. \
                    Enter it below (or open the link in the message).";

/// The e-mail form of the device page (`user_code`, `code` prefilled; `notice` above it).
pub(super) fn email_form(
    state: &AppState,
    csrf: &str,
    user_code: &str,
    code: &str,
    notice: Option<(&str, &str)>,
) -> String {
    let notice = notice.map_or_else(String::new, |(class, text)| {
        format!("<p class=\"{class}\" id=\"{class}\">{}</p>", escape(text))
    });
    let how = if state.enrolment.mailer.is_some() {
        "Leave the code empty to get one by e-mail, or type the activation code you were given."
    } else {
        "Type the activation code you were given."
    };
    // Beside the password form, this one is the other way in; alone, it is the way in.
    let heading = if state.config.passwords {
        "<h2>No password?</h2>"
    } else {
        ""
    };
    format!(
        "{heading}{notice}<p class=\"muted\">{how}</p>\
         <form method=\"post\" action=\"/device\" id=\"email_form\">{}\
         <label for=\"email_user_code\">Device code</label>\
         <input id=\"email_user_code\" name=\"user_code\" value=\"{}\" required>\
         <label for=\"email\">E-mail address</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" required>\
         <label for=\"code\">Code</label>\
         <input id=\"code\" name=\"code\" value=\"{}\" autocomplete=\"one-time-code\">\
         <button id=\"email_submit\" type=\"submit\">Continue</button></form>",
        hidden(&[("csrf", csrf)]),
        escape(user_code),
        escape(code),
    )
}

/// What an e-mail form came to.
enum Outcome {
    /// Proven: the person decides on the client.
    Consent {
        token: zeroize::Zeroizing<String>,
        client_id: String,
        client_name: Option<String>,
        username: String,
    },
    /// A code was (or, for all the page says, may have been) sent.
    Sent,
    /// Refused, with the message to show.
    Refused(&'static str),
    /// A rate limit.
    Limited(TooManyFailures),
}

/// `POST /device` with `email`: see the module documentation.
pub(super) async fn verify_email(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    params: Params,
) -> HttpResponse {
    let user_code = params.get("user_code").unwrap_or_default().to_owned();
    let address = state.client_ip(req);
    let outcome = blocking(state, move |state| {
        let now = milagro_service::unix_now();
        if let Some(address) = address {
            if let Err(limited) = state.device_attempts.check(&address, now) {
                return Ok(Outcome::Limited(limited));
            }
        }
        let failed = |state: &AppState| {
            if let Some(address) = address {
                state.device_attempts.failed(&address, now);
            }
        };
        let Some(email) = normalise_email(params.get("email").unwrap_or_default()) else {
            failed(state);
            return Ok(Outcome::Refused(
                "That is not an e-mail address this IdP accepts.",
            ));
        };
        let live = state
            .devices
            .pending(params.get("user_code").unwrap_or_default(), now)?;
        let code = params.get("code").unwrap_or_default().trim();
        if code.is_empty() {
            return send_code(state, address, &email, live, now);
        }
        let Some((key, row)) = live else {
            failed(state);
            return Ok(Outcome::Refused(WRONG_CODE));
        };
        let mailed = code.len() == MAIL_CODE_DIGITS && code.bytes().all(|b| b.is_ascii_digit());
        let codes = &state.enrolment.codes;
        let checked = if mailed {
            codes.check_mail_code(&key, &email, code, now)?
        } else {
            codes.redeem_activation_code(&email, code, now)?
        };
        if checked == Checked::Refused {
            failed(state);
            if state.devices.failed_approval(&key, now)? {
                tracing::warn!("a device code was denied after failed approvals");
            }
            return Ok(Outcome::Refused(WRONG_CODE));
        }
        let Some(user) = person(state, &email, now)? else {
            return Ok(Outcome::Refused(
                "This address belongs to an account that signs in with its password.",
            ));
        };
        state.log_authentication(&user.subject, now)?;
        let token = state.devices.await_consent(&key, &user.subject, now, now)?;
        let client_name = state
            .clients
            .get(&row.client_id)?
            .and_then(|client| client.client_name);
        Ok(Outcome::Consent {
            token,
            client_id: row.client_id,
            client_name,
            username: user.username,
        })
    })
    .await;
    match outcome {
        Ok(Outcome::Consent {
            token,
            client_id,
            client_name,
            username,
        }) => consent_page(
            state,
            req,
            &user_code,
            &token,
            (&client_id, client_name.as_deref()),
            &username,
        ),
        Ok(Outcome::Sent) => answer(state, req, &user_code, StatusCode::OK, ("notice", SENT)),
        Ok(Outcome::Refused(problem)) => answer(
            state,
            req,
            &user_code,
            StatusCode::UNAUTHORIZED,
            ("error", problem),
        ),
        Ok(Outcome::Limited(limited)) => limited_page(&limited),
        Err(error) => error_page(
            actix_web::ResponseError::status_code(&error),
            error.description(),
        ),
    }
}

/// Sends a code for the live authorization, if the address may register; the caller
/// answers [`Outcome::Sent`] whatever happened but a rate limit or a missing mailer.
fn send_code(
    state: &AppState,
    address: Option<std::net::IpAddr>,
    email: &str,
    live: Option<(Vec<u8>, crate::device_grants::DeviceRow)>,
    now: u64,
) -> Result<Outcome, OAuthError> {
    let enrolment = &state.enrolment;
    let Some(mailer) = &enrolment.mailer else {
        return Ok(Outcome::Refused(
            "This IdP sends no e-mail: type the activation code you were given.",
        ));
    };
    let Some((key, row)) = live else {
        if let Some(address) = address {
            state.device_attempts.failed(&address, now);
        }
        return Ok(Outcome::Sent);
    };
    if let Some(address) = address {
        if let Err(limited) = enrolment.sends_per_address.take(&address, now) {
            return Ok(Outcome::Limited(limited));
        }
    }
    if let Err(limited) = enrolment
        .sends_per_email
        .take(&crate::grants::hashed(email), now)
    {
        return Ok(Outcome::Limited(limited));
    }
    let known = state
        .users
        .by_username(email)
        .map_err(OAuthError::internal)?;
    let may = match known {
        Some(user) => user.email.is_some(),
        None => state.config.enrolment.self_registers(email),
    };
    if !may {
        return Ok(Outcome::Sent);
    }
    let lifetime = state.config.enrolment.mail_code.as_secs();
    let expires = now.saturating_add(lifetime).min(row.expires);
    let code = enrolment.codes.issue_mail_code(&key, email, now, expires)?;
    // Stored normalised (8 letters); shown as the device shows it, `BCDF-GHJK`.
    let shown = match (row.user_code.get(..4), row.user_code.get(4..)) {
        (Some(head), Some(tail)) => format!("{head}-{tail}"),
        _ => row.user_code.clone(),
    };
    let link = format!(
        "{}/device?user_code={shown}&code={}",
        state.issuer(),
        code.as_str()
    );
    // Queued, not sent: the answer takes as long as for an address that gets no mail.
    // The error names neither the address nor the code.
    if let Err(error) = mailer.send_code(email, &state.config.party.name, &code, &link) {
        tracing::warn!(%error, "an enrolment code could not be queued");
        return Err(OAuthError::with_status(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the e-mail could not be sent; try again later",
        ));
    }
    Ok(Outcome::Sent)
}

/// The person who proved `email`: found, or created without a password on first
/// registration (the code's issue already checked that they may). `None` when the
/// address is the username of a password account, which a code does not take over.
fn person(state: &AppState, email: &str, now: u64) -> Result<Option<User>, OAuthError> {
    let users = &state.users;
    let found = match users.by_username(email).map_err(OAuthError::internal)? {
        Some(user) => user,
        None => match users.add_by_email(email, now) {
            Ok(user) => {
                tracing::info!(subject = %user.subject, "a person registered without a password");
                user
            }
            // Registered meanwhile by another request: theirs is the row.
            Err(UserError::Exists(_)) => users
                .by_username(email)
                .map_err(OAuthError::internal)?
                .ok_or_else(|| OAuthError::internal("a user vanished"))?,
            Err(other) => return Err(OAuthError::internal(other)),
        },
    };
    Ok(found.email.is_some().then_some(found))
}

fn answer(
    state: &AppState,
    req: &HttpRequest,
    user_code: &str,
    status: StatusCode,
    notice: (&str, &str),
) -> HttpResponse {
    let csrf = csrf_token(req);
    let body = email_form(state, &csrf, user_code, "", Some(notice));
    page(
        status,
        &format!("Connect a device to {}", state.config.party.name),
        &body,
        Some(&csrf),
        state.issuer().starts_with("https://"),
    )
}
