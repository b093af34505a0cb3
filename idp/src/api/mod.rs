//! The IdP's HTTP API: routes, and what handlers share (body reading, form parsing,
//! client authentication).
//!
//! | route | what |
//! |---|---|
//! | `GET /.well-known/openid-configuration` | provider metadata + Milagro fields |
//! | `GET /.well-known/webfinger` | RFC 7033 issuer discovery for `acct:` |
//! | `GET /.well-known/milagro/birth-certificate` | the anchored Birth Certificate |
//! | `GET /jwks` | the signing keys (RFC 7517) |
//! | `GET /jwks.jwt` | the same keys signed with the anchored key (`jwk-set+jwt`, ES256K) |
//! | `POST /register` | dynamic client registration (RFC 7591) |
//! | `GET, POST /authorize` | authorization endpoint: the login page |
//! | `POST /login` | the login form's target; redirects back with a code |
//! | `POST /consent` | the consent screen's target: approve or deny a client |
//! | `GET, POST /logout` | RP-initiated logout (`end_session_endpoint`) |
//! | `GET /authorize/wait` | the M-Pin sign-in page's reload; redirects back with a code once approved |
//! | `GET /v1/signin/request` | the request behind an access number (the device shows it) |
//! | `POST /v1/signin/commit`, `POST /v1/signin/prove` | the device's M-Pin passes approving a sign-in |
//! | `POST /bc-authorize` | backchannel authentication (OpenID Connect CIBA, poll mode) |
//! | `GET /v1/ciba/requests` | the CIBA requests waiting for the device's person (DPoP proof by its key) |
//! | `POST /v1/ciba/commit`, `POST /v1/ciba/prove` | the device's M-Pin passes approving a CIBA request |
//! | `POST /v1/ciba/deny` | the person denies a CIBA request (DPoP proof by the device's key) |
//! | `POST /token` | token endpoint: code, refresh token, device code, CIBA |
//! | `GET, POST /userinfo` | claims about the token's user |
//! | `POST /revoke` | token revocation (RFC 7009) |
//! | `POST /device_authorization` | device authorization (RFC 8628) |
//! | `GET, POST /device` | the device flow's user verification page |
//! | `POST /v1/devices` | a device registers its key as its person's (DPoP-bound token of the device grant) |
//! | `POST /v1/admin/users` | adds a user (admin token) |
//! | `POST /v1/admin/activation-codes` | a one-time code to register a device without a password (admin token) |
//! | `GET /v1/audit/checkpoint` | the newest signed checkpoint of the activity log |
//! | `GET /openapi.json` | the OpenAPI 3.1 document of these routes |
//!
//! A method a path does not serve gets 405 with `Allow`, an unknown path 404, both in
//! the one error shape; a JSON body (`/register`, `/v1/admin/users`) of another
//! `Content-Type` gets 415, while the OAuth endpoints take forms as RFC 6749 asks (a
//! token request of another type is 400 `invalid_request`).

mod admin;
mod authorize;
pub mod ciba;
mod consent;
mod device;
mod device_registration;
mod discovery;
mod enrolment;
mod form_post;
mod logout;
mod pages;
mod password_login;
mod register;
mod resource;
mod session;
pub mod signin;
mod signin_page;
mod token;
mod userinfo;

pub use session::SESSION_COOKIE;

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use milagro_service::health;
use milagro_service::routes::{document_route, register, Endpoint, OPENAPI_PATH};
use milagro_service::work_gate::GateError;
use zeroize::Zeroizing;

use crate::clients::{AuthMethod, Client};
use crate::oauth::OAuthError;
use crate::state::AppState;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every route the IdP serves, checked against its OpenAPI document (`idp/openapi.json`,
/// [`OPENAPI_JSON`], served at `/openapi.json`) by a test.
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint::new("get", "/.well-known/openid-configuration", || {
        web::get().to(discovery::configuration)
    }),
    Endpoint::new("get", "/.well-known/webfinger", || {
        web::get().to(discovery::webfinger)
    }),
    Endpoint::new("get", discovery::BIRTH_CERTIFICATE_PATH, || {
        web::get().to(discovery::birth_certificate)
    }),
    Endpoint::new("get", "/jwks", || web::get().to(discovery::jwks)),
    Endpoint::new("get", discovery::SIGNED_JWKS_PATH, || {
        web::get().to(discovery::signed_jwks)
    }),
    Endpoint::new("post", "/register", || web::post().to(register::register)),
    Endpoint::new("get", "/authorize", || {
        web::get().to(authorize::authorize_get)
    }),
    Endpoint::new("post", "/authorize", || {
        web::post().to(authorize::authorize_post)
    }),
    Endpoint::new("post", "/login", || web::post().to(password_login::login)),
    Endpoint::new("post", "/consent", || web::post().to(consent::decide)),
    Endpoint::new("get", "/logout", || web::get().to(logout::logout_get)),
    Endpoint::new("post", "/logout", || web::post().to(logout::logout_post)),
    Endpoint::new("get", signin_page::WAIT_PATH, || {
        web::get().to(signin_page::signin_wait)
    }),
    Endpoint::new("get", signin::REQUEST_PATH, || {
        web::get().to(signin::request)
    }),
    Endpoint::new("post", signin::COMMIT_PATH, || {
        web::post().to(signin::commit)
    }),
    Endpoint::new("post", signin::PROVE_PATH, || web::post().to(signin::prove)),
    Endpoint::new("post", ciba::BC_AUTHORIZE_PATH, || {
        web::post().to(ciba::bc_authorize)
    }),
    Endpoint::new("get", ciba::device::REQUESTS_PATH, || {
        web::get().to(ciba::device::requests)
    }),
    Endpoint::new("post", ciba::device::COMMIT_PATH, || {
        web::post().to(ciba::device::commit)
    }),
    Endpoint::new("post", ciba::device::PROVE_PATH, || {
        web::post().to(ciba::device::prove)
    }),
    Endpoint::new("post", ciba::device::DENY_PATH, || {
        web::post().to(ciba::device::deny)
    }),
    Endpoint::new("post", "/token", || web::post().to(token::token)),
    Endpoint::new("get", "/userinfo", || web::get().to(userinfo::userinfo)),
    Endpoint::new("post", "/userinfo", || web::post().to(userinfo::userinfo)),
    Endpoint::new("post", "/revoke", || web::post().to(userinfo::revoke)),
    Endpoint::new("post", "/device_authorization", || {
        web::post().to(device::device_authorization)
    }),
    Endpoint::new("get", "/device", || {
        web::get().to(device::verification_page)
    }),
    Endpoint::new("post", "/device", || web::post().to(device::verify)),
    Endpoint::new("post", device_registration::DEVICES_PATH, || {
        web::post().to(device_registration::register_device)
    }),
    Endpoint::new("post", "/v1/admin/users", || {
        web::post().to(admin::add_user)
    }),
    Endpoint::new("post", "/v1/admin/activation-codes", || {
        web::post().to(admin::issue_activation_code)
    }),
    Endpoint::new("get", "/v1/audit/checkpoint", || {
        web::get().to(admin::checkpoint)
    }),
    Endpoint::new("get", OPENAPI_PATH, || document_route(OPENAPI_JSON)),
    Endpoint::new("get", health::HEALTHZ_PATH, health::healthz_route),
    Endpoint::new("get", health::READYZ_PATH, health::readyz_route::<AppState>),
];

/// The OpenAPI 3.1 document describing [`ENDPOINTS`].
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

/// Registers every route: [`ENDPOINTS`], 405 with `Allow` for another method of their
/// paths, and a JSON 404 for any other path ([`milagro_service::routes::register`]).
pub fn configure(cfg: &mut web::ServiceConfig) {
    register(cfg, ENDPOINTS);
}

/// Runs blocking work (sled, argon2, signing) on actix's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &web::Data<AppState>,
    work: impl FnOnce(&AppState) -> Result<T, OAuthError> + Send + 'static,
) -> Result<T, OAuthError> {
    let state = state.clone();
    web::block(move || work(&state)).await?
}

/// Runs blocking work that checks a password (argon2id, the IdP's most expensive work
/// and reachable without credentials) behind [`AppState::password_checks`]: the work's
/// result, or, when the gate is full, the 503 page to answer with (`Retry-After`).
pub(crate) async fn password_work<T: Send + 'static>(
    state: &web::Data<AppState>,
    work: impl FnOnce(&AppState) -> Result<T, OAuthError> + Send + 'static,
) -> Result<Result<T, OAuthError>, HttpResponse> {
    let shared = AppState::clone(state);
    match state.password_checks.run(move || work(&shared)).await {
        Ok(result) => Ok(result),
        Err(GateError::Busy(busy)) => Err(pages::busy_page(&busy)),
        Err(lost) => Ok(Err(OAuthError::internal(lost))),
    }
}

/// Reads the body, refusing more than [`MAX_BODY_BYTES`] (413) and a body that did not
/// arrive in time (408, [`milagro_service::body_deadline`]).
pub(crate) async fn read_body(payload: web::Payload) -> Result<web::Bytes, OAuthError> {
    match payload.to_bytes_limited(MAX_BODY_BYTES).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if milagro_service::body_deadline::is_timeout(&e) => {
            Err(OAuthError::with_status(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                e.to_string(),
            ))
        }
        Ok(Err(e)) => Err(OAuthError::invalid_request(format!(
            "reading the body: {e}"
        ))),
        Err(_) => Err(OAuthError::with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body exceeds {MAX_BODY_BYTES} bytes"),
        )),
    }
}

/// Form (or query) parameters; RFC 6749 §3.1: none may appear twice.
#[derive(Debug, Default)]
pub(crate) struct Params(HashMap<String, Zeroizing<String>>);

impl Params {
    pub(crate) fn parse(encoded: &[u8]) -> Result<Self, OAuthError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(encoded)
            .map_err(|e| OAuthError::invalid_request(format!("malformed parameters: {e}")))?;
        let mut map = HashMap::with_capacity(pairs.len());
        for (key, value) in pairs {
            if map.insert(key.clone(), Zeroizing::new(value)).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {key} is repeated"
                )));
            }
        }
        Ok(Self(map))
    }

    /// A form body, which must be `application/x-www-form-urlencoded`.
    pub(crate) fn form(req: &HttpRequest, body: &[u8]) -> Result<Self, OAuthError> {
        let content_type = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        Self::parse(body)
    }

    /// An optional parameter (an empty value counts as absent, RFC 6749 §3.1).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(|v| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// A required parameter.
    pub(crate) fn require(&self, key: &str) -> Result<&str, OAuthError> {
        self.get(key)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {key}")))
    }
}

/// A client's form request to a token-endpoint-style route (token, revocation, device
/// authorization): its parameters and any Basic credentials, read before the blocking
/// work.
pub(crate) struct ClientForm {
    pub(crate) params: Params,
    basic: Option<(String, Zeroizing<String>)>,
}

impl ClientForm {
    pub(crate) async fn read(req: &HttpRequest, body: web::Payload) -> Result<Self, OAuthError> {
        let params = Params::form(req, &read_body(body).await?)?;
        let basic = basic_credentials(req)?;
        Ok(Self { params, basic })
    }

    /// The client, authenticated as it registered to.
    pub(crate) fn authenticate(&self, state: &AppState) -> Result<Client, OAuthError> {
        authenticate_client(state, self.basic.clone(), &self.params)
    }
}

/// The Bearer token of `Authorization`, if any.
pub(crate) fn bearer(req: &HttpRequest) -> Option<String> {
    match access_token(req)? {
        (Scheme::Bearer, token) => Some(token),
        (Scheme::Dpop, _) => None,
    }
}

/// How an access token was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `Authorization: Bearer` (RFC 6750).
    Bearer,
    /// `Authorization: DPoP`, with a proof in the `DPoP` header (RFC 9449 §7.1).
    Dpop,
}

/// The access token of `Authorization` and its scheme, if it is Bearer or DPoP.
pub(crate) fn access_token(req: &HttpRequest) -> Option<(Scheme, String)> {
    let header = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = header.split_once(' ')?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return None;
    };
    Some((scheme, token.trim().to_owned()))
}

/// Authenticates the client of a token-endpoint-style request (RFC 6749 §2.3): HTTP
/// Basic, or `client_secret` in the body, or a public client naming itself; the method
/// must be the one it registered.
fn authenticate_client(
    state: &AppState,
    basic: Option<(String, Zeroizing<String>)>,
    params: &Params,
) -> Result<Client, OAuthError> {
    let body_secret = params.get("client_secret");
    let (client_id, secret, method) = match (basic, body_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ))
        }
        (Some((id, secret)), None) => (id, Some(secret), AuthMethod::ClientSecretBasic),
        (None, Some(secret)) => (
            params.require("client_id")?.to_owned(),
            Some(Zeroizing::new(secret.to_owned())),
            AuthMethod::ClientSecretPost,
        ),
        (None, None) => (
            params.require("client_id")?.to_owned(),
            None,
            AuthMethod::None,
        ),
    };
    if params.get("client_id").is_some_and(|id| id != client_id) {
        return Err(OAuthError::invalid_request(
            "client_id disagrees with the credentials",
        ));
    }
    let client = state
        .clients
        .get(&client_id)?
        .ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
    if client.auth_method != method {
        return Err(OAuthError::invalid_client(format!(
            "the client registered {:?} authentication",
            client.auth_method
        )));
    }
    if let Some(secret) = secret {
        if !client.secret_matches(&secret) {
            return Err(OAuthError::invalid_client("wrong client secret"));
        }
    }
    Ok(client)
}

/// The client id and secret of an `Authorization: Basic` header (both form-urlencoded,
/// RFC 6749 §2.3.1), if the header is Basic.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, Zeroizing<String>)>, OAuthError> {
    let Some(header) = req.headers().get("authorization") else {
        return Ok(None);
    };
    let bad = || OAuthError::invalid_client("malformed Basic credentials");
    let header = header.to_str().map_err(|_| bad())?;
    let Some((scheme, encoded)) = header.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = Zeroizing::new(STANDARD.decode(encoded.trim()).map_err(|_| bad())?);
    let text = std::str::from_utf8(&decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let id: String = form_decode(id).ok_or_else(bad)?;
    let secret = Zeroizing::new(form_decode(secret).ok_or_else(bad)?);
    Ok(Some((id, secret)))
}

fn form_decode(text: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={text}")).ok()?;
    pairs.into_iter().next().map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_describes_exactly_the_routed_endpoints() {
        let problems = milagro_service::routes::check_document(OPENAPI_JSON, ENDPOINTS);
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
