//! Each service against the OpenAPI 3.1 document it serves at `/openapi.json`, running on
//! a real regtest node with its anchor confirmed: the document is the committed one,
//! every documented operation is routed, `HEAD` on a `GET` route answers as `GET` without
//! content (RFC 9110 §9.3.2), `OPTIONS` is 204 with `Allow` (§9.3.7), another method is
//! 405 with the right `Allow`, a JSON body of another type is 415, all in the one error
//! shape
//! ([`milagro_tests::openapi::check_routes`]); then schemathesis generates requests from
//! the document and checks every answer's status, content type, headers and body schema
//! against it ([`milagro_tests::openapi::schemathesis`]). The D-TA's share API (Milagro
//! TLS) is checked against its own document in `dta_shares`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::dta_common;
use milagro_tests::idp_common;

use std::time::Duration;

use idp_common::IdpWorld;
use milagro_service::token::ApiToken;
use milagro_tests::openapi::{check_routes, schemathesis};
use milagro_tests::{tbs_config, wait_until, Api, TestNode};

const PATIENCE: Duration = Duration::from_secs(60);
/// Cases per operation: enough for every status a random input reaches, under a minute.
const EXAMPLES: u32 = 25;

/// The `[node]` and `[sync]` sections of a service on `node`.
fn node_sections(node: &TestNode) -> String {
    format!(
        "[node]\nrpc_url = {:?}\nrpc_cookie = {:?}\nnetwork = \"regtest\"\n\
         [sync]\npoll_interval_ms = 50\nmax_backoff_ms = 400\n",
        node.rpc_url(),
        node.cookie()
    )
}

/// Mines once the service at `url` broadcast its anchor, and waits until it serves its
/// Birth Certificate.
fn anchored(node: &TestNode, url: &str) {
    let api = Api::new(url);
    wait_until("the anchor to be broadcast", PATIENCE, || {
        (api.ok("/v1/status")["anchor"]["state"] != "none").then_some(())
    });
    node.mine(6);
    wait_until("the birth certificate to be served", PATIENCE, || {
        (api.get("/.well-known/milagro/birth-certificate").0 == 200).then_some(())
    });
}

#[test]
fn the_tbs_does_what_its_document_says() {
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let admin = ApiToken::generate(&mut rand_core::OsRng);
    let text = format!(
        "{}\n[admin]\ntoken_sha256 = \"{}\"\n",
        tbs_config(&node.rpc_url(), &node.cookie(), &dir.path().join("tbs")),
        admin.hash()
    );
    let tbs = milagro_tbs::Tbs::start(milagro_tbs::config::Config::parse(&text).unwrap()).unwrap();
    anchored(&node, &tbs.local_url());
    let bearer = format!("Bearer {}", admin.reveal());
    let json_operations = check_routes(
        &tbs.local_url(),
        milagro_tbs::api::OPENAPI_JSON,
        &[("authorization", &bearer)],
    );
    assert_eq!(json_operations, 4, "enrolments, signed, tenants, groups");
    let header = format!("Authorization: {bearer}");
    schemathesis(&tbs.local_url(), EXAMPLES, &["--header", &header]);
}

#[test]
fn the_idp_does_what_its_document_says() {
    let admin = ApiToken::generate(&mut rand_core::OsRng);
    let w = IdpWorld::start(&format!("[admin]\ntoken_sha256 = \"{}\"\n", admin.hash()));
    let bearer = format!("Bearer {}", admin.reveal());
    let json_operations = check_routes(
        &w.issuer,
        milagro_idp::api::OPENAPI_JSON,
        &[("authorization", &bearer)],
    );
    assert_eq!(
        json_operations, 8,
        "register, admin users, admin activation codes, sign-in commit and prove, CIBA \
         commit, prove and deny"
    );
    let header = format!("Authorization: {bearer}");
    schemathesis(&w.issuer, EXAMPLES, &["--header", &header]);
}

#[test]
fn the_dta_public_api_does_what_its_document_says() {
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let sealing = dta_common::sealing_key_file(dir.path());
    let text = format!(
        r#"
listen = "127.0.0.1:0"
tls_listen = "127.0.0.1:0"
public_url = "https://dta1.milagro.test"
name = "D-TA 1"
state_dir = {:?}
[master_key]
{sealing}
{}"#,
        dir.path().join("dta"),
        node_sections(&node)
    );
    let dta = milagro_dta::Dta::start(milagro_dta::config::Config::parse(&text).unwrap()).unwrap();
    anchored(&node, &dta.local_url());
    // Ready (the share API serving) before the routes are compared: a /readyz that turns
    // ready between a GET and its HEAD would answer them differently.
    let api = Api::new(dta.local_url());
    wait_until("the D-TA to be ready", PATIENCE, || {
        (api.get("/readyz").0 == 200).then_some(())
    });
    let json_operations = check_routes(&dta.local_url(), milagro_dta::api::OPENAPI_JSON, &[]);
    assert_eq!(json_operations, 0, "the public API takes no body");
    schemathesis(&dta.local_url(), EXAMPLES, &[]);
}

#[test]
fn the_authentication_server_does_what_its_document_says() {
    let node = TestNode::start();
    let dir = tempfile::tempdir().unwrap();
    let admin = ApiToken::generate(&mut rand_core::OsRng);
    // A D-TA nobody runs: the server secret stays unassembled, so logins are 503
    // not_ready, which the document lists.
    let text = format!(
        r#"
listen = "127.0.0.1:0"
public_url = "https://auth.milagro.test"
name = "Auth server"
state_dir = {:?}
[admin]
token_sha256 = "{}"
[[dtas]]
bc_digest = "{}"
share_api = "127.0.0.1:9"
{}"#,
        dir.path().join("auth"),
        admin.hash(),
        "ab".repeat(32),
        node_sections(&node)
    );
    let server = milagro_authserver::AuthServer::start(
        milagro_authserver::config::Config::parse(&text).unwrap(),
    )
    .unwrap();
    anchored(&node, &server.local_url());
    let bearer = format!("Bearer {}", admin.reveal());
    let json_operations = check_routes(
        &server.local_url(),
        milagro_authserver::api::OPENAPI_JSON,
        &[("authorization", &bearer)],
    );
    assert_eq!(json_operations, 3, "commit, prove, revocations");
    let header = format!("Authorization: {bearer}");
    // Its /readyz is 503 by design here (no D-TA runs), which schemathesis counts as a
    // server error; `readiness` checks those answers against the document instead.
    schemathesis(
        &server.local_url(),
        EXAMPLES,
        &["--header", &header, "--exclude-path", "/readyz"],
    );
}
