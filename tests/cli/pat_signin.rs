//! Signing in on the web with the device (issue 15, items 2 and 4), against a real
//! regtest node, a TBS, an IdP whose `[mpin]` sums two real D-TAs' server shares (over
//! Milagro TLS, each D-TA listing the IdP in its `authservers`), headless Chromium and
//! `openid-client` (npm) as the relying party: the browser opens the relying party's
//! authorization link and shows a QR code and an access number; `milagro pat approve`
//! (a real process, the PIN from `MILAGRO_PIN`) approves it; the browser lands on the
//! redirect URI with a code, which the relying party redeems for an ID token saying
//! `amr` `["pin", "swk", "mfa"]` and `acr` `urn:milagro:acr:mpin`.
//!
//! Refused, each with its code and never a 5xx: a wrong PIN (`login_refused`, the page
//! still waits) and the lockout after `max_failures` (`too_many_attempts`, the verifier's
//! rules); an access number of another request (approving it completes that request, not
//! the one the browser shows; approving it again is `invalid_grant`); an expired access
//! number (`expired_token`, and its page sends the client `access_denied`); a replaced or
//! revoked device (`access_denied`).

use std::process::Output;
use std::time::{Duration, Instant};

use milagro_anchor::keys::CompressedKey;
use milagro_mpin::MpinId;
use milagro_tests::idp_common::node_rp::{npm_rp, NodeRp};
use milagro_tests::idp_common::{callback_server, query};
use milagro_tests::webdriver::{ensure_chromium, ChromeDriver};
use serde_json::{json, Value};

use super::mpin_world::{self, refused, PIN, WRONG_PIN};
use super::pat_mpin::milagro_with_pin;
use super::{json, stderr};

const MAX_FAILURES: u32 = 2;
const SIGNIN_SECS: u64 = 30;
const PAGE: Duration = Duration::from_secs(30);

/// `milagro pat approve --state state` with `how` (`--access-number N` or `--url U`).
fn approve(state: &str, how: [&str; 2], pin: &str) -> Output {
    milagro_with_pin(
        &["pat", "approve", "--state", state, how[0], how[1]],
        Some(pin),
    )
}

/// A sign-in page fetched without a browser: its access number and page handle.
fn page_without_browser(http: &reqwest::blocking::Client, url: &str) -> (String, String) {
    let response = http.get(url).send().unwrap();
    assert_eq!(response.status(), 200);
    let refresh = response.headers()["refresh"].to_str().unwrap().to_owned();
    let handle = refresh.split("signin=").nth(1).unwrap().to_owned();
    let html = response.text().unwrap();
    let number = html
        .split("data-number=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    (number, handle)
}

#[test]
fn a_person_signs_in_to_a_relying_party_by_approving_the_access_number_with_their_device() {
    ensure_chromium();
    let rp_dir = npm_rp();
    let world = mpin_world::with_badge(
        &format!("signin_secs = {SIGNIN_SECS}"),
        &format!("[mpin.login]\nmax_failures = {MAX_FAILURES}\n"),
    );
    let (http, issuer, person, state) = (&world.http, &world.issuer, &world.person, &world.state);
    let (dir, mpin_id, idp) = (&world.dir, &world.mpin_id, &world.idp);
    let devices = &idp.state().registered_devices;

    // The relying party (openid-client, code + PKCE) sends the browser to the IdP.
    let (redirect, callbacks) = callback_server();
    let registered: Value = http
        .post(format!("{issuer}/register"))
        .json(&json!({"redirect_uris": [redirect], "client_name": "Thermostat app"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let client = (
        registered["client_id"].as_str().unwrap(),
        registered["client_secret"].as_str().unwrap(),
    );
    let rp = NodeRp::start(&rp_dir, issuer, client, &redirect, &[]).unwrap();
    let authorize = rp.authorize_url.clone();
    let driver = ChromeDriver::start(dir.path());
    let page = driver.session(&dir.path().join("chromium-profile"));
    page.goto(&authorize);
    assert_eq!(page.texts("#client").unwrap(), ["Thermostat app"]);
    let shown = page.find("#access-number").unwrap();
    let number = shown.attribute("data-number").unwrap().unwrap();
    assert_eq!(shown.text().unwrap().replace(' ', ""), number);
    let qr = page
        .find("#qr")
        .unwrap()
        .attribute("data-url")
        .unwrap()
        .unwrap();
    assert_eq!(
        qr,
        format!("{issuer}/v1/signin/request?access_number={number}")
    );
    assert!(page.find("#qr svg").is_ok(), "the qr code is drawn");

    // Another request's page, which will outlive its access number.
    let (expiring, expiring_handle) = page_without_browser(http, &authorize);
    let expiring_since = Instant::now();

    // A wrong PIN: refused, and the browser's page still waits.
    let wrong = approve(state, ["--access-number", &number], WRONG_PIN);
    refused(&wrong, 401, "login_refused", "a wrong pin");
    assert!(
        stderr(&wrong).contains("Thermostat app"),
        "the device shows who asks"
    );

    // The access number of another request: approving it completes that request, not
    // the one the browser shows; approving it again is refused.
    let (other, other_handle) = page_without_browser(http, &authorize);
    let approved = approve(state, ["--access-number", &other], PIN);
    assert!(approved.status.success(), "{}", stderr(&approved));
    refused(
        &approve(state, ["--access-number", &other], PIN),
        400,
        "invalid_grant",
        "an access number already approved",
    );
    let other_page = http
        .get(format!("{issuer}/authorize/wait?signin={other_handle}"))
        .send()
        .unwrap();
    assert_eq!(other_page.status(), 303, "the other request goes on");
    let location = other_page.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(&redirect) && query(location).contains_key("code"));
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        callbacks.try_recv().is_err(),
        "the browser's request was not approved by another request's number"
    );
    page.wait_for("the browser's page, still waiting", PAGE, |page| {
        (page.texts("#access-number")?.len() == 1).then_some(())
    });

    // The device follows the QR code's URL with the right PIN: the browser goes on by
    // itself to the relying party, which redeems the code.
    let approved = approve(state, ["--url", &qr], PIN);
    assert!(approved.status.success(), "{}", stderr(&approved));
    let approved = json(&approved);
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["subject"], person.as_str());
    page.wait_for("the relying party's page", PAGE, |page| {
        (page.texts("#done")? == ["back at the relying party"]).then_some(())
    });
    let target = callbacks.recv_timeout(PAGE).unwrap();
    let landed = format!("{}{target}", redirect.trim_end_matches("/cb"));
    let result = rp
        .finish(&landed)
        .unwrap_or_else(|stderr| panic!("{stderr}"));
    let claims = &result["claims"];
    assert_eq!(claims["sub"], person.as_str());
    assert_eq!(claims["amr"], json!(["pin", "swk", "mfa"]));
    assert_eq!(claims["acr"], "urn:milagro:acr:mpin");
    // The address the person proved when they registered, in the ID token and userinfo.
    assert_eq!(claims["email"], mpin_world::EMAIL);
    assert_eq!(claims["email_verified"], true);
    assert_eq!(result["userinfo"]["email"], mpin_world::EMAIL);
    assert_eq!(result["issuer"], issuer.as_str());
    page.close();

    // A replaced device, then a revoked one: its identity finds nobody.
    let (fresh, _) = page_without_browser(http, &authorize);
    let mut replaced = world.registration.clone();
    let new_key = milagro_anchor::keys::SecretKey::from_bytes(&[7; 32])
        .unwrap()
        .public_key();
    replaced.device_key = CompressedKey::from(&new_key);
    replaced.mpin_id = String::from_utf8(
        MpinId::of_device(issuer, person, &new_key.to_sec1())
            .unwrap()
            .as_bytes()
            .to_vec(),
    )
    .unwrap();
    devices.register(&replaced).unwrap();
    let denied = approve(state, ["--access-number", &fresh], PIN);
    refused(&denied, 403, "access_denied", "a replaced device");
    devices.revoke(person).unwrap();
    let denied = approve(state, ["--access-number", &fresh], PIN);
    refused(&denied, 403, "access_denied", "a revoked device");
    // The person logs the device in again, which registers it again.
    assert_eq!(world.register(state, 2)["status"], "registered");
    assert_eq!(&devices.current(person).unwrap().unwrap().mpin_id, mpin_id);

    // An expired access number: refused, and its page sends the client access_denied.
    let left = Duration::from_secs(SIGNIN_SECS + 1).saturating_sub(expiring_since.elapsed());
    std::thread::sleep(left);
    refused(
        &approve(state, ["--access-number", &expiring], PIN),
        400,
        "expired_token",
        "an expired access number",
    );
    let ended = http
        .get(format!("{issuer}/authorize/wait?signin={expiring_handle}"))
        .send()
        .unwrap();
    assert_eq!(ended.status(), 303);
    let ended = query(ended.headers()["location"].to_str().unwrap());
    assert_eq!(ended["error"], "access_denied");

    // Wrong PINs up to max_failures lock the identity out, the right one included.
    let (locked, _) = page_without_browser(http, &authorize);
    for _ in 0..MAX_FAILURES {
        let wrong = approve(state, ["--access-number", &locked], WRONG_PIN);
        refused(&wrong, 401, "login_refused", "a wrong pin");
    }
    refused(
        &approve(state, ["--access-number", &locked], PIN),
        429,
        "too_many_attempts",
        "the right pin during the lockout",
    );
    // A mistyped number is caught by its check digit.
    let mut typo = locked.clone().into_bytes();
    typo[0] = b'0' + (typo[0] - b'0' + 1) % 10;
    let typo = String::from_utf8(typo).unwrap();
    refused(
        &approve(state, ["--access-number", &typo], PIN),
        400,
        "invalid_request",
        "a mistyped access number",
    );
}
