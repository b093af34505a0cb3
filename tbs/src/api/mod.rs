//! The HTTP API: routes, handlers, and the one error type.
//!
//! Every route is one [`Endpoint`] in [`ENDPOINTS`]: the router is built from that table
//! and a test checks it against the OpenAPI document (`tbs/openapi.json`, served at
//! `/openapi.json`), so neither can gain a route the other lacks. Handlers parse their
//! input into validated types (a bad one is a 400, never a panic), do their blocking work
//! (sled, node RPC) inside [`blocking`], and answer JSON; failures are [`ApiError`]s.
//!
//! A later feature adds its handlers in its own module and its rows to [`ENDPOINTS`].

mod error;
mod identity;
mod ops;
mod registry;

use actix_web::error::JsonPayloadError;
use actix_web::{web, FromRequest, Handler, HttpRequest, HttpResponse, Resource, Responder};

pub use error::ApiError;

use crate::state::AppState;

/// Largest request body any route accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// One route of the API.
#[derive(Clone, Copy)]
pub struct Endpoint {
    /// The HTTP method, lowercase as in OpenAPI.
    pub method: &'static str,
    /// The path pattern (`{name}` segments, the same syntax in actix and OpenAPI).
    pub path: &'static str,
    resource: fn(&'static str) -> Resource,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method.to_uppercase(), self.path)
    }
}

/// Every route the TBS serves.
pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "get",
        path: "/.well-known/milagro/birth-certificate",
        resource: |path| get(path, identity::birth_certificate),
    },
    Endpoint {
        method: "get",
        path: "/v1/status",
        resource: |path| get(path, ops::status),
    },
    Endpoint {
        method: "get",
        path: "/v1/records",
        resource: |path| get(path, registry::records),
    },
    Endpoint {
        method: "get",
        path: "/v1/proofs/{txid}",
        resource: |path| get(path, registry::proof),
    },
    Endpoint {
        method: "get",
        path: "/v1/headers",
        resource: |path| get(path, registry::headers),
    },
    Endpoint {
        method: "get",
        path: "/openapi.json",
        resource: |path| get(path, ops::openapi),
    },
    Endpoint {
        method: "get",
        path: "/metrics",
        resource: |path| get(path, ops::metrics),
    },
];

/// The OpenAPI 3 document describing [`ENDPOINTS`].
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
    for endpoint in ENDPOINTS {
        cfg.service((endpoint.resource)(endpoint.path));
    }
    cfg.default_service(web::to(not_found));
}

/// A GET route; other methods get a JSON 405.
fn get<F, Args>(path: &'static str, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    web::resource(path)
        .route(web::get().to(handler))
        .default_service(web::to(method_not_allowed))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!("no route {}", req.path())))
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(req.method().to_string()))
}

fn json_error(error: JsonPayloadError) -> ApiError {
    match error {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge(format!("the body exceeds {MAX_BODY_BYTES} bytes"))
        }
        other => ApiError::BadRequest(format!("bad JSON body: {other}")),
    }
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
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().unwrap();
        for endpoint in ENDPOINTS {
            let operation = &paths
                .get(endpoint.path)
                .unwrap_or_else(|| panic!("{endpoint:?} is not in openapi.json"))[endpoint.method];
            assert!(operation.is_object(), "{endpoint:?} has no operation");
            assert!(operation["responses"].is_object(), "{endpoint:?}");
        }
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                assert!(
                    ENDPOINTS
                        .iter()
                        .any(|e| e.path == path && e.method == method),
                    "openapi.json documents {method} {path}, which is not routed"
                );
            }
        }
    }
}
