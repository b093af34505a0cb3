//! The authorization endpoint and its login page (OpenID Connect Core §3.1.2, RFC 6749
//! §4.1, RFC 7636).
//!
//! A request is checked in two stages, as RFC 6749 §4.1.2.1 requires: while the client
//! or the redirect URI is in doubt (unknown client, a redirect URI not registered
//! byte for byte), the error is shown to the person and nobody is redirected; once both
//! are known good, every other error goes back to the client as `error=…&state=…&iss=…`.
//! Public clients must send a PKCE S256 challenge; `plain` is refused for everyone.
//!
//! Before any page is shown, the browser's login session decides ([`super::session`]):
//! with a live one that `prompt` and `max_age` accept, the request completes without a
//! sign-in (single sign-on), or shows the consent screen ([`super::consent`]);
//! `prompt=none` never shows a page (`login_required`, `consent_required`).
//!
//! With `[mpin]`, the page shown is the M-Pin sign-in page ([`crate::signin`]: a QR code
//! and an access number, approved from the person's device); it reloads from
//! `/authorize/wait`. A sign-in ends every request the same way ([`issue_code`],
//! [`deliver_code`]): the authentication logged in the activity log, a new login
//! session, a single-use code handed to the client with `code`, `state` and `iss` (RFC
//! 9207), a 303 to the redirect URI or with `response_mode=form_post` a page that posts
//! them there ([`super::form_post`]). Unknown scopes are dropped (RFC 6749 §3.3 lets the
//! server grant fewer), and the token response names what was granted.
//!
//! While an operator keeps passwords on (`[passwords]`), the password form is one link
//! away (`login_method=password`), or the page itself without `[mpin]`; it carries the
//! request's parameters back (checked again on `POST /login`,
//! [`super::password_login`]) and a CSRF token. With neither, the page says that nobody
//! can sign in here (503).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use zeroize::Zeroizing;

use super::pages::{self, credentials, csrf_token, error_page, hidden, page, posted_form};
use super::session::{self, Decision, Prompt};
use super::{blocking, consent, signin_page, Params};
use crate::authentication::Authenticated;
use crate::clients::{AuthMethod, Client, GRANT_CODE};
use crate::grants::Authorization;
use crate::oauth::OAuthError;
use crate::scopes::granted_scopes;
use crate::state::AppState;

/// The parameters carried from the authorization request to the login form.
pub(crate) const CARRIED: [&str; 11] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "prompt",
    "max_age",
];

/// A checked authorization request.
pub(crate) struct Request {
    pub(crate) client: Client,
    pub(crate) redirect_uri: String,
    pub(crate) scope: String,
    pub(crate) state: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) code_challenge: Option<String>,
    /// `response_mode=form_post`: the answer is a form posted to the redirect URI.
    pub(crate) form_post: bool,
    /// What `prompt` asks for.
    pub(crate) prompt: Prompt,
    /// `max_age`: the longest time since the sign-in a session may be reused after.
    pub(crate) max_age: Option<u64>,
    /// The request's parameters of [`CARRIED`], to come back to it (after a sign-in,
    /// for the consent screen).
    pub(crate) carried: Vec<(&'static str, String)>,
}

/// Why a request failed: shown to the person, or sent back to the client.
pub(crate) enum Failure {
    Show(StatusCode, String),
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        form_post: bool,
        error: &'static str,
        description: String,
    },
    Server(OAuthError),
}

impl Failure {
    /// The error `error` sent back to the client of `request`.
    pub(crate) fn to_client(request: &Request, error: &'static str, description: &str) -> Self {
        Self::Redirect {
            redirect_uri: request.redirect_uri.clone(),
            state: request.state.clone(),
            form_post: request.form_post,
            error,
            description: description.to_owned(),
        }
    }
}

impl From<OAuthError> for Failure {
    fn from(error: OAuthError) -> Self {
        Self::Server(error)
    }
}

/// Checks an authorization request's parameters (again at each step: the form carries them).
pub(crate) fn check(state: &AppState, params: &Params) -> Result<Request, Failure> {
    let show = |message: &str| Failure::Show(StatusCode::BAD_REQUEST, message.to_owned());
    let client_id = params
        .get("client_id")
        .ok_or_else(|| show("the request names no client_id"))?;
    let client = state
        .clients
        .get(client_id)?
        .ok_or_else(|| show("the client is not registered here"))?;
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.to_owned(),
        Some(_) => return Err(show("the redirect_uri is not one the client registered")),
        None => return Err(show("the request has no redirect_uri")),
    };
    let state_param = params.get("state").map(str::to_owned);
    // Known first: every later error is answered in the mode asked for.
    let mode = params.get("response_mode");
    let form_post = mode == Some("form_post");
    let fail = |error: &'static str, description: &str| Failure::Redirect {
        redirect_uri: redirect_uri.clone(),
        state: state_param.clone(),
        form_post,
        error,
        description: description.to_owned(),
    };
    if mode.is_some_and(|m| m != "query" && m != "form_post") {
        return Err(fail(
            "invalid_request",
            "response_mode is query or form_post",
        ));
    }
    if params.get("response_type") != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    if !client.allows(GRANT_CODE) {
        return Err(fail(
            "unauthorized_client",
            "the client did not register the authorization_code grant",
        ));
    }
    if params.get("request").is_some() || params.get("request_uri").is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    let scopes = granted_scopes(params.get("scope").unwrap_or_default());
    if !scopes.contains(&"openid") {
        return Err(fail("invalid_scope", "the scope must include openid"));
    }
    let prompt = Prompt::parse(params.get("prompt")).map_err(|why| fail("invalid_request", why))?;
    let max_age = params
        .get("max_age")
        .map(|age| age.parse::<u64>())
        .transpose()
        .map_err(|_| fail("invalid_request", "max_age is a number of seconds"))?;
    let code_challenge = params.get("code_challenge").map(str::to_owned);
    match (&code_challenge, params.get("code_challenge_method")) {
        (None, None) if client.auth_method == AuthMethod::None => {
            return Err(fail(
                "invalid_request",
                "public clients must use PKCE (S256)",
            ))
        }
        (None, None) => {}
        (Some(challenge), Some("S256")) if is_s256_challenge(challenge) => {}
        (Some(_), Some("S256")) => return Err(fail("invalid_request", "malformed code_challenge")),
        _ => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256, with a code_challenge",
            ))
        }
    }
    let nonce = params.get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > 512)
        || state_param.as_ref().is_some_and(|s| s.len() > 2048)
    {
        return Err(fail("invalid_request", "nonce or state too long"));
    }
    Ok(Request {
        client,
        redirect_uri,
        scope: scopes.join(" "),
        state: state_param,
        nonce,
        code_challenge,
        form_post,
        prompt,
        max_age,
        carried: CARRIED
            .iter()
            .filter_map(|name| params.get(name).map(|v| (*name, v.to_owned())))
            .collect(),
    })
}

/// A base64url SHA-256 (43 characters, no padding).
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The authorization response: the response parameters with `state` and `iss`, sent to
/// `redirect_uri` in its query (a 303) or, with `form_post`, by a form the page posts.
fn redirect(
    state: &AppState,
    redirect_uri: &str,
    pairs: &[(&str, &str)],
    client_state: Option<&str>,
    form_post: bool,
) -> HttpResponse {
    let mut all: Vec<(&str, &str)> = pairs.to_vec();
    if let Some(s) = client_state {
        all.push(("state", s));
    }
    all.push(("iss", state.issuer()));
    if form_post {
        return super::form_post::page(redirect_uri, &all);
    }
    let query = serde_urlencoded::to_string(&all).unwrap_or_default();
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    HttpResponse::SeeOther()
        .insert_header(("Location", format!("{redirect_uri}{separator}{query}")))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// The answer to a failed request: an error page, or the error sent to the client.
pub(crate) fn respond(state: &AppState, failure: Failure) -> HttpResponse {
    match failure {
        Failure::Show(status, message) => error_page(status, &message),
        Failure::Redirect {
            redirect_uri,
            state: client_state,
            form_post,
            error,
            description,
        } => redirect(
            state,
            &redirect_uri,
            &[("error", error), ("error_description", &description)],
            client_state.as_deref(),
            form_post,
        ),
        Failure::Server(error) => error_page(error_status(&error), error.description()),
    }
}

fn error_status(error: &OAuthError) -> StatusCode {
    actix_web::ResponseError::status_code(error)
}

pub(super) fn login_page(
    state: &AppState,
    req: &HttpRequest,
    params: &Params,
    request: &Request,
    error: Option<&str>,
) -> HttpResponse {
    let password_asked =
        state.config.passwords && params.get(signin_page::LOGIN_METHOD) == Some("password");
    if let (Some(mpin), None, false) = (&state.mpin, error, password_asked) {
        return signin_page::mpin_page(state, mpin, req, params, request);
    }
    if !state.config.passwords {
        tracing::warn!(
            "an authorization request found no sign-in method: [mpin] and [passwords] are both off"
        );
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "This IdP offers no way to sign in yet: its operator has configured neither \
             M-Pin sign-in ([mpin]) nor passwords ([passwords]).",
        );
    }
    let csrf = csrf_token(req);
    let mut fields: Vec<(&str, &str)> = CARRIED
        .iter()
        .filter_map(|name| params.get(name).map(|v| (*name, v)))
        .collect();
    fields.push(("csrf", &csrf));
    let name = request
        .client
        .client_name
        .as_deref()
        .unwrap_or(&request.client.client_id);
    let body = format!(
        "<p class=\"muted\">to continue to <strong id=\"client\">{}</strong></p>{}",
        pages::escape(name),
        credentials(
            "/login",
            &hidden(&fields),
            "Sign in",
            error,
            params.get("username").unwrap_or_default()
        )
    );
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let secure = state.issuer().starts_with("https://");
    page(
        status,
        &format!("Sign in to {}", state.config.party.name),
        &body,
        Some(&csrf),
        secure,
    )
}

/// `GET /authorize?…`
pub(crate) async fn authorize_get(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match Params::parse(req.query_string().as_bytes()) {
        Ok(params) => show_login(req, state, params).await,
        Err(error) => error_page(StatusCode::BAD_REQUEST, error.description()),
    }
}

/// `POST /authorize` (form), as OpenID Connect Core §3.1.2.1 allows.
pub(crate) async fn authorize_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> HttpResponse {
    match posted_form(&req, body, false).await {
        Ok(params) => show_login(req, state, params).await,
        Err(page) => page,
    }
}

async fn show_login(req: HttpRequest, state: web::Data<AppState>, params: Params) -> HttpResponse {
    let cookie = session::cookie(&req);
    let checked = blocking(&state, move |state| {
        let decided = match check(state, &params) {
            Ok(request) => {
                let decision = session::decide(state, &request, cookie.as_deref())?;
                Ok((request, decision))
            }
            Err(failure) => Err(failure),
        };
        Ok((decided, params))
    })
    .await;
    match checked {
        Ok((Ok((request, Decision::SignIn)), params)) => {
            login_page(&state, &req, &params, &request, None)
        }
        Ok((Ok((request, Decision::Consent)), _)) => consent::page(&state, &req, &request),
        Ok((Ok((request, Decision::Issued(issued))), _)) => deliver_code(&state, &request, &issued),
        Ok((Ok((request, Decision::Refuse(error, why))), _)) => {
            respond(&state, Failure::to_client(&request, error, why))
        }
        Ok((Err(failure), _)) => respond(&state, failure),
        Err(error) => respond(&state, Failure::Server(error)),
    }
}

/// What ends a request after a sign-in: the code (none while the person has still to
/// approve the client) and the new login session's id, for the cookie.
pub(crate) struct Issued {
    code: Option<Zeroizing<String>>,
    session: Option<Zeroizing<String>>,
}

/// Ends `request` for the person `who`, whatever method they authenticated with: logs the
/// authentication in the activity log, starts a new login session (a new id, never one
/// the browser brought: no session fixation) and, unless the person has still to approve
/// the client, issues the single-use code. Blocking (sled).
pub(crate) fn issue_code(
    state: &AppState,
    request: &Request,
    who: &Authenticated,
) -> Result<Issued, OAuthError> {
    state.log_authentication(&who.subject, who.auth_time)?;
    let now = milagro_service::unix_now();
    let expires = now.saturating_add(state.config.session_lifetime.as_secs());
    let (id, session) = state
        .sessions
        .create(who, &request.client.client_id, expires)?;
    let code = if consent::needed(state, request, &who.subject, now)? {
        None
    } else {
        Some(code_in_session(state, request, who, Some(&session.sid))?)
    };
    Ok(Issued {
        code,
        session: Some(id),
    })
}

/// A code for `request` from the person `who` of the login session `sid` (a sign-in just
/// now, or an earlier one reused). Blocking (sled).
pub(crate) fn code_in_session(
    state: &AppState,
    request: &Request,
    who: &Authenticated,
    sid: Option<&str>,
) -> Result<Zeroizing<String>, OAuthError> {
    let mut auth = Authorization::new(
        &request.client.client_id,
        who,
        &request.scope,
        request.nonce.clone(),
    );
    auth.sid = sid.map(str::to_owned);
    let expires = milagro_service::unix_now().saturating_add(state.config.tokens.code.as_secs());
    state.grants.issue_code(
        auth,
        &request.redirect_uri,
        request.code_challenge.clone(),
        expires,
    )
}

impl Issued {
    /// A code issued in an existing session (the browser keeps its cookie).
    pub(crate) fn code(code: Zeroizing<String>) -> Self {
        Self {
            code: Some(code),
            session: None,
        }
    }
}

/// The response that hands the code to the client: a 303 to its redirect URI with
/// `code`, `state` and `iss` (RFC 9207), or the form that posts them
/// (`response_mode=form_post`). Without a code (the client needs the person's consent),
/// a 303 back to the authorization request, which the new session then answers with
/// the consent screen. A new session's cookie is set either way.
pub(crate) fn deliver_code(state: &AppState, request: &Request, issued: &Issued) -> HttpResponse {
    let mut answer = match &issued.code {
        Some(code) => redirect(
            state,
            &request.redirect_uri,
            &[("code", code)],
            request.state.as_deref(),
            request.form_post,
        ),
        None => session::back_to_authorize(state, request),
    };
    if let Some(id) = &issued.session {
        session::set_cookie(state, &mut answer, id);
    }
    answer
}
