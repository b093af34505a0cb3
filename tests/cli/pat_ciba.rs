//! Signing in without a browser (issue 15 item 3: OpenID Connect CIBA, poll mode), in the
//! world of `pat_signin` ([`super::mpin_world`]: a regtest node, a TBS, an IdP whose
//! `[mpin]` sums two real D-TAs' server shares, the person's enrolled badge with its M-Pin
//! key). `openid-client` (npm, a real relying party under Node) asks the IdP to
//! authenticate the person and polls; `milagro pat approve --ciba` (a real process, the PIN
//! from `MILAGRO_PIN`) shows the client and the binding message, is refused with a wrong
//! PIN (the request stays pending) and approves with the right one; openid-client gets
//! an ID token it validates, saying `amr` `["pin", "swk", "mfa"]`, `acr`
//! `urn:milagro:acr:mpin`, `auth_time` and no nonce.
//!
//! Refused, each with the error CIBA names and never a 5xx: a client not registered for
//! the grant (`unauthorized_client`), a ping-mode registration (`invalid_client_metadata`),
//! an unknown person (`unknown_user_id`), no `openid` scope (`invalid_scope`), two hints
//! or an `id_token_hint` (`invalid_request`), a binding message with a line break
//! (`invalid_binding_message`), a wrong client secret (`invalid_client`); at the token
//! endpoint: polling faster than the interval (`slow_down`), a denied request
//! (`access_denied`), an expired one (`expired_token`), a redeemed one and another
//! client's (`invalid_grant`); on the device side: another person's request can neither
//! be seen nor approved nor denied by the person's device (`invalid_grant`), a listing proved
//! by a key that is not the registered device's (`access_denied`), and wrong PINs up to
//! `max_failures` lock the identity out (`too_many_attempts`) while the request waits.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use milagro_anchor::keys::{CompressedKey, SecretKey};
use milagro_idp::devices::Registration;
use milagro_mpin::MpinId;
use milagro_pat_client::ciba::{approve, deny, pending};
use milagro_pat_client::mpin_key::MpinKey;
use milagro_pat_client::{Error, ServiceClient};
use milagro_tests::idp_common::encode;
use milagro_tests::idp_common::node_rp::{npm_ciba, NodeCiba};
use serde_json::{json, Value};

use super::mpin_world::{self, refused, EMAIL, PIN, WRONG_PIN};
use super::pat_mpin::milagro_with_pin;
use super::{json, stderr};

const CIBA: &str = "urn:openid:params:grant-type:ciba";
const MAX_FAILURES: u32 = 2;
/// The poll interval: two polls within one second are always too fast.
const INTERVAL: u64 = 2;

type Client = (String, String);

/// `milagro pat approve --ciba` with `extra` arguments.
fn approve_ciba(state: &str, extra: &[&str], pin: &str) -> Output {
    let mut args = vec!["pat", "approve", "--state", state, "--ciba"];
    args.extend_from_slice(extra);
    milagro_with_pin(&args, Some(pin))
}

/// Asserts the device library's call failed with the IdP's `status` and `code`.
fn refused_with<T: std::fmt::Debug>(outcome: Result<T, Error>, status: u16, code: &str) {
    match outcome {
        Err(Error::Server {
            status: got,
            code: Some(got_code),
            ..
        }) if got == status && got_code == code => {}
        other => panic!("expected {status} {code}, got {other:?}"),
    }
}

fn register(http: &reqwest::blocking::Client, issuer: &str, body: &Value) -> (u16, Value) {
    let response = http
        .post(format!("{issuer}/register"))
        .json(body)
        .send()
        .unwrap();
    (response.status().as_u16(), response.json().unwrap())
}

fn register_ciba(http: &reqwest::blocking::Client, issuer: &str, name: &str) -> Client {
    let (status, body) = register(
        http,
        issuer,
        &json!({"client_name": name, "grant_types": [CIBA, "refresh_token"],
                "backchannel_token_delivery_mode": "poll"}),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["backchannel_token_delivery_mode"], "poll");
    let field = |name: &str| body[name].as_str().unwrap().to_owned();
    (field("client_id"), field("client_secret"))
}

/// A form POST to `path` as `client` (HTTP Basic): the status and the JSON body.
fn post_as(
    http: &reqwest::blocking::Client,
    issuer: &str,
    path: &str,
    (id, secret): &Client,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let response = http
        .post(format!("{issuer}{path}"))
        .basic_auth(id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(form.iter().copied()))
        .send()
        .unwrap();
    let status = response.status().as_u16();
    assert!(status < 500, "{path} answered {status}");
    (status, response.json().unwrap())
}

/// Asks for a backchannel authentication of `hint` showing `message`; its `auth_req_id`.
fn ask(
    http: &reqwest::blocking::Client,
    issuer: &str,
    client: &Client,
    hint: &str,
    message: &str,
) -> String {
    let form = [
        ("scope", "openid"),
        ("login_hint", hint),
        ("binding_message", message),
    ];
    let (status, body) = post_as(http, issuer, "/bc-authorize", client, &form);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["interval"], INTERVAL);
    body["auth_req_id"].as_str().unwrap().to_owned()
}

/// The error code `/bc-authorize` answers `client` asking with `form` (asserting `status`).
fn bc_refused(
    http: &reqwest::blocking::Client,
    issuer: &str,
    client: &Client,
    form: &[(&str, &str)],
    status: u16,
) -> String {
    let (got, body) = post_as(http, issuer, "/bc-authorize", client, form);
    assert_eq!(got, status, "{form:?}: {body}");
    body["error"].as_str().unwrap().to_owned()
}

/// One poll of the token endpoint by `client` for `auth_req_id`: the error code (400).
fn poll_error(
    http: &reqwest::blocking::Client,
    issuer: &str,
    client: &Client,
    auth_req_id: &str,
) -> String {
    let form = [("grant_type", CIBA), ("auth_req_id", auth_req_id)];
    let (status, body) = post_as(http, issuer, "/token", client, &form);
    assert_eq!(status, 400, "{body}");
    body["error"].as_str().unwrap().to_owned()
}

/// The device's id of the request showing `message`, as the person's device lists it.
fn request_id(idp: &ServiceClient, device: &SecretKey, key: &MpinKey, message: &str) -> String {
    pending(idp, device, key)
        .unwrap()
        .into_iter()
        .find(|r| r.binding_message.as_deref() == Some(message))
        .unwrap_or_else(|| panic!("no request shows {message}"))
        .request_id
}

#[test]
fn a_relying_party_signs_a_person_in_without_a_browser_and_their_device_approves() {
    let node_dir = npm_ciba();
    let world = mpin_world::with_badge(
        "signin_secs = 300",
        &format!(
            "[mpin.login]\nmax_failures = {MAX_FAILURES}\n\
             [mpin.ciba]\nrequest_secs = 60\npoll_interval_secs = {INTERVAL}\n"
        ),
    );
    let (http, issuer, person, state) = (&world.http, &world.issuer, &world.person, &world.state);
    let idp_state = world.idp.state();

    // Discovery advertises CIBA, poll mode, no user code.
    let discovery: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        discovery["backchannel_authentication_endpoint"],
        format!("{issuer}/bc-authorize")
    );
    assert_eq!(
        discovery["backchannel_token_delivery_modes_supported"],
        json!(["poll"])
    );
    assert_eq!(
        discovery["backchannel_user_code_parameter_supported"],
        false
    );
    assert!(discovery["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!(CIBA)));

    // Registration: poll mode only.
    let (status, body) = register(
        http,
        issuer,
        &json!({"grant_types": [CIBA], "backchannel_token_delivery_mode": "ping",
                "backchannel_client_notification_endpoint": "https://rp.test/notify"}),
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_client_metadata"))
    );
    let till = register_ciba(http, issuer, "Till");
    let other = register_ciba(http, issuer, "Other shop");
    let (status, body) = register(
        http,
        issuer,
        &json!({"redirect_uris": ["https://rp.test/cb"]}),
    );
    assert_eq!(status, 201, "{body}");
    let code_only: Client = (
        body["client_id"].as_str().unwrap().into(),
        body["client_secret"].as_str().unwrap().into(),
    );

    // openid-client asks for the person by their e-mail address (their username) and polls.
    let rp = NodeCiba::start(&node_dir, issuer, (&till.0, &till.1), EMAIL, "W4SCT")
        .unwrap_or_else(|stderr| panic!("{stderr}"));
    assert_eq!(rp.started["interval"], INTERVAL);
    assert_eq!(rp.started["expires_in"], 60);
    let auth_req_id = rp.started["auth_req_id"].as_str().unwrap().to_owned();

    // A wrong PIN: refused, and the request stays pending (another client's poll of its
    // id is invalid_grant and takes nothing).
    let wrong = approve_ciba(state, &[], WRONG_PIN);
    refused(&wrong, 401, "login_refused", "a wrong pin");
    let shown = stderr(&wrong);
    assert!(shown.contains("Till") && shown.contains("W4SCT"), "{shown}");
    assert_eq!(
        poll_error(http, issuer, &other, &auth_req_id),
        "invalid_grant"
    );
    // The right PIN: openid-client gets its tokens.
    let approved = approve_ciba(state, &[], PIN);
    assert!(approved.status.success(), "{}", stderr(&approved));
    let approved = json(&approved);
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["subject"], person.as_str());
    assert_eq!(approved["binding_message"], "W4SCT");
    let result = rp.finish().unwrap_or_else(|stderr| panic!("{stderr}"));
    let claims = &result["claims"];
    assert_eq!(result["issuer"], issuer.as_str());
    assert_eq!(claims["iss"], issuer.as_str());
    assert_eq!(claims["sub"], person.as_str());
    assert_eq!(claims["aud"], json!([till.0]));
    assert_eq!(claims["amr"], json!(["pin", "swk", "mfa"]));
    assert_eq!(claims["acr"], "urn:milagro:acr:mpin");
    assert!(claims["auth_time"].is_number(), "{claims}");
    assert!(claims.get("nonce").is_none(), "{claims}");
    assert_eq!(result["has_refresh_token"], true);
    assert_eq!(result["scope"], "openid profile");
    // Redeemed: a second poll is invalid_grant.
    assert_eq!(
        poll_error(http, issuer, &till, &auth_req_id),
        "invalid_grant"
    );

    // Refusals at the backchannel authentication endpoint.
    let person_hint = [("scope", "openid"), ("login_hint", person.as_str())];
    assert_eq!(
        bc_refused(http, issuer, &code_only, &person_hint, 400),
        "unauthorized_client"
    );
    let forged: Client = (till.0.clone(), "not-the-secret".into());
    assert_eq!(
        bc_refused(http, issuer, &forged, &person_hint, 401),
        "invalid_client"
    );
    for (form, code) in [
        (
            vec![("scope", "openid"), ("login_hint", "mallory@nowhere.test")],
            "unknown_user_id",
        ),
        (
            vec![("scope", "profile"), ("login_hint", person.as_str())],
            "invalid_scope",
        ),
        (
            vec![
                ("scope", "openid"),
                ("login_hint", person.as_str()),
                ("id_token_hint", "a.b.c"),
            ],
            "invalid_request",
        ),
        (
            vec![("scope", "openid"), ("id_token_hint", "a.b.c")],
            "invalid_request",
        ),
        (vec![("scope", "openid")], "invalid_request"),
        (
            vec![
                ("scope", "openid"),
                ("login_hint", person.as_str()),
                ("binding_message", "two\nlines"),
            ],
            "invalid_binding_message",
        ),
        (
            vec![
                ("scope", "openid"),
                ("login_hint", person.as_str()),
                ("requested_expiry", "-1"),
            ],
            "invalid_request",
        ),
    ] {
        assert_eq!(
            bc_refused(http, issuer, &till, &form, 400),
            code,
            "{form:?}"
        );
    }
    // A client not registered for the grant polls in vain.
    assert_eq!(
        poll_error(http, issuer, &code_only, &auth_req_id),
        "unauthorized_client"
    );

    // Polling faster than the interval: slow_down.
    let slow = ask(http, issuer, &till, person, "SLOW1");
    assert_eq!(
        poll_error(http, issuer, &till, &slow),
        "authorization_pending"
    );
    assert_eq!(poll_error(http, issuer, &till, &slow), "slow_down");

    // Denied on the device: access_denied, then the id is spent.
    let device_idp = ServiceClient::new(issuer).unwrap();
    let key = MpinKey::load(Path::new(state)).unwrap().unwrap();
    let device_key = match milagro_pat_client::open(Path::new(state)).unwrap() {
        milagro_pat_client::Stage::Enrolled(enrolled) => enrolled.device().key().clone(),
        other => panic!("the badge is {}", other.name()),
    };
    let to_deny = ask(http, issuer, &till, person, "DENY1");
    let listed = request_id(&device_idp, &device_key, &key, "DENY1");
    let denied = approve_ciba(state, &["--deny", "--request-id", &listed], PIN);
    assert!(denied.status.success(), "{}", stderr(&denied));
    assert_eq!(json(&denied)["status"], "denied");
    assert_eq!(poll_error(http, issuer, &till, &to_deny), "access_denied");
    assert_eq!(poll_error(http, issuer, &till, &to_deny), "invalid_grant");

    // Expired: the client hears expired_token, the device cannot approve it.
    let form = [
        ("scope", "openid"),
        ("login_hint", person.as_str()),
        ("binding_message", "EXP1"),
        ("requested_expiry", "2"),
    ];
    let (status, body) = post_as(http, issuer, "/bc-authorize", &till, &form);
    assert_eq!(
        (status, body["expires_in"].as_u64()),
        (200, Some(2)),
        "{body}"
    );
    let expiring = body["auth_req_id"].as_str().unwrap().to_owned();
    let expiring_id = request_id(&device_idp, &device_key, &key, "EXP1");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(poll_error(http, issuer, &till, &expiring), "expired_token");
    let pin = || milagro_mpin::Pin::new(PIN.parse().unwrap()).unwrap();
    refused_with(
        approve(&device_idp, &key, pin(), &expiring_id),
        400,
        "expired_token",
    );

    // Another person's request: the person's device neither sees nor approves nor denies it.
    let bob = idp_state
        .users
        .add("bob", "bob's long password", milagro_service::unix_now())
        .unwrap();
    let bob_key = SecretKey::from_bytes(&[9; 32]).unwrap().public_key();
    let bob_id = MpinId::of_device(issuer, &bob.subject, &bob_key.to_sec1()).unwrap();
    idp_state
        .registered_devices
        .register(&Registration {
            subject: bob.subject.clone(),
            device_key: CompressedKey::from(&bob_key),
            mpin_id: String::from_utf8(bob_id.as_bytes().to_vec()).unwrap(),
            registered: milagro_service::unix_now(),
        })
        .unwrap();
    let for_bob = ask(http, issuer, &till, "bob", "BOB1");
    let seen = pending(&device_idp, &device_key, &key).unwrap();
    assert!(
        seen.iter()
            .all(|r| r.binding_message.as_deref() != Some("BOB1")),
        "{seen:?}"
    );
    let bobs = idp_state
        .mpin
        .as_ref()
        .unwrap()
        .ciba
        .table()
        .for_subject(&bob.subject, milagro_service::unix_now());
    let bobs = bobs[0].request_id.clone();
    refused_with(
        approve(&device_idp, &key, pin(), &bobs),
        400,
        "invalid_grant",
    );
    refused_with(
        deny(&device_idp, &device_key, &key, &bobs),
        400,
        "invalid_grant",
    );
    std::thread::sleep(Duration::from_secs(INTERVAL));
    assert_eq!(
        poll_error(http, issuer, &till, &for_bob),
        "authorization_pending"
    );
    // A listing proved by a key that is not the registered device's.
    let stranger = SecretKey::from_bytes(&[11; 32]).unwrap();
    refused_with(pending(&device_idp, &stranger, &key), 403, "access_denied");

    // Wrong PINs up to max_failures lock the person's identity out, the right one included;
    // the request still waits.
    let locked = ask(http, issuer, &till, person, "LOCK1");
    let locked_id = request_id(&device_idp, &device_key, &key, "LOCK1");
    for _ in 0..MAX_FAILURES {
        let wrong = approve_ciba(state, &["--request-id", &locked_id], WRONG_PIN);
        refused(&wrong, 401, "login_refused", "a wrong pin");
    }
    refused(
        &approve_ciba(state, &["--request-id", &locked_id], PIN),
        429,
        "too_many_attempts",
        "the right pin during the lockout",
    );
    assert_eq!(
        poll_error(http, issuer, &till, &locked),
        "authorization_pending"
    );
}
