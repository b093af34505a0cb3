//! The login page used in headless Chromium as a person would: open the relying party's
//! authorization link, see a wrong password refused, type the right one, and land on the
//! relying party's redirect URI with a code, which then redeems for tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::idp_common;

use std::time::Duration;

use idp_common::{callback_server, encode, query, IdpWorld, PASSWORD, USER};
use milagro_tests::webdriver::{ensure_chromium, ChromeDriver, Session};
use serde_json::json;

const PAGE: Duration = Duration::from_secs(15);

fn type_into(page: &Session, id: &str, text: &str) {
    let input = page.find(&format!("#{id}")).unwrap();
    input.clear().unwrap();
    input.send_keys(text).unwrap();
}

#[test]
fn a_person_signs_in_on_the_login_page_and_is_sent_back_with_a_code() {
    ensure_chromium();
    let w = IdpWorld::start("");
    let (redirect, callbacks) = callback_server();
    let (status, client) =
        w.register(&json!({"redirect_uris": [redirect], "client_name": "Thermostat app"}));
    assert_eq!(status, 201, "{client}");
    let client_id = client["client_id"].as_str().unwrap();
    let pairs = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect.as_str()),
        ("scope", "openid profile"),
        ("state", "from-the-rp"),
        ("nonce", "n-0S6"),
    ];
    let authorize = format!("{}/authorize?{}", w.issuer, encode(pairs.into_iter()));

    let driver = ChromeDriver::start(w.dir.path());
    let page = driver.session(&w.dir.path().join("chromium-profile"));
    page.goto(&authorize);
    let shown = page.texts("#client").unwrap();
    assert_eq!(shown, ["Thermostat app"], "the page names the client");

    // A wrong password: the page says so, and nobody is redirected.
    type_into(&page, "username", USER);
    type_into(&page, "password", "not my password");
    page.find("#submit").unwrap().click().unwrap();
    page.wait_for("the wrong-password message", PAGE, |page| {
        let error = page.texts("#error")?;
        error
            .iter()
            .any(|e| e.contains("Wrong username or password"))
            .then_some(())
    });
    assert!(
        callbacks.try_recv().is_err(),
        "a wrong password must not redirect"
    );

    let png = page.screenshot();
    assert!(png.starts_with(b"\x89PNG"));
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("idp_login_page.png");
    std::fs::write(&shot, png).unwrap();
    eprintln!("screenshot: {}", shot.display());

    // The right password: back at the relying party with a code and the state.
    type_into(&page, "username", USER);
    type_into(&page, "password", PASSWORD);
    page.find("#submit").unwrap().click().unwrap();
    page.wait_for("the relying party's page", PAGE, |page| {
        (page.texts("#done")? == ["back at the relying party"]).then_some(())
    });
    let target = callbacks.recv_timeout(PAGE).unwrap();
    let answer = query(&format!("http://rp{target}"));
    assert_eq!(answer["state"], "from-the-rp");
    assert_eq!(answer["iss"], w.issuer);

    // The code the browser carried redeems for tokens.
    let basic = Some((client_id, client["client_secret"].as_str().unwrap()));
    let (status, tokens) = w.post_form(
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &answer["code"]),
            ("redirect_uri", &redirect),
        ],
        basic,
    );
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["id_token"].as_str().is_some());

    page.close();
}
