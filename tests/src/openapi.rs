//! Checks a running service against the OpenAPI document it serves: the route checks of
//! [`check_routes`] (documented operations are routed, `HEAD` answers as `GET` without
//! content, `OPTIONS` is 204 with `Allow`, another method is 405 with the right `Allow`,
//! a JSON body of another type is 415) and a bounded [schemathesis] run
//! ([`schemathesis`]) with its status-code, content-type, header and response-schema
//! conformance checks; and, for answers schemathesis cannot get (the D-TA's share API
//! speaks Milagro TLS), [`assert_response_matches`] checks one body against its schema.
//!
//! Schemathesis (PyPI, pinned) is installed once per machine into a virtual environment
//! under [`milagro_regtest::machine_cache_dir`] (`schemathesis-VERSION/`), under a
//! `flock(1)` so that parallel test binaries install it once; these tests never skip: a
//! failed install fails them with pip's output.
//!
//! [schemathesis]: https://schemathesis.readthedocs.io

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The pinned schemathesis release.
pub const SCHEMATHESIS: &str = "4.32.5";

/// The methods an OpenAPI path item may hold (but `head` and `options`, which every
/// resource answers without its document listing them: [`allowed`]).
const METHODS: [&str; 6] = ["get", "put", "post", "delete", "patch", "trace"];

/// What `Allow` names for a path whose document lists the operations `documented`
/// (uppercase): those, `HEAD` if `GET` is one, and `OPTIONS` (`milagro_service::routes`).
pub fn allowed(documented: &BTreeSet<String>) -> BTreeSet<String> {
    let mut allow = documented.clone();
    if allow.contains("GET") {
        allow.insert("HEAD".into());
    }
    allow.insert("OPTIONS".into());
    allow
}

/// The methods an `Allow` value names.
pub fn allow_set(allow: &str) -> BTreeSet<String> {
    allow.split(',').map(|m| m.trim().to_owned()).collect()
}

/// The `schemathesis` executable, installed on first use.
pub fn schemathesis_exe() -> PathBuf {
    let cache = milagro_regtest::machine_cache_dir();
    std::fs::create_dir_all(&cache).unwrap_or_else(|e| panic!("create {}: {e}", cache.display()));
    let venv = cache.join(format!("schemathesis-{SCHEMATHESIS}"));
    let exe = venv.join("bin/schemathesis");
    // Under the lock: a venv without the marker is a killed install's leftover.
    let script = format!(
        "set -e
         if [ -f {venv:?}/installed ]; then exit 0; fi
         rm -rf {venv:?}
         python3 -m venv {venv:?}
         {venv:?}/bin/pip install --quiet --disable-pip-version-check schemathesis=={SCHEMATHESIS}
         touch {venv:?}/installed"
    );
    let output = Command::new("flock")
        .arg(cache.join(format!("schemathesis-{SCHEMATHESIS}.lock")))
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run flock + python3 -m venv (python3 is needed): {e}"));
    assert!(
        output.status.success() && exe.exists(),
        "installing schemathesis {SCHEMATHESIS} into {} failed ({}):\n{}\n{}",
        venv.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

/// Runs schemathesis against the service at `base` (its document at `/openapi.json`)
/// with `max_examples` cases per operation and the conformance checks, and panics with
/// its report unless every check passed. `extra` adds arguments (e.g. `--exclude-path`).
pub fn schemathesis(base: &str, max_examples: u32, extra: &[&str]) {
    let exe = schemathesis_exe();
    let report = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary dir: {e}"));
    let output = Command::new(exe)
        .arg("run")
        .arg(format!("{base}/openapi.json"))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_headers_conformance,response_schema_conformance,\
             unsupported_method,allow_header_conformance",
            "--max-examples",
            &max_examples.to_string(),
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "1",
            "--workers",
            "1",
            "--request-timeout",
            "20",
            "--no-color",
            "--output-truncate",
            "false",
            // Nothing remembered between runs: each run is the seed's, reproducible.
            "--generation-database",
            "none",
            "--report-dir",
        ])
        .arg(report.path())
        .args(extra)
        // Its caches go to the working directory: a temporary one, not the source tree.
        .current_dir(report.path())
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("SCHEMATHESIS_HOOKS", "")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run schemathesis: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found the service at {base} disagreeing with its document ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // A run that tested nothing would pass too: it must have called every operation.
    assert!(
        !stdout.contains("No operations") && stdout.contains("passed"),
        "schemathesis tested nothing at {base}:\n{stdout}"
    );
    // The summary, for `--nocapture` readers: operations, cases, warnings.
    eprintln!("schemathesis against {base}:\n{stdout}");
}

/// If `document` documents `method path` (a concrete path, with its query if any,
/// matched against the document's templates): `status` must be a response it lists, and
/// a JSON `body` (not `Null`) must match that response's schema
/// ([`assert_response_matches`]), checked once per operation and status in a test
/// process (each check runs Python; a test polling `/v1/status` would run it thousands of
/// times). An undocumented operation (a 404 or 405 probe) is not checked here.
pub fn assert_documented_answer(
    document: &str,
    (method, path): (&str, &str),
    status: u16,
    body: &Value,
) {
    let doc: Value = serde_json::from_str(document).unwrap_or_else(|e| panic!("{e}"));
    let method = method.to_lowercase();
    let Some(template) = template_of(&doc, &method, path) else {
        return;
    };
    let path = template.as_str();
    let operation = &doc["paths"][path][&method];
    let mut response = operation["responses"]
        .get(status.to_string())
        .unwrap_or_else(|| {
            panic!("{method} {path} answered {status}, which its document does not list: {body}")
        });
    if let Some(name) = response["$ref"]
        .as_str()
        .and_then(|target| target.rsplit('/').next())
    {
        response = &doc["components"]["responses"][name];
    }
    // A page (HTML) or an empty answer has no JSON schema to match.
    if response["content"]["application/json"].is_object() && !body.is_null() {
        static CHECKED: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());
        let key = format!("{} {method} {path} {status}", doc["info"]["title"]);
        let first = CHECKED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key);
        if first {
            assert_response_matches(document, (&method, path), status, body);
        }
    }
}

/// The document's path template that `path` (query stripped) falls under for `method`,
/// the one with the most literal segments when several do (`/v1/enrolments/signed` is
/// not `/v1/enrolments/{device}`).
fn template_of(doc: &Value, method: &str, path: &str) -> Option<String> {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()?
        .iter()
        .filter(|(_, item)| item[method].is_object())
        .filter_map(|(template, _)| {
            let parts: Vec<&str> = template.split('/').collect();
            let fits = parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(part, segment)| part.starts_with('{') || part == segment);
            let literal = parts.iter().filter(|p| !p.starts_with('{')).count();
            fits.then(|| (literal, template.clone()))
        })
        .max()
        .map(|(_, template)| template)
}

/// Checks `body`, answered with `status` to `method path`, against the JSON schema its
/// operation in `document` gives that status (JSON Schema 2020-12, as OpenAPI 3.1 says),
/// with the validator schemathesis uses ([`schema_errors`]): for routes schemathesis
/// cannot reach, such as the D-TA's share API over Milagro TLS.
pub fn assert_response_matches(
    document: &str,
    (method, path): (&str, &str),
    status: u16,
    body: &Value,
) {
    let method = method.to_lowercase();
    let pointer = response_schema(document, (&method, path), status)
        .unwrap_or_else(|why| panic!("{method} {path} {status}: {why}"));
    let errors = schema_errors(document, &[(pointer, body.clone())]).concat();
    assert!(
        errors.is_empty(),
        "{method} {path} answered {status} with a body its document does not describe:\n{}\n{body}",
        errors.join("\n")
    );
}

/// The JSON pointer (a URI fragment, `#/...`) of the JSON schema that the operation
/// `method path` of `document` gives its `status` answer, following a `$ref` to a shared
/// response; or why there is none.
pub fn response_schema(
    document: &str,
    (method, path): (&str, &str),
    status: u16,
) -> Result<String, String> {
    let doc: Value = serde_json::from_str(document).map_err(|e| e.to_string())?;
    let item = &doc["paths"][path][method]["responses"][status.to_string()];
    let (pointer, response) = match item["$ref"].as_str() {
        Some(target) => {
            let name = target.rsplit('/').next().unwrap_or_default();
            (target.to_owned(), &doc["components"]["responses"][name])
        }
        None => (
            format!(
                "#/paths/{}/{method}/responses/{status}",
                pointer_token(path)
            ),
            item,
        ),
    };
    if !response["content"]["application/json"].is_object() {
        return Err("no JSON body is documented".into());
    }
    Ok(format!("{pointer}/content/application~1json/schema"))
}

/// `token` as one JSON pointer token inside a URI fragment (RFC 6901 §3 and §6): `~` and
/// `/` escaped, then everything but unreserved characters percent-encoded (the `{` and
/// `}` of path templates).
pub fn pointer_token(token: &str) -> String {
    token
        .replace('~', "~0")
        .replace('/', "~1")
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Validates each value against the schema at its pointer (`#/...`) in `document`, with
/// the validator schemathesis uses (`jsonschema_rs`, JSON Schema 2020-12, in its venv),
/// in one Python run; the errors of each value, in order (empty when it conforms).
pub fn schema_errors(document: &str, checks: &[(String, Value)]) -> Vec<Vec<String>> {
    let python = schemathesis_exe().with_file_name("python");
    let script = r##"
import json, sys, jsonschema_rs
given = json.load(sys.stdin)
# The document is the root schema, so that its $refs resolve; its other members are
# unknown keywords, which JSON Schema ignores.
root = dict(given["document"])
found = []
for check in given["checks"]:
    root["$ref"] = check["pointer"]
    validator = jsonschema_rs.Draft202012Validator(root)
    found.append([str(e) for e in validator.iter_errors(check["value"])])
print(json.dumps(found))
"##;
    let input = serde_json::json!({
        "document": serde_json::from_str::<Value>(document).unwrap_or_else(|e| panic!("{e}")),
        "checks": checks
            .iter()
            .map(|(pointer, value)| serde_json::json!({ "pointer": pointer, "value": value }))
            .collect::<Vec<_>>(),
    });
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run the schemathesis venv's python: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, input.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("write to python: {e}"));
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait for python: {e}"));
    assert!(
        output.status.success(),
        "validating against the document failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "python printed no verdicts ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// An HTTP answer: status, `Allow`, `Content-Type`, `Content-Length` and the body.
struct Answer {
    status: u16,
    allow: Option<String>,
    content_type: Option<String>,
    content_length: Option<String>,
    body: String,
}

fn send(
    client: &reqwest::blocking::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &str)>,
) -> Answer {
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes())
        .unwrap_or_else(|e| panic!("method {method}: {e}"));
    let mut request = client.request(method.clone(), url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some((content_type, text)) = body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(text.to_owned());
    }
    let response = request
        .send()
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap_or_default().to_owned())
    };
    let allow = header(reqwest::header::ALLOW);
    let content_type = header(reqwest::header::CONTENT_TYPE);
    let content_length = header(reqwest::header::CONTENT_LENGTH);
    let body = response.text().unwrap_or_default();
    Answer {
        status,
        allow,
        content_type,
        content_length,
        body,
    }
}

/// A JSON error in the one shape: `{"error", "error_description"}` and nothing else.
fn assert_error_shape(what: &str, body: &str, code: &str) {
    let json: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
    let object = json
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {body}"));
    assert_eq!(object.len(), 2, "{what}: {body}");
    assert_eq!(json["error"], code, "{what}: {body}");
    assert!(json["error_description"].is_string(), "{what}: {body}");
}

/// Checks the service at `base` against `document` (its committed document): it serves
/// exactly that document at `/openapi.json`; every documented operation is routed (the
/// answer is not a 405, nor the 404 of an unknown route) and answers a request without
/// parameters, body or credentials with a status it lists; `HEAD` answers as `GET` does
/// (its status and content type, no content; for the document itself, its
/// `Content-Length`), and is 405 where `GET` is not documented; `OPTIONS` is 204 with
/// `Allow` and no content; a method a path is not documented for is 405 with `Allow`
/// listing the documented ones, `HEAD` and `OPTIONS` ([`allowed`]); and an operation whose
/// request body is JSON answers a `text/plain` body with 415, in the one error shape.
/// `headers` are sent with every request of the 415 check (e.g. an admin token, so that
/// the route gets as far as its body). Returns how many JSON-bodied operations got 415,
/// for the caller to compare with what it expects.
pub fn check_routes(base: &str, document: &str, headers: &[(&str, &str)]) -> usize {
    let client = milagro_http_client::Outbound::system()
        .unwrap_or_else(|e| panic!("the system's roots: {e}"))
        .builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|e| panic!("an HTTP client: {e}"));
    let served = send(&client, "get", &format!("{base}/openapi.json"), &[], None);
    assert_eq!(served.status, 200);
    assert_eq!(served.body, document, "{base} serves another document");
    let head = send(&client, "head", &format!("{base}/openapi.json"), &[], None);
    assert_eq!(
        (head.status, head.content_length, head.body.as_str()),
        (200, Some(document.len().to_string()), ""),
        "HEAD /openapi.json: the length of what GET sends, and no content"
    );
    let doc: Value = serde_json::from_str(document).unwrap_or_else(|e| panic!("{e}"));
    let paths = doc["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("the document has no paths"));
    let mut json_bodies = 0;
    for (path, item) in paths {
        // Any value reaches the route: a bad one is refused by the handler, not the router.
        let url = format!("{base}{}", fill(path));
        let documented: BTreeSet<String> = METHODS
            .iter()
            .filter(|m| item.get(**m).is_some())
            .map(|m| m.to_uppercase())
            .collect();
        assert!(!documented.is_empty(), "{path} documents no operation");
        for method in &documented {
            let operation = &item[method.to_lowercase()];
            // Whatever a route answers must be a status its operation lists.
            let listed = |status: u16| operation["responses"].get(status.to_string()).is_some();
            let answer = send(&client, method, &url, &[], None);
            assert_ne!(answer.status, 405, "{method} {path} is not routed");
            assert!(
                !answer.body.contains("no route"),
                "{method} {path} is not routed: {}",
                answer.body
            );
            assert!(
                listed(answer.status),
                "{method} {path} answered {}, which its operation does not list: {}",
                answer.status,
                answer.body
            );
            if operation["requestBody"]["content"]["application/json"].is_object() {
                json_bodies += 1;
                let refused = send(&client, method, &url, headers, Some(("text/plain", "{}")));
                let what = format!("{method} {path} with a text/plain body");
                assert_eq!(refused.status, 415, "{what}: {}", refused.body);
                assert!(listed(415), "{what}: 415 is not documented");
                assert_error_shape(&what, &refused.body, "unsupported_media_type");
            }
        }
        let allow = allowed(&documented);
        if documented.contains("GET") {
            // The same request as GET's above: the same status and type, no content.
            let get = send(&client, "get", &url, &[], None);
            let head = send(&client, "head", &url, &[], None);
            assert_eq!(
                (head.status, &head.content_type, head.body.as_str()),
                (get.status, &get.content_type, ""),
                "HEAD {path} answers as GET {path}, without content"
            );
        }
        let options = send(&client, "options", &url, &[], None);
        assert_eq!(
            (options.status, options.body.as_str()),
            (204, ""),
            "OPTIONS {path}"
        );
        let advertised = options
            .allow
            .unwrap_or_else(|| panic!("OPTIONS {path}: no Allow"));
        assert_eq!(allow_set(&advertised), allow, "OPTIONS {path}: Allow");
        let undocumented = METHODS
            .iter()
            .map(|m| m.to_uppercase())
            .chain(["HEAD".to_owned()])
            .filter(|m| !allow.contains(m));
        for method in undocumented {
            let refused = send(&client, &method, &url, &[], None);
            let what = format!("{method} {path}");
            assert_eq!(refused.status, 405, "{what}: {}", refused.body);
            if method != "HEAD" {
                assert_error_shape(&what, &refused.body, "method_not_allowed");
            }
            let named = refused
                .allow
                .unwrap_or_else(|| panic!("{what}: a 405 without Allow"));
            assert_eq!(allow_set(&named), allow, "{what}: Allow");
        }
    }
    let unknown = send(&client, "get", &format!("{base}/no/such/route"), &[], None);
    assert_eq!(unknown.status, 404);
    assert_error_shape("an unknown path", &unknown.body, "not_found");
    json_bodies
}

/// `path` with each `{name}` segment replaced by a value.
fn fill(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "x"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
