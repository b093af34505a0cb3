//! The HTTP API (plain HTTP: put a TLS-terminating proxy in front of it).
//!
//! | route | what |
//! |---|---|
//! | `GET /.well-known/milagro/birth-certificate` | the anchored Birth Certificate (its key verifies session tokens) |
//! | `GET /v1/status` | anchor, index tip, log size, the server secret's progress per D-TA |
//! | `POST /v1/login/commit` | [`CommitRequest`] → [`ChallengeAnswer`] |
//! | `POST /v1/login/prove` | [`ProveRequest`] → `{"session_token", "token_type": "Bearer", "expires_in", "mpin_id"}` |
//! | `GET /v1/session` | `Authorization: Bearer <session token>` → its verified claims |
//! | `POST /v1/admin/revocations` | `{"mpin_id"}` → 201 `{"mpin_id", "revoked_at"}` (200 if revoked before); admin token |
//! | `GET /v1/admin/revocations` | `{"revocations": [{"mpin_id", "revoked_at"}]}`; admin token |
//! | `GET /openapi.json` | the OpenAPI 3.1 document of these routes (`authserver/openapi.json`) |
//!
//! Errors are [`crate::error`]'s. The pairing check, point decoding and storage run on
//! actix's blocking pool, never on the async workers; both login passes go through
//! the verifier's `pairings`, a bounded queue that answers 503 `busy` (`Retry-After`) when
//! full.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use milagro_mpin::wire::{CommitRequest, ProveRequest};
use milagro_mpin::MpinId;
use milagro_service::api::{bearer, blocking, read_json, ApiError};
use milagro_service::health;
use milagro_service::routes::{document_route, register, Endpoint, OPENAPI_PATH};
use milagro_service::token::ApiToken;
use milagro_service::unix_now;
use milagro_service::well_known::{birth_certificate_document, party_status};
use milagro_wire::authserver::{Revocation, Revocations, RevokeRequest, Status};
use milagro_wire::login::SessionAnswer;

use milagro_anchor::purpose_keys::KeyPurpose;

use crate::error::AuthError;
use crate::session;
use crate::state::AppState;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// The path of the Birth Certificate document.
pub const BIRTH_CERTIFICATE_PATH: &str = "/.well-known/milagro/birth-certificate";
/// The path of pass 1.
pub const COMMIT_PATH: &str = "/v1/login/commit";
/// The path of pass 2.
pub const PROVE_PATH: &str = "/v1/login/prove";
/// The path that checks a session token.
pub const SESSION_PATH: &str = "/v1/session";
/// The path of the revocation list.
pub const REVOCATIONS_PATH: &str = "/v1/admin/revocations";

/// Every route, checked against `authserver/openapi.json` ([`OPENAPI_JSON`], served at
/// `/openapi.json`) by a test.
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint::new("get", BIRTH_CERTIFICATE_PATH, || {
        web::get().to(birth_certificate)
    }),
    Endpoint::new("get", "/v1/status", || web::get().to(status)),
    Endpoint::new("post", COMMIT_PATH, || web::post().to(commit)),
    Endpoint::new("post", PROVE_PATH, || web::post().to(prove)),
    Endpoint::new("get", SESSION_PATH, || web::get().to(session)),
    Endpoint::new("post", REVOCATIONS_PATH, || web::post().to(revoke)),
    Endpoint::new("get", REVOCATIONS_PATH, || web::get().to(revocations)),
    Endpoint::new("get", OPENAPI_PATH, || document_route(OPENAPI_JSON)),
    Endpoint::new("get", health::HEALTHZ_PATH, health::healthz_route),
    Endpoint::new("get", health::READYZ_PATH, health::readyz_route::<AppState>),
];

/// The OpenAPI 3.1 document of [`ENDPOINTS`].
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// Registers every route (405 with `Allow` for another method, JSON 404 for another path:
/// [`milagro_service::routes::register`]).
pub fn configure(cfg: &mut web::ServiceConfig) {
    register(cfg, ENDPOINTS);
}

fn no_store(status: StatusCode) -> HttpResponseBuilder {
    let mut builder = HttpResponse::build(status);
    builder.insert_header(("Cache-Control", "no-store"));
    builder
}

/// `GET /.well-known/milagro/birth-certificate`.
async fn birth_certificate(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = blocking(&state, |state| {
        Ok(birth_certificate_document(
            &state.identity,
            &state.own_anchor,
            &state.index,
            state.config.party.min_depth,
        )?)
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /v1/status`.
async fn status(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = blocking(&state, |state| {
        Ok(Status {
            party: party_status(&state.chain).map_err(ApiError::internal)?,
            server_secret: state.verifier.server_secret.status(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// `POST /v1/login/commit`: pass 1 ([`milagro_verifier::Verifier::commit`]).
async fn commit(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let request: CommitRequest = read_json(&req, body, MAX_BODY_BYTES).await?;
    let shared = AppState::clone(&state);
    let answer = state
        .verifier
        .pairings
        .run(move || shared.verifier.commit(&request).map_err(AuthError::from))
        .await??;
    Ok(no_store(StatusCode::OK).json(answer))
}

/// `POST /v1/login/prove`: pass 2 ([`milagro_verifier::Verifier::prove`]), then the
/// login logged and a session token issued.
async fn prove(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let request: ProveRequest = read_json(&req, body, MAX_BODY_BYTES).await?;
    let shared = AppState::clone(&state);
    let answer = state
        .verifier
        .pairings
        .run(move || finish_login(&shared, &request))
        .await??;
    Ok(no_store(StatusCode::OK).json(answer))
}

/// Checks the proof, logs the login and issues the session token.
fn finish_login(state: &AppState, request: &ProveRequest) -> Result<SessionAnswer, ApiError> {
    let verified = state.verifier.prove(request).map_err(AuthError::from)?;
    // The session key, not the anchored one (ADR 0013); every authserver identity has it,
    // so a failure here is our bug, not the client's.
    let key = state
        .identity
        .purpose_key(KeyPurpose::Session)
        .map_err(ApiError::internal)?;
    state.log_login(&verified.login_id, &verified.id, verified.day)?;
    let lifetime = state.config.session_lifetime.as_secs();
    let claims = session::claims(
        &state.config.party.public_url,
        state.identity.digest(),
        &verified.id,
        verified.day,
        unix_now(),
        lifetime,
    );
    Ok(SessionAnswer {
        session_token: session::issue(key, &claims),
        token_type: "Bearer".into(),
        expires_in: lifetime,
        mpin_id: String::from_utf8_lossy(verified.id.as_bytes()).into_owned(),
    })
}

/// `GET /v1/session`: the claims of a valid session token of this server.
async fn session(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let token = bearer(&req).ok_or(AuthError::NoToken)?;
    let identity = &state.identity;
    // Checked against the certificate's `session` key: a token signed with the anchored
    // key is refused like any other foreign signature.
    let key = identity
        .bc()
        .purpose_key(KeyPurpose::Session)
        .map_err(ApiError::internal)?;
    let claims =
        session::verify(token, key, &identity.digest(), unix_now()).map_err(AuthError::from)?;
    Ok(no_store(StatusCode::OK).json(claims))
}

fn check_admin(req: &HttpRequest, state: &AppState) -> Result<(), AuthError> {
    let hash = state.config.admin_token.ok_or(AuthError::AdminOff)?;
    let token =
        bearer(req)
            .and_then(|t| ApiToken::parse(t).ok())
            .ok_or(AuthError::Unauthorized(
                "the admin API needs the admin token",
            ))?;
    if hash.matches(&token) {
        Ok(())
    } else {
        Err(AuthError::Unauthorized("wrong admin token"))
    }
}

/// `POST /v1/admin/revocations` `{"mpin_id"}`.
async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    check_admin(&req, &state)?;
    let RevokeRequest { mpin_id } = read_json(&req, body, MAX_BODY_BYTES).await?;
    let id = MpinId::new(mpin_id.as_bytes())
        .map_err(|e| AuthError::InvalidRequest(format!("mpin_id: {e}")))?;
    let (entry, new) = blocking(&state, move |state| {
        state
            .verifier
            .revocations
            .revoke(&id, unix_now())
            .map_err(ApiError::internal)
    })
    .await?;
    if new {
        tracing::info!("an identity was revoked");
    }
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(no_store(status).json(Revocation::from(entry)))
}

/// `GET /v1/admin/revocations`.
async fn revocations(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    check_admin(&req, &state)?;
    Ok(no_store(StatusCode::OK).json(Revocations {
        revocations: state
            .verifier
            .revocations
            .list()
            .into_iter()
            .map(Into::into)
            .collect(),
    }))
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
