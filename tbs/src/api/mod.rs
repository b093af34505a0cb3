//! The HTTP API: routes, handlers, and the one error type.
//!
//! Every route is one [`Endpoint`] in [`ENDPOINTS`]: the router is built from that table
//! and a test checks it against the OpenAPI document (`tbs/openapi.json`, served at
//! `/openapi.json`), so neither can gain a route the other lacks. Handlers parse their
//! input into validated types (a bad one is a 400, never a panic), do their blocking work
//! (sled, node RPC) inside [`blocking`], and answer JSON; failures are [`ApiError`]s.
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
use actix_web::{web, HttpRequest, HttpResponse, Route};

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
    route: fn() -> Route,
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
        route: || web::get().to(identity::birth_certificate),
    },
    Endpoint {
        method: "get",
        path: "/v1/status",
        route: || web::get().to(ops::status),
    },
    Endpoint {
        method: "get",
        path: "/v1/records",
        route: || web::get().to(registry::records),
    },
    Endpoint {
        method: "get",
        path: "/v1/proofs/{txid}",
        route: || web::get().to(registry::proof),
    },
    Endpoint {
        method: "get",
        path: "/v1/headers",
        route: || web::get().to(registry::headers),
    },
    Endpoint {
        method: "get",
        path: "/openapi.json",
        route: || web::get().to(ops::openapi),
    },
    Endpoint {
        method: "get",
        path: "/metrics",
        route: || web::get().to(ops::metrics),
    },
    Endpoint {
        method: "post",
        path: "/v1/enrolments",
        route: || web::post().to(enrolment::enrol),
    },
    Endpoint {
        method: "post",
        path: "/v1/enrolments/signed",
        route: || web::post().to(enrolment::signed),
    },
    Endpoint {
        method: "get",
        path: "/v1/enrolments/{device}",
        route: || web::get().to(enrolment::status),
    },
    Endpoint {
        method: "get",
        path: "/v1/enrolments/{device}/instructions",
        route: || web::get().to(enrolment::instructions),
    },
    Endpoint {
        method: "get",
        path: "/v1/audit/checkpoint",
        route: || web::get().to(audit::checkpoint),
    },
    Endpoint {
        method: "get",
        path: "/v1/audit/checkpoints",
        route: || web::get().to(audit::checkpoints),
    },
    Endpoint {
        method: "get",
        path: "/v1/audit/registrations/{device}/proof",
        route: || web::get().to(audit::registration_proof),
    },
    Endpoint {
        method: "get",
        path: "/admin",
        route: || web::get().to(tenants::admin_page),
    },
    Endpoint {
        method: "post",
        path: "/v1/admin/tenants",
        route: || web::post().to(tenants::create_tenant),
    },
    Endpoint {
        method: "get",
        path: "/v1/admin/tenants",
        route: || web::get().to(tenants::list_tenants),
    },
    Endpoint {
        method: "post",
        path: "/v1/tenants/{tenant}/tokens",
        route: || web::post().to(tenants::issue_token),
    },
    Endpoint {
        method: "get",
        path: "/v1/tenants/{tenant}/groups",
        route: || web::get().to(tenants::list_groups),
    },
    Endpoint {
        method: "get",
        path: "/v1/tenants/{tenant}/groups/{group}",
        route: || web::get().to(tenants::get_group),
    },
    Endpoint {
        method: "put",
        path: "/v1/tenants/{tenant}/groups/{group}",
        route: || web::put().to(tenants::put_group),
    },
    Endpoint {
        method: "delete",
        path: "/v1/tenants/{tenant}/groups/{group}",
        route: || web::delete().to(tenants::delete_group),
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
    // One resource per path with a route per method, so that any other method on a known
    // path gets a JSON 405 rather than falling through.
    let mut paths: Vec<&'static str> = Vec::new();
    for endpoint in ENDPOINTS {
        if !paths.contains(&endpoint.path) {
            paths.push(endpoint.path);
        }
    }
    for path in paths {
        let resource = ENDPOINTS
            .iter()
            .filter(|endpoint| endpoint.path == path)
            .fold(web::resource(path), |resource, endpoint| {
                resource.route((endpoint.route)())
            });
        cfg.service(resource.default_service(web::to(method_not_allowed)));
    }
    cfg.default_service(web::to(not_found));
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
