//! A service's routes as one table, and the OpenAPI document that must describe it.
//!
//! Each service lists its routes as [`Endpoint`]s (method, path, handler). [`register`]
//! builds the actix resources from that table, so that a method a path does not serve
//! gets 405 `method_not_allowed` with an `Allow` header naming the ones it does (RFC 9110
//! §15.5.6), and any other path a JSON 404. Two methods every resource has without the
//! table listing them (nor its OpenAPI document: they are HTTP's, not the API's):
//!
//! - `HEAD` on a path that serves `GET` runs the `GET` handler and answers its status and
//!   header fields without the content (RFC 9110 §9.3.2; actix-http leaves the body out
//!   of a `HEAD` answer and keeps its `Content-Length`). The handler sees the method
//!   `HEAD`, so logs and metrics say what was asked.
//! - `OPTIONS` answers 204 with `Allow` (RFC 9110 §9.3.7). Not 405: OPTIONS asks about the
//!   communication options of the resource, which every resource has, so the request
//!   succeeds, and 405 means "the resource does not support this method", which would be
//!   false. 204 rather than 200 because there is no content to describe them (the
//!   section's "MUST generate Content-Length: 0 if no content" holds: actix writes it).
//!   No CORS: no browser page of another origin calls these APIs.
//!
//! [`check_document`] compares the table with
//! the service's committed OpenAPI document (its unit test calls it), and
//! [`document_route`] serves that document at [`OPENAPI_PATH`]: the table routes the
//! server and is checked against the document, so neither can gain a route the other
//! lacks.

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, Route};
use serde_json::Value;

use crate::api::ApiError;

/// Where every service serves its OpenAPI document.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// One route of a service.
#[derive(Clone, Copy)]
pub struct Endpoint {
    /// The HTTP method, lowercase as in OpenAPI.
    pub method: &'static str,
    /// The path pattern (`{name}` segments, the same syntax in actix and OpenAPI).
    pub path: &'static str,
    route: fn() -> Route,
}

impl Endpoint {
    /// The route `method path`, answered by the route `route` makes (e.g.
    /// `|| web::get().to(handler)`).
    pub const fn new(method: &'static str, path: &'static str, route: fn() -> Route) -> Self {
        Self {
            method,
            path,
            route,
        }
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method.to_uppercase(), self.path)
    }
}

/// The methods `endpoints` serve at `path`, for an `Allow` header: the table's, in its
/// order, then `HEAD` if it serves `GET`, then `OPTIONS` (`GET, POST, HEAD, OPTIONS`).
pub fn allowed(endpoints: &[Endpoint], path: &str) -> String {
    let mut methods: Vec<String> = Vec::new();
    for endpoint in endpoints.iter().filter(|e| e.path == path) {
        let method = endpoint.method.to_uppercase();
        if !methods.contains(&method) {
            methods.push(method);
        }
    }
    if methods.iter().any(|m| m == "GET") && !methods.iter().any(|m| m == "HEAD") {
        methods.push("HEAD".into());
    }
    if !methods.iter().any(|m| m == "OPTIONS") {
        methods.push("OPTIONS".into());
    }
    methods.join(", ")
}

/// Registers one resource per path of `endpoints` (a route per method, `HEAD` beside
/// `GET`, `OPTIONS`, 405 with `Allow` for any other method) and a JSON 404 for every
/// other path. Call it inside `App::configure`, after the extractors' `app_data`.
pub fn register(cfg: &mut web::ServiceConfig, endpoints: &[Endpoint]) {
    let mut paths: Vec<&'static str> = Vec::new();
    for endpoint in endpoints {
        if !paths.contains(&endpoint.path) {
            paths.push(endpoint.path);
        }
    }
    for path in paths {
        let allow = allowed(endpoints, path);
        let here = || endpoints.iter().filter(move |e| e.path == path);
        let mut resource = here().fold(web::resource(path), |resource, endpoint| {
            resource.route((endpoint.route)())
        });
        if !here().any(|e| e.method == "head") {
            if let Some(get) = here().find(|e| e.method == "get") {
                // The GET route as the HEAD route's service: a route checks its method
                // guard only when the resource picks it, not when it is called, so the
                // GET handler answers HEAD as it is.
                resource = resource.route(web::head().service((get.route)()));
            }
        }
        if !here().any(|e| e.method == "options") {
            let allow = allow.clone();
            resource = resource.route(web::route().method(Method::OPTIONS).to(move || {
                let allow = allow.clone();
                async move {
                    HttpResponse::NoContent()
                        .insert_header(("Allow", allow))
                        .finish()
                }
            }));
        }
        cfg.service(resource.default_service(web::to(move |req: HttpRequest| {
            let allow = allow.clone();
            async move { method_not_allowed(&req, &allow) }
        })));
    }
    cfg.default_service(web::to(crate::api::not_found));
}

/// 405 `method_not_allowed` with `Allow: allow`.
fn method_not_allowed(req: &HttpRequest, allow: &str) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "method {} is not allowed on {}; allowed: {allow}",
            req.method(),
            req.path()
        ),
    )
    .with_header("Allow", allow))
}

/// The route answering `GET /openapi.json` with `document` (`application/json`).
pub fn document_route(document: &'static str) -> Route {
    web::get().to(move || async move {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(document)
    })
}

/// What is wrong between `document` (an OpenAPI 3.1 document) and `endpoints`: every
/// route must be documented with its responses, every documented operation routed, and
/// every `$ref` must resolve. Empty when they agree.
pub fn check_document(document: &str, endpoints: &[Endpoint]) -> Vec<String> {
    let doc: Value = match serde_json::from_str(document) {
        Ok(doc) => doc,
        Err(e) => return vec![format!("the document is not JSON: {e}")],
    };
    let mut problems = Vec::new();
    if doc["openapi"]
        .as_str()
        .is_none_or(|v| !v.starts_with("3.1."))
    {
        problems.push(format!("openapi is {}, not 3.1.x", doc["openapi"]));
    }
    let Some(paths) = doc["paths"].as_object() else {
        problems.push("the document has no paths".into());
        return problems;
    };
    for endpoint in endpoints {
        let operation = &doc["paths"][endpoint.path][endpoint.method];
        if !operation.is_object() {
            problems.push(format!("{endpoint:?} is routed but not documented"));
        } else if operation["responses"]
            .as_object()
            .is_none_or(|responses| responses.is_empty())
        {
            problems.push(format!("{endpoint:?} documents no responses"));
        }
    }
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            problems.push(format!("{path} is not an object"));
            continue;
        };
        for method in item.keys().filter(|key| METHODS.contains(&key.as_str())) {
            if !endpoints
                .iter()
                .any(|e| e.path == path && e.method == method)
            {
                problems.push(format!("{method} {path} is documented but not routed"));
            }
        }
    }
    dangling_refs(&doc, &doc, &mut problems);
    problems
}

/// Every `$ref` under `value` that does not point into `doc`.
fn dangling_refs(doc: &Value, value: &Value, problems: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                let found = target
                    .strip_prefix('#')
                    .and_then(|pointer| doc.pointer(pointer));
                if found.is_none() {
                    problems.push(format!("$ref {target} does not resolve"));
                }
            }
            map.values().for_each(|v| dangling_refs(doc, v, problems));
        }
        Value::Array(items) => items.iter().for_each(|v| dangling_refs(doc, v, problems)),
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use actix_web::{test, App};

    async fn method_seen(req: HttpRequest) -> HttpResponse {
        HttpResponse::Ok()
            .insert_header(("x-method", req.method().as_str()))
            .body("content")
    }

    const ENDPOINTS: &[Endpoint] = &[
        Endpoint::new("get", "/a", || web::get().to(HttpResponse::Ok)),
        Endpoint::new("post", "/a", || web::post().to(HttpResponse::Ok)),
        Endpoint::new("get", "/b/{id}", || web::get().to(method_seen)),
        Endpoint::new("post", "/c/{id}", || web::post().to(HttpResponse::Ok)),
    ];

    /// A test request `method path`.
    fn call(method: &str, path: &str) -> test::TestRequest {
        test::TestRequest::default()
            .method(method.parse().unwrap())
            .uri(path)
    }

    #[test]
    fn another_method_gets_405_with_allow_and_another_path_404() {
        actix_web::rt::System::new().block_on(refusals());
    }

    async fn refusals() {
        let app = test::init_service(App::new().configure(|cfg| register(cfg, ENDPOINTS))).await;
        let ok = test::call_service(&app, call("POST", "/a").to_request()).await;
        assert_eq!(ok.status(), 200);
        let refused = test::call_service(&app, call("DELETE", "/a").to_request()).await;
        assert_eq!(refused.status(), 405);
        assert_eq!(
            refused.headers().get("allow").unwrap(),
            "GET, POST, HEAD, OPTIONS"
        );
        let body: Value = test::read_body_json(refused).await;
        assert_eq!(body["error"], "method_not_allowed");
        let refused = test::call_service(&app, call("PUT", "/b/7").to_request()).await;
        assert_eq!(
            refused.headers().get("allow").unwrap(),
            "GET, HEAD, OPTIONS"
        );
        let refused = test::call_service(&app, call("HEAD", "/c/7").to_request()).await;
        assert_eq!(refused.status(), 405, "no GET, no HEAD");
        assert_eq!(refused.headers().get("allow").unwrap(), "POST, OPTIONS");
        let missing = test::call_service(&app, call("GET", "/c").to_request()).await;
        assert_eq!(missing.status(), 404);
    }

    #[test]
    fn head_runs_the_get_handler_and_options_answers_allow() {
        actix_web::rt::System::new().block_on(head_and_options());
    }

    async fn head_and_options() {
        let app = test::init_service(App::new().configure(|cfg| register(cfg, ENDPOINTS))).await;
        // The handler answers with the method it saw: HEAD stays HEAD for it. (The body
        // is left out by actix-http on a real connection, which the end-to-end
        // conformance test checks; the test service here has no connection.)
        let head = test::call_service(&app, call("HEAD", "/b/7").to_request()).await;
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers().get("x-method").unwrap(), "HEAD");
        for (path, allow) in [
            ("/a", "GET, POST, HEAD, OPTIONS"),
            ("/c/1", "POST, OPTIONS"),
        ] {
            let options = test::call_service(&app, call("OPTIONS", path).to_request()).await;
            assert_eq!(options.status(), 204, "{path}");
            assert_eq!(options.headers().get("allow").unwrap(), allow, "{path}");
            assert!(test::read_body(options).await.is_empty());
        }
        let missing = test::call_service(&app, call("OPTIONS", "/c").to_request()).await;
        assert_eq!(missing.status(), 404, "no resource, no options");
    }

    #[test]
    fn a_document_must_match_the_table_both_ways() {
        let good = r##"{"openapi": "3.1.0", "paths": {
            "/a": {"get": {"responses": {"200": {"$ref": "#/components/responses/Ok"}}},
                   "post": {"responses": {"200": {}}}},
            "/b/{id}": {"parameters": [], "get": {"responses": {"200": {}}}},
            "/c/{id}": {"post": {"responses": {"200": {}}}}},
            "components": {"responses": {"Ok": {}}}}"##;
        assert_eq!(check_document(good, ENDPOINTS), Vec::<String>::new());
        let extra = good.replacen("\"post\"", "\"put\"", 1);
        let problems = check_document(&extra, ENDPOINTS);
        assert_eq!(problems.len(), 2, "{problems:?}");
        let old = good.replace("3.1.0", "3.0.3");
        assert_eq!(check_document(&old, ENDPOINTS).len(), 1);
        let dangling = good.replace("\"Ok\": {}", "\"Other\": {}");
        assert_eq!(check_document(&dangling, ENDPOINTS).len(), 1);
    }
}
