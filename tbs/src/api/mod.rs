//! The HTTP API: routes, handlers, and the one error type.
//!
//! Every route is one [`Endpoint`] in [`ENDPOINTS`]: the router is built from that table
//! and a test checks it against the OpenAPI document (`tbs/openapi.json`, served at
//! `/openapi.json`), so neither can gain a route the other lacks. Handlers read their
//! bodies as [`milagro_wire::tbs`] types and parse them into validated ones (a bad one is
//! a 400, never a panic), do their blocking work (sled, node RPC) inside [`blocking`], and
//! answer with [`milagro_wire::tbs`] types, which the document describes (checked by
//! `tests/tests/e2e/wire_documents`); failures are [`ApiError`]s.
//!
//! A later feature adds its handlers in its own module and its rows to [`ENDPOINTS`].

mod audit;
mod enrolment;
mod enrolment_progress;
mod error;
mod identity;
mod ops;
mod registry;
mod tenants;

use actix_web::error::JsonPayloadError;
use actix_web::web;
use milagro_service::health;
use milagro_service::routes::{document_route, register, OPENAPI_PATH};

pub use error::ApiError;
pub use milagro_service::routes::Endpoint;

use crate::state::AppState;

/// Largest request body any route accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Every route the TBS serves.
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint::new("get", "/.well-known/milagro/birth-certificate", || {
        web::get().to(identity::birth_certificate)
    }),
    Endpoint::new("get", "/v1/status", || web::get().to(ops::status)),
    Endpoint::new("get", "/v1/records", || web::get().to(registry::records)),
    Endpoint::new("get", "/v1/proofs/{txid}", || {
        web::get().to(registry::proof)
    }),
    Endpoint::new("get", "/v1/headers", || web::get().to(registry::headers)),
    Endpoint::new("get", OPENAPI_PATH, || document_route(OPENAPI_JSON)),
    Endpoint::new("get", health::HEALTHZ_PATH, health::healthz_route),
    Endpoint::new("get", health::READYZ_PATH, health::readyz_route::<AppState>),
    Endpoint::new("get", "/metrics", || web::get().to(ops::metrics)),
    Endpoint::new("post", "/v1/enrolments", || {
        web::post().to(enrolment::enrol)
    }),
    Endpoint::new("post", "/v1/enrolments/signed", || {
        web::post().to(enrolment::signed)
    }),
    Endpoint::new("get", "/v1/enrolments/{device}", || {
        web::get().to(enrolment::status)
    }),
    Endpoint::new("get", "/v1/enrolments/{device}/instructions", || {
        web::get().to(enrolment::instructions)
    }),
    Endpoint::new("get", "/v1/audit/checkpoint", || {
        web::get().to(audit::checkpoint)
    }),
    Endpoint::new("get", "/v1/audit/checkpoints", || {
        web::get().to(audit::checkpoints)
    }),
    Endpoint::new("get", "/v1/audit/registrations/{device}/proof", || {
        web::get().to(audit::registration_proof)
    }),
    Endpoint::new("get", "/admin", || web::get().to(tenants::admin_page)),
    Endpoint::new("post", "/v1/admin/tenants", || {
        web::post().to(tenants::create_tenant)
    }),
    Endpoint::new("get", "/v1/admin/tenants", || {
        web::get().to(tenants::list_tenants)
    }),
    Endpoint::new("post", "/v1/tenants/{tenant}/tokens", || {
        web::post().to(tenants::issue_token)
    }),
    Endpoint::new("get", "/v1/tenants/{tenant}/groups", || {
        web::get().to(tenants::list_groups)
    }),
    Endpoint::new("get", "/v1/tenants/{tenant}/groups/{group}", || {
        web::get().to(tenants::get_group)
    }),
    Endpoint::new("put", "/v1/tenants/{tenant}/groups/{group}", || {
        web::put().to(tenants::put_group)
    }),
    Endpoint::new("delete", "/v1/tenants/{tenant}/groups/{group}", || {
        web::delete().to(tenants::delete_group)
    }),
];

/// The OpenAPI 3.1 document describing [`ENDPOINTS`].
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

/// Registers every route, the JSON error handlers of the extractors, and a JSON 404 for
/// everything else. Call it inside `App::configure`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::BadRequest(format!("bad path: {e}")).into()),
    )
    .app_data(
        web::QueryConfig::default()
            .error_handler(|e, _| ApiError::BadRequest(format!("bad query: {e}")).into()),
    )
    .app_data(
        web::JsonConfig::default()
            .limit(MAX_BODY_BYTES)
            .error_handler(|e, _| json_error(e).into()),
    )
    .app_data(web::PayloadConfig::new(MAX_BODY_BYTES));
    register(cfg, ENDPOINTS);
}

/// What a `web::Json` body's failure answers: the shared 415 for another content type
/// ([`milagro_service::api::unsupported_media_type`]), the TBS's own codes for the rest.
fn json_error(error: JsonPayloadError) -> ApiError {
    match error {
        JsonPayloadError::ContentType => milagro_service::api::unsupported_media_type().into(),
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge(format!("the body exceeds {MAX_BODY_BYTES} bytes"))
        }
        JsonPayloadError::Payload(e) if milagro_service::body_deadline::is_payload_timeout(&e) => {
            ApiError::RequestTimeout(milagro_service::body_deadline::TIMED_OUT.to_owned())
        }
        other => ApiError::BadRequest(format!("bad JSON body: {other}")),
    }
}

/// A device key from a path segment (66 hex characters), or a 400.
pub(crate) fn parse_device(text: &str) -> Result<milagro_anchor::keys::PublicKey, ApiError> {
    text.parse()
        .map_err(|e| ApiError::BadRequest(format!("bad device key: {e}")))
}

/// [`blocking`], behind the bounded queue of envelope opening ([`AppState::envelopes`]):
/// for handlers whose first step opens a sealed message anyone may send. A full queue is
/// `503 busy` with `Retry-After`.
pub(crate) async fn gated<T, F>(state: &web::Data<AppState>, work: F) -> Result<T, ApiError>
where
    F: FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let shared = state.clone();
    state.envelopes.run(move || work(&shared)).await?
}

/// Runs blocking work (sled, node RPC) on actix's blocking pool, off the workers.
pub(crate) async fn blocking<T, F>(state: &web::Data<AppState>, work: F) -> Result<T, ApiError>
where
    F: FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    let state = state.clone();
    web::block(move || work(&state)).await?
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
