//! Passwords off by default (issue 15, item 6), against a real regtest node and a real
//! IdP on loopback. An operator migrating from a password database kept password sign-in
//! on for a while (`[passwords] enabled = true`); alice still has her argon2id row. Once
//! the operator turns it off, her right password opens nothing, even in forms the IdP
//! itself served while passwords were on:
//! - the login form posted to `/login` is refused (403), nobody is redirected with a code;
//! - `/authorize` offers no password form (without `[mpin]` it says the IdP has no way to
//!   sign in, 503);
//! - the device page shows only the e-mail form, and a password posted to it is refused
//!   (403): the device code stays pending;
//! - the admin API adds no password user (403 `passwords_disabled`); nor does
//!   `milagro idp user add` on a configuration `milagro init idp` made (`tests/cli/init.rs`).
//!
//! The M-Pin side of the same switch (no password link on the sign-in page, and
//! `login_method=password` still showing the M-Pin page) is in `idp_apache.rs`' M-Pin test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_service::token::ApiToken;
use milagro_tests::idp_common;

use idp_common::{
    encode, hidden_fields, idp_config, register_device_client, IdpWorld, NO_PASSWORDS, PASSWORD,
    REDIRECT, USER,
};
use milagro_idp::Idp;
use serde_json::json;

const OFF: &str = "Password sign-in is off on this IdP";

#[test]
fn once_passwords_are_off_a_right_password_opens_nothing() {
    let admin = ApiToken::generate(&mut rand_core::OsRng);
    let admin_section = format!("[admin]\ntoken_sha256 = \"{}\"\n", admin.hash());
    let w = IdpWorld::start(&format!("[passwords]\nenabled = true\n{admin_section}"));
    let (status, client) = w.register(&json!({ "redirect_uris": [REDIRECT] }));
    assert_eq!(status, 201, "{client}");
    let client_id = client["client_id"].as_str().unwrap();
    let pairs = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("state", "s-1"),
        ("nonce", "n-1"),
    ];
    let authorize = format!("{}/authorize?{}", w.issuer, encode(pairs.into_iter()));

    // While passwords are on, a browser gets the login form and its CSRF cookie.
    let page = w.http.get(&authorize).send().unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let html = page.text().unwrap();
    assert!(html.contains("name=\"password\""), "{html}");
    let mut login = hidden_fields(&html);
    login.push(("username".into(), USER.into()));
    login.push(("password".into(), PASSWORD.into()));
    // A device asks to be let in; its user code is typed with alice's password later.
    let device_client = register_device_client(&w.http, &w.issuer);
    let (status, started) = w.post_form(
        "/device_authorization",
        &[("client_id", &device_client), ("scope", "openid")],
        None,
    );
    assert_eq!(status, 200, "{started}");
    let device_code = started["device_code"].as_str().unwrap().to_owned();
    let user_code = started["user_code"].as_str().unwrap().to_owned();

    // The operator turns passwords off and restarts the IdP on the same address and state.
    let IdpWorld {
        node,
        dir,
        idp,
        issuer,
        http,
    } = w;
    idp.stop();
    let port: u16 = issuer.rsplit(':').next().unwrap().parse().unwrap();
    let extra = format!("{NO_PASSWORDS}{admin_section}");
    let config = idp_config(&node, &dir.path().join("idp"), port, &extra);
    assert!(
        !config.passwords,
        "passwords are off unless the operator says so"
    );
    let _idp = Idp::start(config).unwrap();
    let w = IdpWorld {
        node,
        dir,
        idp: _idp,
        issuer,
        http,
    };

    // The login form served while passwords were on, with the right password: refused.
    let replayed = w
        .http
        .post(format!("{}/login", w.issuer))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &cookie)
        .body(encode(login.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
        .send()
        .unwrap();
    assert_eq!(replayed.status(), 403);
    assert!(replayed.headers().get("location").is_none(), "no code");
    assert!(replayed.text().unwrap().contains(OFF));

    // No password form at /authorize; without [mpin], no way to sign in at all.
    let page = w.http.get(&authorize).send().unwrap();
    assert_eq!(page.status(), 503);
    let html = page.text().unwrap();
    assert!(!html.contains("name=\"password\""), "{html}");
    assert!(html.contains("no way to sign in"), "{html}");

    // The device page: the e-mail form only; a password posted to it is refused.
    let page = w.http.get(format!("{}/device", w.issuer)).send().unwrap();
    assert_eq!(page.status(), 200);
    let device_cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    let device_cookie = device_cookie.split(';').next().unwrap().to_owned();
    let html = page.text().unwrap();
    assert!(!html.contains("name=\"password\""), "{html}");
    assert!(html.contains("id=\"email_form\""), "{html}");
    let mut form = hidden_fields(&html);
    form.push(("user_code".into(), user_code.clone()));
    form.push(("username".into(), USER.into()));
    form.push(("password".into(), PASSWORD.into()));
    let posted = w
        .http
        .post(format!("{}/device", w.issuer))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &device_cookie)
        .body(encode(form.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
        .send()
        .unwrap();
    assert_eq!(posted.status(), 403);
    let html = posted.text().unwrap();
    assert!(html.contains(OFF), "{html}");
    assert!(
        !html.contains("name=\"consent\""),
        "no client to allow: {html}"
    );
    let (status, pending) = w.post_form(
        "/token",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", &device_code),
            ("client_id", &device_client),
        ],
        None,
    );
    assert_eq!(
        (status, pending["error"].as_str()),
        (400, Some("authorization_pending"))
    );

    // The admin API adds no password user.
    let added = w
        .http
        .post(format!("{}/v1/admin/users", w.issuer))
        .bearer_auth(admin.reveal())
        .json(&json!({ "username": "bob", "password": "a long enough password" }))
        .send()
        .unwrap();
    assert_eq!(added.status(), 403);
    let body: serde_json::Value = added.json().unwrap();
    assert_eq!(body["error"], "passwords_disabled", "{body}");
}
