//! The D-TA's two HTTP APIs: public documents over plain HTTP, shares over Milagro TLS.
//!
//! Plain HTTP ([`configure_public`]), nothing secret:
//!
//! | route | what |
//! |---|---|
//! | `GET /.well-known/milagro/birth-certificate` | the anchored Birth Certificate |
//! | `GET /v1/status` | anchor, index tip, log size, where the share API serves (`share_api`, once it does), the trusted IdPs' issuers and this D-TA's client id at each |
//! | `GET /openapi.json` | the OpenAPI 3.1 document of these routes (`dta/openapi.json`) |
//!
//! Milagro TLS only ([`configure_shares`]; every request comes from an admitted peer,
//! whose anchored Birth Certificate says who it is):
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/shares/server` | the server-secret share `s·Q`, to role `authserver` only |
//! | `POST /v1/shares/client` | `{"id_token", "nonce_salt"?}` → the client-secret share and today's time-permit share, to role `pat` only |
//! | `POST /v1/shares/permit` | today's time-permit share, to a PAT this D-TA issued a client share to (by its key) |
//! | `GET /openapi.json` | the OpenAPI 3.1 document of the share API (`dta/share-openapi.json`) |
//!
//! On both, a method a path does not serve gets 405 with `Allow`, and a non-empty body
//! that is not `application/json` gets 415.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use milagro_anchor::birth_certificate::Role;
use milagro_mpin::Day;
use milagro_service::api::{blocking, read_json};
use milagro_service::health;
use milagro_service::routes::{document_route, register, Endpoint, OPENAPI_PATH};
use milagro_service::well_known::{birth_certificate_document, party_status};
use milagro_tls::http::peer_of;
use milagro_tls::AdmittedPeer;
use milagro_wire::dta::{Status, TrustedIdp};
use milagro_wire::shares::{
    ClientShareAnswer, ClientShareRequest, NoOptions, PermitAnswer, PermitShare, ServerShareAnswer,
    ShareKind,
};
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::issuance;
use crate::relying_party::{LoginError, RelyingParty};
use crate::state::AppState;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The path of the Birth Certificate document.
pub const BIRTH_CERTIFICATE_PATH: &str = "/.well-known/milagro/birth-certificate";
/// The path of the server-share endpoint.
pub const SERVER_SHARE_PATH: &str = "/v1/shares/server";
/// The path of the client-share endpoint.
pub const CLIENT_SHARE_PATH: &str = "/v1/shares/client";
/// The path of the permit-renewal endpoint.
pub const PERMIT_PATH: &str = "/v1/shares/permit";

/// Every plain HTTP route, checked against `dta/openapi.json` ([`OPENAPI_JSON`], served
/// at `/openapi.json`) by a test.
pub const PUBLIC_ENDPOINTS: &[Endpoint] = &[
    Endpoint::new("get", BIRTH_CERTIFICATE_PATH, || {
        web::get().to(birth_certificate)
    }),
    Endpoint::new("get", "/v1/status", || web::get().to(status)),
    Endpoint::new("get", OPENAPI_PATH, || document_route(OPENAPI_JSON)),
    Endpoint::new("get", health::HEALTHZ_PATH, health::healthz_route),
    Endpoint::new("get", health::READYZ_PATH, health::readyz_route::<AppState>),
];

/// Every share API route (Milagro TLS only), checked against `dta/share-openapi.json`
/// ([`SHARE_OPENAPI_JSON`], served at `/openapi.json` of the share API) by a test. A
/// document of its own rather than a second `servers` entry: the share API is another
/// listener on another transport (Milagro TLS, no URL scheme a generic client speaks),
/// and each listener's document must list exactly the routes that listener serves.
pub const SHARE_ENDPOINTS: &[Endpoint] = &[
    Endpoint::new("post", SERVER_SHARE_PATH, || web::post().to(server_share)),
    Endpoint::new("post", CLIENT_SHARE_PATH, || web::post().to(client_share)),
    Endpoint::new("post", PERMIT_PATH, || web::post().to(permit)),
    Endpoint::new("get", OPENAPI_PATH, || document_route(SHARE_OPENAPI_JSON)),
];

/// The OpenAPI 3.1 document of [`PUBLIC_ENDPOINTS`].
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// The OpenAPI 3.1 document of [`SHARE_ENDPOINTS`].
pub const SHARE_OPENAPI_JSON: &str = include_str!("../share-openapi.json");

/// Registers the plain HTTP routes (405 with `Allow` for another method, JSON 404 for
/// another path: [`milagro_service::routes::register`]).
pub fn configure_public(cfg: &mut web::ServiceConfig) {
    register(cfg, PUBLIC_ENDPOINTS);
}

/// Registers the share routes (served over Milagro TLS only).
pub fn configure_shares(cfg: &mut web::ServiceConfig) {
    register(cfg, SHARE_ENDPOINTS);
}

/// `GET /.well-known/milagro/birth-certificate`.
async fn birth_certificate(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = blocking(&state, |state| {
        birth_certificate_document(
            &state.identity,
            &state.own_anchor,
            &state.index,
            state.config.party.min_depth,
        )
        .map_err(ApiError::from)
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /v1/status`.
async fn status(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = blocking(&state, |state| {
        Ok(Status {
            party: party_status(&state.chain).map_err(ApiError::internal)?,
            share_api: state.share_api_addr(),
            trusted_idps: state
                .config
                .trusted_idps
                .iter()
                .map(|idp| TrustedIdp {
                    issuer: idp.issuer.clone(),
                    client_id: idp.client_id.clone(),
                })
                .collect(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// The admitted peer, if its certificate has `role`.
fn peer_with_role(req: &HttpRequest, role: Role, what: &str) -> Result<AdmittedPeer, ApiError> {
    peer_with_roles(req, &[role], what)
}

/// The admitted Milagro TLS peer of `req`, if its certificate has one of `roles`.
fn peer_with_roles(
    req: &HttpRequest,
    roles: &[Role],
    what: &str,
) -> Result<AdmittedPeer, ApiError> {
    let peer = peer_of(req).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "shares are served over milagro tls only",
        )
    })?;
    let found = peer.birth_certificate().role();
    if !roles.contains(&found) {
        let names: Vec<String> = roles.iter().map(ToString::to_string).collect();
        return Err(ApiError::forbidden(format!(
            "{what} are issued to role {} only; the peer's birth certificate has role {found}",
            names.join(" or ")
        )));
    }
    Ok(peer.clone())
}

/// `POST /v1/shares/server` → `{"kind": "server", "share": hex(s·Q), "dta": BC digest,
/// "day"}`, for an admitted peer of role `authserver` or `idp` (both verify M-Pin logins
/// with `milagro-verifier`) whose certificate digest is in `[shares] authservers`; 403
/// for any other.
async fn server_share(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let peer = peer_with_roles(&req, &[Role::AuthServer, Role::Idp], "server-secret shares")?;
    let bc = peer.birth_certificate();
    // Anyone can anchor a certificate that says `authserver` or `idp`; the server secret lets its
    // holder test PIN guesses against a stolen token offline, so only the operator's list
    // gets it.
    if !state.config.authservers.contains(&bc.digest()) {
        return Err(ApiError::forbidden(format!(
            "verifier {} is not in this d-ta's [shares] authservers",
            bc.digest()
        )));
    }
    let NoOptions {} = read_json(&req, body, MAX_BODY_BYTES).await?;
    let day = Day::from_unix_secs(milagro_service::unix_now());
    let (share, entry) = issuance::server_share(&state.master, &bc.digest(), day);
    blocking(&state, move |state| state.log_issuance(&entry)).await?;
    tracing::info!(peer = %bc.digest(), "issued a server-secret share");
    let body = ServerShareAnswer {
        kind: ShareKind::Server,
        share: hex::encode(share.0.to_bytes()),
        dta: state.identity.digest(),
        day: day.0,
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

/// `POST /v1/shares/client` `{"id_token", "nonce_salt"?}` → `{"kind": "client", "mpin_id", "client_share":
/// hex(s·H(ID)), "time_permit": {"day", "share": hex(s·H(day ‖ H(ID)))}, "dta"}`, for an
/// admitted peer of role `pat` whose ID token a trusted, anchored IdP issued to this D-TA
/// ([`RelyingParty`]) and bound to the peer's key (`cnf.jkt`, ADR 0012, or for a
/// third-party IdP its `nonce` opened by `nonce_salt`, ADR 0015); the identity
/// binds the issuer, `sub` and the peer's key ([`issuance::mpin_id`]).
async fn client_share(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let peer = peer_with_role(&req, Role::Pat, "client-secret shares")?;
    let pat_key = *peer.birth_certificate().public_key();
    let ClientShareRequest {
        id_token,
        nonce_salt,
    } = read_json(&req, body, MAX_BODY_BYTES).await?;
    // A bearer credential: wiped once checked.
    let id_token = Zeroizing::new(id_token);
    let day = Day::from_unix_secs(milagro_service::unix_now());
    let body = blocking(&state, move |state| {
        let relying_party = RelyingParty {
            idps: &state.config.trusted_idps,
            checked: &state.checked_idps,
            directory: state.directory.clone(),
            min_depth: state.config.min_peer_depth,
        };
        let login = relying_party
            .verify(&id_token, nonce_salt.as_deref(), &pat_key)
            .map_err(login_error)?;
        let id = issuance::mpin_id(login.issuer(), login.subject(), &pat_key)
            .map_err(ApiError::internal)?;
        let (client, permit, entries) =
            issuance::client_shares(&state.master, &id, day).map_err(ApiError::internal)?;
        for entry in &entries {
            state.log_issuance(entry)?;
        }
        state
            .issued
            .record(&pat_key, &id)
            .map_err(ApiError::internal)?;
        tracing::info!(
            issuer = login.issuer(),
            "issued a client-secret share and a time permit"
        );
        Ok(ClientShareAnswer {
            kind: ShareKind::Client,
            mpin_id: String::from_utf8_lossy(id.as_bytes()).into_owned(),
            client_share: hex::encode(client.0.to_bytes()),
            time_permit: PermitShare {
                day: permit.day.0,
                share: hex::encode(permit.point.to_bytes()),
            },
            dta: state.identity.digest(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

/// `POST /v1/shares/permit` (`{}`) → `{"kind": "time_permit", "mpin_id", "time_permit":
/// {"day", "share"}, "dta"}`: today's permit of the identity this D-TA issued a client
/// share of to the admitted peer's key; 403 `no_client_share` for a key it never did.
async fn permit(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let peer = peer_with_role(&req, Role::Pat, "time permits")?;
    let pat_key = *peer.birth_certificate().public_key();
    let NoOptions {} = read_json(&req, body, MAX_BODY_BYTES).await?;
    let day = Day::from_unix_secs(milagro_service::unix_now());
    let body = blocking(&state, move |state| {
        let id = state
            .issued
            .of(&pat_key)
            .map_err(ApiError::internal)?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "no_client_share",
                    "this d-ta issued no client share to this device key: get one with an id token first",
                )
            })?;
        let (share, entry) =
            issuance::time_permit(&state.master, &id, day).map_err(ApiError::internal)?;
        state.log_issuance(&entry)?;
        tracing::info!("renewed a time permit");
        Ok(PermitAnswer {
            kind: ShareKind::TimePermit,
            mpin_id: String::from_utf8_lossy(id.as_bytes()).into_owned(),
            time_permit: PermitShare {
                day: share.day.0,
                share: hex::encode(share.point.to_bytes()),
            },
            dta: state.identity.digest(),
        })
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}

/// The answer to a refused ID token, logged with its reason: a refusal can be an attack
/// (forged keys on the path to an IdP), which the operator must be able to see.
fn login_error(error: LoginError) -> ApiError {
    let (status, code) = match &error {
        LoginError::Malformed(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        LoginError::Untrusted(_) => (StatusCode::FORBIDDEN, "untrusted_issuer"),
        LoginError::NotAnchored { .. } => (StatusCode::FORBIDDEN, "idp_not_anchored"),
        LoginError::KeysNotBound { .. } | LoginError::KeysNotUsable { .. } => {
            (StatusCode::UNAUTHORIZED, "idp_keys_not_bound")
        }
        LoginError::Invalid(_) => (StatusCode::UNAUTHORIZED, "invalid_token"),
        LoginError::NotBound | LoginError::NonceNotBound(_) => {
            (StatusCode::UNAUTHORIZED, "token_not_bound")
        }
        LoginError::BoundToAnotherKey { .. } | LoginError::NonceForAnotherKey { .. } => {
            (StatusCode::UNAUTHORIZED, "token_bound_to_another_key")
        }
        LoginError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "idp_unavailable"),
    };
    tracing::warn!(status = status.as_u16(), code, reason = %error, "refused an id token");
    ApiError::new(status, code, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_openapi_document_describes_exactly_its_listeners_routes() {
        for (document, endpoints) in [
            (OPENAPI_JSON, PUBLIC_ENDPOINTS),
            (SHARE_OPENAPI_JSON, SHARE_ENDPOINTS),
        ] {
            let problems = milagro_service::routes::check_document(document, endpoints);
            assert!(problems.is_empty(), "{problems:#?}");
        }
    }
}
