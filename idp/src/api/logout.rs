//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): `GET, POST /logout`,
//! the `end_session_endpoint`.
//!
//! It ends the browser's login session (the cookie's row is deleted and the cookie
//! cleared) and tells every client that got a code in it by back-channel
//! ([`crate::backchannel`]). Then the browser goes to `post_logout_redirect_uri` (with
//! `state`) only if the client, named by `client_id` or by the `id_token_hint`'s `aud`,
//! registered that URI byte for byte: else a page says the person is signed out, so the
//! endpoint redirects nowhere a client did not register (no open redirect).
//!
//! Another site could send a browser here to log the person out against their will; so
//! the session is ended at once only when the request proves it comes from a client of
//! that session: an `id_token_hint` this IdP signed (expired or not), for the session's
//! person (and `sid`, when it has one). Otherwise the person is asked, with a form
//! protected by the CSRF token of [`super::pages`].

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::pages::{self, csrf_token, error_page, hidden, posted_form};
use super::{blocking, session, Params};
use crate::backchannel;
use crate::clients::Client;
use crate::state::AppState;

/// The parameters the confirmation form carries.
const CARRIED: [&str; 4] = [
    "id_token_hint",
    "post_logout_redirect_uri",
    "state",
    "client_id",
];

/// What a checked logout request asks.
struct Logout {
    /// The client it names, if any.
    client: Option<Client>,
    /// Where to send the browser after (registered by `client`).
    redirect: Option<String>,
    /// The ID token hint's claims, if it had a valid one.
    hint: Option<Value>,
}

/// `GET /logout?…`
pub(crate) async fn logout_get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match Params::parse(req.query_string().as_bytes()) {
        Ok(params) => logout(req, state, params, false).await,
        Err(error) => error_page(StatusCode::BAD_REQUEST, error.description()),
    }
}

/// `POST /logout` (form): a client's logout request, or the person's confirmation.
pub(crate) async fn logout_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> HttpResponse {
    let params = match posted_form(&req, body, false).await {
        Ok(params) => params,
        Err(page) => return page,
    };
    // A confirmation must carry this browser's CSRF token.
    let confirmed = params.get("confirm") == Some("yes");
    if confirmed && !pages::csrf_matches(&req, params.get("csrf")) {
        return error_page(
            StatusCode::FORBIDDEN,
            "the form's CSRF token does not match this browser's; reload the page",
        );
    }
    logout(req, state, params, confirmed).await
}

async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: Params,
    confirmed: bool,
) -> HttpResponse {
    let cookie = session::cookie(&req);
    let outcome = blocking(&state, move |state| {
        let logout = match check(state, &params) {
            Ok(logout) => logout,
            Err(message) => return Ok(Err(message)),
        };
        let now = milagro_service::unix_now();
        let session = match cookie.as_deref() {
            Some(cookie) => state.sessions.get(cookie, now)?,
            None => None,
        };
        let proven = match (&session, &logout.hint) {
            (Some(session), Some(hint)) => {
                hint["sub"].as_str() == Some(session.who.subject.as_str())
                    && hint["sid"]
                        .as_str()
                        .is_none_or(|sid| sid == session.sid.as_str())
            }
            _ => false,
        };
        if session.is_some() && !proven && !confirmed {
            return Ok(Ok((logout, params, false)));
        }
        if let (Some(cookie), Some(_)) = (cookie.as_deref(), &session) {
            if let Some(ended) = state.sessions.end(cookie, now)? {
                let mut clients = Vec::new();
                for id in &ended.clients {
                    clients.extend(state.clients.get(id)?);
                }
                let sent =
                    backchannel::deliveries(&state.keys, state.issuer(), &clients, &ended, now);
                state.notifier.send(sent);
                tracing::info!("a login session ended by logout");
            }
        }
        Ok(Ok((logout, params, true)))
    })
    .await;
    match outcome {
        Ok(Ok((logout, _, true))) => signed_out(&state, &logout),
        Ok(Ok((_, params, false))) => confirm_page(&state, &req, &params),
        Ok(Err(message)) => error_page(StatusCode::BAD_REQUEST, &message),
        Err(error) => error_page(
            actix_web::ResponseError::status_code(&error),
            error.description(),
        ),
    }
}

/// Checks the request's client, hint and redirect URI.
fn check(state: &AppState, params: &Params) -> Result<Logout, String> {
    let hint = match params.get("id_token_hint") {
        Some(token) => {
            let claims = state
                .keys
                .verify_own(token)
                .filter(|c| c["iss"].as_str() == Some(state.issuer()))
                .ok_or("the id_token_hint is not an ID token of this IdP")?;
            Some(claims)
        }
        None => None,
    };
    let hinted = hint.as_ref().and_then(|h| match &h["aud"] {
        Value::String(aud) => Some(aud.clone()),
        Value::Array(auds) => auds.first().and_then(Value::as_str).map(str::to_owned),
        _ => None,
    });
    let client_id = match (params.get("client_id"), hinted) {
        (Some(named), Some(hinted)) if named != hinted => {
            return Err("client_id is not the id_token_hint's audience".into())
        }
        (Some(named), _) => Some(named.to_owned()),
        (None, hinted) => hinted,
    };
    let client = match client_id {
        Some(id) => Some(
            state
                .clients
                .get(&id)
                .map_err(|e| e.description().to_owned())?
                .ok_or("the client is not registered here")?,
        ),
        None => None,
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let registered = client
                .as_ref()
                .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
            if !registered {
                return Err("the post_logout_redirect_uri is not one the client registered".into());
            }
            Some(uri.to_owned())
        }
    };
    Ok(Logout {
        client,
        redirect: redirect.map(|uri| with_state(&uri, params.get("state"))),
        hint,
    })
}

/// `uri` with `state` appended to its query, if there is one.
fn with_state(uri: &str, state: Option<&str>) -> String {
    match state {
        Some(value) => {
            let query = serde_urlencoded::to_string([("state", value)]).unwrap_or_default();
            let separator = if uri.contains('?') { '&' } else { '?' };
            format!("{uri}{separator}{query}")
        }
        None => uri.to_owned(),
    }
}

/// After the logout: the registered redirect, or a page; the cookie cleared either way.
fn signed_out(state: &AppState, logout: &Logout) -> HttpResponse {
    let mut answer = match &logout.redirect {
        Some(uri) => HttpResponse::SeeOther()
            .insert_header(("Location", uri.as_str()))
            .insert_header(("Cache-Control", "no-store"))
            .finish(),
        None => {
            let name = logout
                .client
                .as_ref()
                .and_then(|c| c.client_name.as_deref())
                .unwrap_or("the application");
            let body = format!(
                "<p id=\"signed-out\">You are signed out. You may close this page or go back to {}.</p>",
                pages::escape(name)
            );
            pages::page(StatusCode::OK, "Signed out", &body, None, false)
        }
    };
    session::clear_cookie(state, &mut answer);
    answer
}

/// Asks the person whether to sign out.
fn confirm_page(state: &AppState, req: &HttpRequest, params: &Params) -> HttpResponse {
    let csrf = csrf_token(req);
    let mut fields: Vec<(&str, &str)> = CARRIED
        .iter()
        .filter_map(|name| params.get(name).map(|v| (*name, v)))
        .collect();
    fields.push(("csrf", &csrf));
    fields.push(("confirm", "yes"));
    let body = format!(
        "<p>Sign out of {}?</p><form method=\"post\" action=\"/logout\">{}\
         <button id=\"confirm\" type=\"submit\">Sign out</button></form>",
        pages::escape(&state.config.party.name),
        hidden(&fields)
    );
    pages::page(
        StatusCode::OK,
        "Sign out",
        &body,
        Some(&csrf),
        state.issuer().starts_with("https://"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_appended_to_the_registered_uri() {
        assert_eq!(
            with_state("https://rp/out", Some("a b")),
            "https://rp/out?state=a+b"
        );
        assert_eq!(
            with_state("https://rp/out?x=1", Some("s")),
            "https://rp/out?x=1&state=s"
        );
        assert_eq!(with_state("https://rp/out", None), "https://rp/out");
    }
}
