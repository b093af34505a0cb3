//! `POST /login`: the password form of the authorization page, for an operator who keeps
//! password sign-in on while migrating accounts (`[passwords] enabled`); refused (403)
//! otherwise. A right password ends the request as every sign-in does
//! ([`super::authorize::issue_code`], [`super::authorize::deliver_code`]); a wrong one
//! shows the form again. Each check is argon2id behind the password queue
//! ([`super::password_work`]).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::authorize::{check, deliver_code, issue_code, login_page, respond, Failure};
use super::pages::{error_page, posted_form, PASSWORDS_OFF};
use super::password_work;
use crate::authentication::Authenticated;
use crate::oauth::OAuthError;
use crate::state::AppState;

/// `POST /login`: the login form.
pub(crate) async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> HttpResponse {
    if !state.config.passwords {
        return error_page(StatusCode::FORBIDDEN, PASSWORDS_OFF);
    }
    let params = match posted_form(&req, body, true).await {
        Ok(params) => params,
        Err(page) => return page,
    };
    let outcome = password_work(&state, move |state| {
        let request = match check(state, &params) {
            Ok(request) => request,
            Err(failure) => return Ok((params, Err(failure))),
        };
        let user = state
            .users
            .authenticate(
                params.get("username").unwrap_or_default(),
                params.get("password").unwrap_or_default(),
            )
            .map_err(OAuthError::internal)?;
        let Some(user) = user else {
            return Ok((params, Ok((request, None))));
        };
        let who = Authenticated::by_password(&user.subject, milagro_service::unix_now());
        let code = issue_code(state, &request, &who)?;
        Ok((params, Ok((request, Some(code)))))
    })
    .await;
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(busy) => return busy,
    };
    match outcome {
        Ok((_, Ok((request, Some(code))))) => deliver_code(&state, &request, &code),
        Ok((params, Ok((request, None)))) => login_page(
            &state,
            &req,
            &params,
            &request,
            Some("Wrong username or password."),
        ),
        Ok((_, Err(failure))) => respond(&state, failure),
        Err(error) => respond(&state, Failure::Server(error)),
    }
}
