//! The consent screen: a person approves (or denies) a client they have not approved
//! before for these scopes, unless the operator vouches for the client (first-party,
//! `[consent] first_party_clients`; dynamically registered clients never are).
//!
//! It is shown only to a browser with a live login session ([`super::session`]), and it
//! posts to `POST /consent` with the request's parameters (checked again) and the CSRF
//! token of [`super::pages`]: another site can neither read the token nor forge the
//! approval. An approval is remembered per person, client and scopes (`[consent]
//! remember_secs`, [`crate::sessions::Consents`]); a denial sends `access_denied` to
//! the client and is not remembered.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::authorize::{check, code_in_session, deliver_code, respond, Failure, Issued, Request};
use super::pages::{self, csrf_token, hidden, posted_form};
use super::{blocking, session};
use crate::oauth::OAuthError;
use crate::state::AppState;

/// Whether `subject` must be asked before `request`'s client gets a code: not for a
/// first-party client; else when `prompt=consent` asks, or when no live approval covers
/// the scopes. Blocking (sled).
pub(crate) fn needed(
    state: &AppState,
    request: &Request,
    subject: &str,
    now: u64,
) -> Result<bool, OAuthError> {
    if state
        .config
        .consent
        .is_first_party(&request.client.client_id)
    {
        return Ok(false);
    }
    if request.prompt.consent {
        return Ok(true);
    }
    Ok(!state
        .consents
        .covers(subject, &request.client.client_id, &request.scope, now)?)
}

/// The consent screen for `request`, as the authorization endpoint shows it.
pub(crate) fn page(state: &AppState, req: &HttpRequest, request: &Request) -> HttpResponse {
    let csrf = csrf_token(req);
    let mut fields: Vec<(&str, &str)> = request
        .carried
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    fields.push(("csrf", &csrf));
    let name = request
        .client
        .client_name
        .as_deref()
        .unwrap_or(&request.client.client_id);
    let scopes: String = request
        .scope
        .split(' ')
        .map(|s| format!("<li class=\"scope\">{}</li>", pages::escape(describe(s))))
        .collect();
    let body = format!(
        "<p><strong id=\"client\">{}</strong> asks to:</p><ul id=\"scopes\">{scopes}</ul>\
         <form method=\"post\" action=\"/consent\">{}\
         <button id=\"approve\" type=\"submit\" name=\"decision\" value=\"approve\">Allow</button> \
         <button id=\"deny\" type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>\
         <p class=\"muted\">Client id: {}</p>",
        pages::escape(name),
        hidden(&fields),
        pages::escape(&request.client.client_id),
    );
    pages::page(
        StatusCode::OK,
        &format!("Allow {name}?"),
        &body,
        Some(&csrf),
        state.issuer().starts_with("https://"),
    )
}

/// What a scope lets the client do, in words.
fn describe(scope: &str) -> &str {
    match scope {
        "openid" => "know who you are (your subject identifier)",
        "profile" => "see your username",
        "offline_access" => "stay signed in on your behalf (refresh tokens)",
        other => other,
    }
}

/// `POST /consent`: the person's choice (`decision=approve` or `deny`), with the
/// request's parameters and the CSRF token.
pub(crate) async fn decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> HttpResponse {
    let params = match posted_form(&req, body, true).await {
        Ok(params) => params,
        Err(page) => return page,
    };
    let cookie = session::cookie(&req);
    let outcome = blocking(&state, move |state| {
        let request = match check(state, &params) {
            Ok(request) => request,
            Err(failure) => return Ok(Err(failure)),
        };
        // The choice first: a client the person denies does not join their session.
        match params.get("decision") {
            Some("approve") => {}
            Some("deny") => {
                let failure = Failure::to_client(&request, "access_denied", "the person refused");
                return Ok(Err(failure));
            }
            _ => {
                let failure =
                    Failure::Show(StatusCode::BAD_REQUEST, "approve or deny the client".into());
                return Ok(Err(failure));
            }
        }
        let now = milagro_service::unix_now();
        let session = match cookie.as_deref() {
            Some(cookie) => state
                .sessions
                .join(cookie, &request.client.client_id, now)?,
            None => None,
        };
        let Some(session) = session else {
            let failure = Failure::to_client(
                &request,
                "login_required",
                "the sign-in ended before the client was approved",
            );
            return Ok(Err(failure));
        };
        let remember = now.saturating_add(state.config.consent.remember.as_secs());
        state.consents.remember(
            &session.who.subject,
            &request.client.client_id,
            &request.scope,
            remember,
        )?;
        let code = code_in_session(state, &request, &session.who, Some(&session.sid))?;
        Ok(Ok((request, Issued::code(code))))
    })
    .await;
    match outcome {
        Ok(Ok((request, issued))) => deliver_code(&state, &request, &issued),
        Ok(Err(failure)) => respond(&state, failure),
        Err(error) => respond(&state, Failure::Server(error)),
    }
}
