//! Apache httpd + mod_auth_openidc protects a page that a person reaches by signing in with
//! M-Pin (issue 15, "Done when"), in an [`MpinWorld`]: an IdP that keeps no password, two
//! D-TAs, and a badge registered by e-mail (`milagro pat register`). Apache
//! ([`milagro_tests::apache`]) registers itself at the IdP dynamically, unchanged, and
//! requires `acr` `urn:milagro:acr:mpin` of the ID token (mod_auth_openidc's
//! `Require claim`). Headless Chromium opens the page, picks the IdP on mod_auth_openidc's
//! discovery page, and shows the IdP's sign-in page with its access number and no password
//! link (asking for the password form gets the M-Pin page again: passwords are off). The
//! badge (`milagro pat approve`, a real process) approves it: with a wrong PIN refused
//! (`login_refused`, the page still waits), then with the right one; the browser goes on
//! by itself to the protected page. Logging out through mod_auth_openidc ends the session
//! at both ends: the IdP answers `prompt=none` with `login_required`, and the page is not
//! shown again without a sign-in.

use std::time::Duration;

use milagro_idp::authentication::ACR_MPIN;
use milagro_tests::apache::Apache;
use milagro_tests::idp_common::{encode, free_port, query};
use milagro_tests::webdriver::{ensure_chromium, ChromeDriver};

use super::mpin_world::{approve, refused, MpinWorld, PIN, WRONG_PIN};
use super::stderr;

const PAGE: Duration = Duration::from_secs(30);

#[test]
fn apache_lets_a_person_in_who_approved_the_access_number_with_their_badge_and_logs_them_out() {
    ensure_chromium();
    let m = MpinWorld::start("", "");
    let badge = m.enrol("badge");
    assert_eq!(m.register(&badge, 1)["status"], "registered");
    let discovery = m
        .http
        .get(format!("{}/.well-known/openid-configuration", m.issuer))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let apache_dir = m.dir.path().join("apache");
    std::fs::create_dir_all(&apache_dir).unwrap();
    let apache = Apache::start_requiring(
        &apache_dir,
        free_port(),
        &m.issuer,
        &discovery,
        &format!("claim acr:{ACR_MPIN}"),
    );
    let base = apache.base.as_str();
    let driver = ChromeDriver::start(m.dir.path());
    let page = driver.session(&m.dir.path().join("chromium-profile"));

    // The protected page: mod_auth_openidc's discovery page, where the person picks the
    // IdP (its form's hidden fields and the issuer), then the IdP's sign-in page.
    page.goto(&format!("{base}/protected/"));
    let mut form = milagro_tests::idp_common::hidden_fields(&page.source());
    assert!(
        form.iter().any(|(name, _)| name == "target_link_uri"),
        "{form:?}\n{}",
        apache.log()
    );
    form.push(("iss".to_owned(), m.issuer.clone()));
    page.goto(&format!(
        "{base}/protected/redirect_uri?{}",
        encode(form.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    ));
    let shown = page.find("#access-number").unwrap();
    let number = shown.attribute("data-number").unwrap().unwrap();
    let authorize = page.current_url();
    assert!(
        authorize.starts_with(&format!("{}/authorize?", m.issuer)),
        "{authorize}"
    );
    assert!(page.find("#password").is_err(), "no password link");
    // Asking for the password form anyway: the M-Pin page of a new sign-in.
    let asked = m
        .http
        .get(format!("{authorize}&login_method=password"))
        .send()
        .unwrap();
    assert_eq!(asked.status(), 200);
    let asked = asked.text().unwrap();
    assert!(asked.contains("data-number=\""), "{asked}");
    assert!(!asked.contains("name=\"password\""), "{asked}");

    // A wrong PIN: refused, and the page still waits; the right PIN lets the person in.
    let wrong = approve(&badge, ["--access-number", &number], WRONG_PIN);
    refused(&wrong, 401, "login_refused", "a wrong pin");
    std::thread::sleep(Duration::from_secs(2));
    assert!(page.find("#access-number").is_ok(), "the page still waits");
    let approved = approve(&badge, ["--access-number", &number], PIN);
    assert!(approved.status.success(), "{}", stderr(&approved));
    page.wait_for("the protected page", PAGE, |page| {
        let body = page.texts("body")?;
        body.iter()
            .any(|text| text.contains("the protected page"))
            .then_some(())
    });

    // Logout through mod_auth_openidc, which sends the browser to the IdP's
    // end_session_endpoint with the ID token as hint, and back.
    let logged_out = format!("{base}/loggedout.html");
    page.goto(&format!(
        "{base}/protected/redirect_uri?logout={}",
        encode([("u", logged_out.as_str())].into_iter()).trim_start_matches("u=")
    ));
    page.wait_for("the logged-out page", PAGE, |page| {
        (page.current_url() == logged_out).then_some(())
    });
    // Both ends: the IdP has no session for this browser (prompt=none: login_required,
    // sent to Apache's redirect URI), and Apache shows the page to nobody.
    page.goto(&format!(
        "{}&prompt=none",
        authorize.replace("prompt=", "ignored=")
    ));
    let silent = page.current_url();
    assert!(
        silent.starts_with(&format!("{base}/protected/redirect_uri?")),
        "{silent}"
    );
    assert_eq!(query(&silent)["error"], "login_required");
    page.goto(&format!("{base}/protected/"));
    let again = page.source();
    assert!(!again.contains("the protected page"), "{again}");
}
