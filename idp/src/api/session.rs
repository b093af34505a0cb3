//! The login session at the authorization endpoint: its cookie, and what a request with
//! (or without) one gets before any page is shown (OpenID Connect Core §3.1.2.1, §3.1.2.3).
//!
//! The cookie holds the session's secret id ([`crate::sessions`]): `HttpOnly` (no script
//! reads it), `SameSite=Lax` (sent when a relying party sends the browser here, not with
//! another site's POSTs or subrequests), `Secure` when the issuer is `https`, path `/`,
//! and `Max-Age` the session's lifetime.

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::{HttpRequest, HttpResponse};

use super::authorize::{code_in_session, Issued, Request};
use super::consent;
use crate::oauth::OAuthError;
use crate::state::AppState;

/// The login session cookie.
pub const SESSION_COOKIE: &str = "milagro_idp_session";

/// What `prompt` asks for (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Prompt {
    /// `none`: show no page at all.
    pub(crate) none: bool,
    /// `login`: authenticate again, whatever session there is.
    pub(crate) login: bool,
    /// `consent`: ask for consent, whatever was approved before.
    pub(crate) consent: bool,
}

impl Prompt {
    /// Parses `prompt` (space-separated values); `select_account` is accepted and means
    /// nothing here (a browser has one session).
    pub(crate) fn parse(prompt: Option<&str>) -> Result<Self, &'static str> {
        let mut parsed = Self::default();
        let mut values = 0;
        for value in prompt
            .unwrap_or_default()
            .split(' ')
            .filter(|v| !v.is_empty())
        {
            values += 1;
            match value {
                "none" => parsed.none = true,
                "login" => parsed.login = true,
                "consent" => parsed.consent = true,
                "select_account" => {}
                _ => return Err("prompt is none, login, consent or select_account"),
            }
        }
        if parsed.none && values > 1 {
            return Err("prompt=none goes with no other value");
        }
        Ok(parsed)
    }
}

/// What a checked authorization request gets before any page is shown.
pub(crate) enum Decision {
    /// The sign-in page.
    SignIn,
    /// The consent screen (the browser has a live session).
    Consent,
    /// A code, without any page.
    Issued(Issued),
    /// An error back to the client (`login_required`, `consent_required`).
    Refuse(&'static str, &'static str),
}

/// The session cookie's value, if the browser sent one.
pub(crate) fn cookie(req: &HttpRequest) -> Option<String> {
    req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned())
}

/// Decides `request` for the browser whose session cookie is `cookie`: a live session
/// that `prompt` and `max_age` accept is reused (single sign-on); else the sign-in page,
/// or, with `prompt=none`, `login_required`. Blocking (sled).
pub(crate) fn decide(
    state: &AppState,
    request: &Request,
    cookie: Option<&str>,
) -> Result<Decision, OAuthError> {
    let now = milagro_service::unix_now();
    let session = match cookie {
        Some(cookie) => state.sessions.get(cookie, now)?,
        None => None,
    };
    let usable = session.filter(|s| {
        !request.prompt.login
            && request
                .max_age
                .is_none_or(|age| now.saturating_sub(s.who.auth_time) <= age)
    });
    let (Some(session), Some(cookie)) = (usable, cookie) else {
        return Ok(if request.prompt.none {
            Decision::Refuse("login_required", "the person is not signed in here")
        } else {
            Decision::SignIn
        });
    };
    if consent::needed(state, request, &session.who.subject, now)? {
        return Ok(if request.prompt.none {
            Decision::Refuse(
                "consent_required",
                "the person has not approved this client",
            )
        } else {
            Decision::Consent
        });
    }
    state
        .sessions
        .join(cookie, &request.client.client_id, now)?;
    let code = code_in_session(state, request, &session.who, Some(&session.sid))?;
    Ok(Decision::Issued(Issued::code(code)))
}

/// Sets the cookie of the new session `id` on `answer`.
pub(crate) fn set_cookie(state: &AppState, answer: &mut HttpResponse, id: &str) {
    let lifetime = i64::try_from(state.config.session_lifetime.as_secs()).unwrap_or(i64::MAX);
    let cookie = Cookie::build(SESSION_COOKIE, id.to_owned())
        .path("/")
        .http_only(true)
        .secure(state.issuer().starts_with("https://"))
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(lifetime))
        .finish();
    if let Err(error) = answer.add_cookie(&cookie) {
        tracing::warn!(%error, "the session cookie could not be set");
    }
}

/// Removes the session cookie from the browser (at logout).
pub(crate) fn clear_cookie(state: &AppState, answer: &mut HttpResponse) {
    let mut cookie = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .secure(state.issuer().starts_with("https://"))
        .same_site(SameSite::Lax)
        .finish();
    cookie.make_removal();
    if let Err(error) = answer.add_cookie(&cookie) {
        tracing::warn!(%error, "the session cookie could not be cleared");
    }
}

/// A 303 back to the authorization request (after a sign-in, for the consent screen),
/// without `prompt=login` and `max_age`, which the sign-in just satisfied: kept, they
/// would send the browser to sign in again, for ever.
pub(crate) fn back_to_authorize(state: &AppState, request: &Request) -> HttpResponse {
    let pairs: Vec<(&str, String)> = request
        .carried
        .iter()
        .filter(|(name, _)| *name != "max_age")
        .map(|(name, value)| match *name {
            "prompt" => (
                *name,
                value
                    .split(' ')
                    .filter(|v| *v != "login")
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            _ => (*name, value.clone()),
        })
        .filter(|(_, value)| !value.is_empty())
        .collect();
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    HttpResponse::SeeOther()
        .insert_header(("Location", format!("{}/authorize?{query}", state.issuer())))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_values_are_parsed_and_none_stands_alone() {
        assert_eq!(Prompt::parse(None), Ok(Prompt::default()));
        let both = Prompt::parse(Some("login consent")).unwrap_or_default();
        assert!(both.login && both.consent && !both.none);
        assert!(Prompt::parse(Some("none")).is_ok_and(|p| p.none));
        assert!(Prompt::parse(Some("none login")).is_err());
        assert!(Prompt::parse(Some("sometimes")).is_err());
        assert!(Prompt::parse(Some("select_account")).is_ok());
    }
}
