//! Issue 15, item 1: the device a person registers at the IdP is the one an M-Pin sign-in
//! may come from, and only the device itself can register it. Against a real regtest
//! node and a real IdP on loopback:
//!
//! - device A logs in through the device library (`IdpLogin`, as `milagro pat login`
//!   does) and is registered: its key and the M-Pin identity the D-TAs derive
//!   (`milagro_dta::issuance::mpin_id`);
//! - attacks, each refused with the error RFC 6750 / RFC 9449 name and nothing changed: a
//!   bearer token from the device grant (401 `invalid_token`); A's DPoP-bound token with a
//!   proof by another key (401 `invalid_token` with a DPoP challenge, RFC 9449 §7.1); a
//!   DPoP-bound token a relying party got through the browser's code flow (403
//!   `insufficient_scope`: a web app the person signs in to cannot make its key their
//!   device);
//! - device B of the same person registers: A is replaced (named in the answer) and A's
//!   identity no longer finds anyone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use milagro_anchor::dpop;
use milagro_anchor::instructions::ServiceAnchor;
use milagro_anchor::keys::SecretKey;
use milagro_dta::issuance::mpin_id;
use milagro_pat_client::idp_login::IdpLogin;
use milagro_tests::idp_common::{approve_device, encode, query, IdpWorld, PASSWORD, USER};
use serde_json::{json, Value};

const FORM: &str = "application/x-www-form-urlencoded";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const REDIRECT: &str = "https://rp.milagro.test/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn proof(key: &SecretKey, uri: &str, access_token: Option<&str>) -> String {
    let jti = B64URL.encode(rand_core::RngCore::next_u64(&mut rand_core::OsRng).to_be_bytes());
    let request = dpop::Request {
        method: "POST",
        uri,
        access_token,
    };
    dpop::sign(key, &request, &jti, milagro_service::unix_now())
}

/// A device grant approved by alice, redeemed with a DPoP proof by `key` (or none): the
/// token answer.
fn device_tokens(w: &IdpWorld, client_id: &str, key: Option<&SecretKey>) -> Value {
    let (status, started) = w.post_form(
        "/device_authorization",
        &[("client_id", client_id), ("scope", "openid")],
        None,
    );
    assert_eq!(status, 200, "{started}");
    let (status, page) = approve_device(
        &w.http,
        &w.issuer,
        started["user_code"].as_str().unwrap(),
        PASSWORD,
    );
    assert_eq!(status, 200, "{page}");
    let form = [
        ("grant_type", DEVICE_GRANT),
        ("device_code", started["device_code"].as_str().unwrap()),
        ("client_id", client_id),
    ];
    let mut request = w
        .http
        .post(format!("{}/token", w.issuer))
        .header("Content-Type", FORM)
        .body(encode(form.into_iter()));
    if let Some(key) = key {
        request = request.header("DPoP", proof(key, &format!("{}/token", w.issuer), None));
    }
    let answer = request.send().unwrap();
    assert_eq!(answer.status(), 200);
    answer.json().unwrap()
}

/// `POST /v1/devices` with `access_token` as `scheme` and a proof by `key`.
fn register(w: &IdpWorld, scheme: &str, access_token: &str, key: &SecretKey) -> (u16, Value) {
    let uri = format!("{}/v1/devices", w.issuer);
    let answer = w
        .http
        .post(&uri)
        .header("Authorization", format!("{scheme} {access_token}"))
        .header("DPoP", proof(key, &uri, Some(access_token)))
        .json(&json!({}))
        .send()
        .unwrap();
    (answer.status().as_u16(), answer.json().unwrap())
}

fn assert_refused(answer: (u16, Value), status: u16, code: &str) {
    assert_eq!(
        (answer.0, answer.1["error"].as_str()),
        (status, Some(code)),
        "{}",
        answer.1
    );
}

#[test]
fn only_the_device_itself_registers_and_a_new_device_replaces_the_old() {
    let w = IdpWorld::start("");
    let (status, client) = w.register(&json!({
        "grant_types": [DEVICE_GRANT],
        "token_endpoint_auth_method": "none",
        "client_name": "Staff badges",
    }));
    assert_eq!(status, 201, "{client}");
    let client_id = client["client_id"].as_str().unwrap();
    let (a, b) = (
        SecretKey::generate(&mut rand_core::OsRng),
        SecretKey::generate(&mut rand_core::OsRng),
    );
    let devices = &w.idp.state().registered_devices;

    // Device A, through the device library: logged in and registered.
    let (_, served) = w.get("/.well-known/milagro/birth-certificate");
    let anchor = ServiceAnchor {
        url: w.issuer.clone(),
        birth_certificate: w.idp.state().identity.digest(),
        anchor_proof: serde_json::from_value(served["anchor_proof"].clone()).unwrap(),
    };
    let pending = IdpLogin::discover(
        &milagro_http_client::Outbound::system().unwrap(),
        &anchor,
        client_id,
    )
    .unwrap()
    .start()
    .unwrap();
    let (status, page) = approve_device(&w.http, &w.issuer, pending.user_code(), PASSWORD);
    assert_eq!(status, 200, "{page}");
    pending.wait(&a).unwrap();
    let subject = w
        .idp
        .state()
        .users
        .authenticate(USER, PASSWORD)
        .unwrap()
        .unwrap()
        .subject;
    let registered_a = devices.current(&subject).unwrap().expect("A is registered");
    assert_eq!(registered_a.device_key, a.public_key());
    let a_identity = mpin_id(&w.issuer, &subject, &a.public_key()).unwrap();
    assert_eq!(registered_a.mpin_id.as_bytes(), a_identity.as_bytes());
    assert_eq!(
        devices.by_mpin_id(&registered_a.mpin_id).unwrap(),
        Some(registered_a.clone())
    );

    // A bearer token from the device grant proves no device key.
    let bearer = device_tokens(&w, client_id, None);
    assert_eq!(bearer["token_type"], "Bearer");
    let token = bearer["access_token"].as_str().unwrap();
    assert_refused(register(&w, "Bearer", token, &b), 401, "invalid_token");

    // A's bound token with a proof by B.
    let bound_to_a = device_tokens(&w, client_id, Some(&a));
    let token = bound_to_a["access_token"].as_str().unwrap();
    assert_refused(register(&w, "DPoP", token, &b), 401, "invalid_token");

    // A web app's DPoP-bound token from the browser's code flow.
    let (status, web_app) = w.register(&json!({
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code"],
    }));
    assert_eq!(status, 201, "{web_app}");
    let web_id = web_app["client_id"].as_str().unwrap();
    let authorize = format!(
        "{}/authorize?{}",
        w.issuer,
        encode(
            [
                ("response_type", "code"),
                ("client_id", web_id),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ]
            .into_iter()
        )
    );
    let code = query(&w.login(&authorize, USER, PASSWORD).unwrap())["code"].clone();
    let answer = w
        .http
        .post(format!("{}/token", w.issuer))
        .basic_auth(web_id, web_app["client_secret"].as_str())
        .header("DPoP", proof(&b, &format!("{}/token", w.issuer), None))
        .header("Content-Type", FORM)
        .body(encode(
            [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ]
            .into_iter(),
        ))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    let web_tokens: Value = answer.json().unwrap();
    assert_eq!(web_tokens["token_type"], "DPoP", "{web_tokens}");
    let token = web_tokens["access_token"].as_str().unwrap();
    assert_refused(register(&w, "DPoP", token, &b), 403, "insufficient_scope");
    assert_eq!(
        devices.current(&subject).unwrap(),
        Some(registered_a.clone())
    );

    // A again: nothing changes (200, no replacement).
    let token = bound_to_a["access_token"].as_str().unwrap();
    let (status, again) = register(&w, "DPoP", token, &a);
    assert_eq!(status, 200, "{again}");
    assert!(again.get("replaced_device_key").is_none(), "{again}");

    // Device B of the same person: A is replaced and its identity finds nobody.
    let bound_to_b = device_tokens(&w, client_id, Some(&b));
    let token = bound_to_b["access_token"].as_str().unwrap();
    let (status, replaced) = register(&w, "DPoP", token, &b);
    assert_eq!(status, 201, "{replaced}");
    assert_eq!(replaced["device_key"], b.public_key().to_string());
    assert_eq!(replaced["replaced_device_key"], a.public_key().to_string());
    let b_identity = mpin_id(&w.issuer, &subject, &b.public_key()).unwrap();
    assert_eq!(
        replaced["mpin_id"].as_str().unwrap().as_bytes(),
        b_identity.as_bytes()
    );
    assert_eq!(devices.by_mpin_id(&registered_a.mpin_id).unwrap(), None);
    assert_eq!(
        devices.current(&subject).unwrap().unwrap().device_key,
        b.public_key()
    );
}
