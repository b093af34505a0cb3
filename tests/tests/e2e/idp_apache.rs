//! Apache httpd with mod_auth_openidc ([`milagro_tests::apache`]) protects a page with the
//! IdP as its provider, registered by mod_auth_openidc's own dynamic registration,
//! unchanged. A scripted browser that keeps cookies reaches the page after signing in with
//! a password (an IdP whose operator keeps passwords on), then logs out through
//! mod_auth_openidc, which ends the session at both ends: the page asks for a sign-in
//! again, and the IdP answers `prompt=none` with `login_required`. A page that requires
//! `acr` `urn:milagro:acr:mpin` is refused to that password sign-in. The same with M-Pin
//! sign-in, headless Chromium and a device approving the access number, is
//! `tests/cli/apache_mpin.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::apache::Apache;
use milagro_tests::idp_common::browser::Browser;
use milagro_tests::idp_common::{encode, free_port, query, IdpWorld};

#[test]
fn apache_with_mod_auth_openidc_registers_signs_in_and_logs_out_at_both_ends() {
    let w = IdpWorld::start("");
    let dir = tempfile::tempdir().unwrap();
    let (_, discovery) = w.get("/.well-known/openid-configuration");
    let apache = Apache::start(dir.path(), free_port(), &w.issuer, &discovery.to_string());
    let (base, log) = (&apache.base, || apache.log());
    let browser = Browser::new(&w.http, &w.issuer);

    // The protected page: mod_auth_openidc asks which provider (its discovery page); the
    // browser picks the IdP, whose client mod_auth_openidc then registers itself.
    let authorize = to_the_idp(&browser, &apache, &w.issuer);
    assert_eq!(query(&authorize)["scope"], "openid profile email");
    let clients = w.idp.state().db.open_tree("clients").unwrap();
    assert_eq!(clients.len(), 1, "mod_auth_openidc registered dynamically");

    // Sign in at the IdP; back at Apache with the code, then at the page.
    let signed_in = browser.follow(browser.sign_in(&browser.get(&authorize)));
    let callback = signed_in
        .location
        .clone()
        .unwrap_or_else(|| panic!("{signed_in:?}"));
    assert!(
        callback.starts_with(&format!("{base}/protected/redirect_uri?")),
        "{callback}"
    );
    let back = browser.get(&callback);
    let target = back
        .location
        .clone()
        .unwrap_or_else(|| panic!("{back:?}\n{}", log()));
    let page = browser.get(&target);
    assert_eq!(page.status, 200, "{page:?}\n{}", log());
    assert!(page.body.contains("the protected page"), "{}", page.body);

    // Logout through mod_auth_openidc: to the IdP's end_session_endpoint with the ID
    // token as hint, which ends the IdP's session and sends the browser back.
    let logout = browser.get(&format!(
        "{base}/protected/redirect_uri?logout={}",
        encode([("u", format!("{base}/loggedout.html").as_str())].into_iter())
            .trim_start_matches("u=")
    ));
    let end_session = logout
        .location
        .clone()
        .unwrap_or_else(|| panic!("{logout:?}\n{}", log()));
    assert!(
        end_session.starts_with(&format!("{}/logout?", w.issuer)),
        "{end_session}"
    );
    let out = browser.get(&end_session);
    assert_eq!(
        out.location.as_deref(),
        Some(format!("{base}/loggedout.html").as_str()),
        "{out:?}"
    );
    // Both ends: the IdP has no session for this browser, Apache shows no page.
    let silent = browser.get(&format!(
        "{}&prompt=none",
        authorize.replace("prompt=", "ignored=")
    ));
    assert_eq!(
        query(silent.location.as_deref().unwrap())["error"],
        "login_required"
    );
    let again = browser.get(&format!("{base}/protected/"));
    assert!(!again.body.contains("the protected page"), "{again:?}");

    // A page that requires an M-Pin sign-in (`acr`), behind a second Apache: a person
    // who signs in with a password is sent back with a code, and mod_auth_openidc refuses
    // the ID token it redeems. (Another browser: cookies do not tell ports apart.)
    let strict_dir = tempfile::tempdir().unwrap();
    let strict = Apache::start_requiring(
        strict_dir.path(),
        free_port(),
        &w.issuer,
        &discovery.to_string(),
        &format!("claim acr:{}", milagro_idp::authentication::ACR_MPIN),
    );
    let browser = Browser::new(&w.http, &w.issuer);
    let authorize = to_the_idp(&browser, &strict, &w.issuer);
    let signed_in = browser.follow(browser.sign_in(&browser.get(&authorize)));
    let code = signed_in
        .location
        .clone()
        .unwrap_or_else(|| panic!("{signed_in:?}"));
    let redeemed = browser.get(&code);
    let shown = match &redeemed.location {
        Some(target) => browser.get(target),
        None => redeemed,
    };
    assert!(
        !shown.body.contains("the protected page") && (shown.status == 401 || shown.status == 403),
        "a password sign-in passed for M-Pin: {shown:?}\n{}",
        strict.log()
    );
}

/// Opens `apache`'s protected page in `browser` and picks `issuer` on mod_auth_openidc's
/// discovery page (its form's hidden fields: `target_link_uri`, `method` and the CSRF
/// value of its cookie, and the issuer); the authorization URL it is sent to.
fn to_the_idp(browser: &Browser, apache: &Apache, issuer: &str) -> String {
    let base = &apache.base;
    let asked = browser.get(&format!("{base}/protected/"));
    assert_eq!(asked.status, 200, "{asked:?}\n{}", apache.log());
    assert!(
        asked.body.contains("/protected/redirect_uri"),
        "{}",
        asked.body
    );
    let mut form = milagro_tests::idp_common::hidden_fields(&asked.body);
    form.push(("iss".to_owned(), issuer.to_owned()));
    let pick = format!(
        "{base}/protected/redirect_uri?{}",
        encode(form.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    );
    let to_idp = browser.get(&pick);
    let authorize = to_idp
        .location
        .clone()
        .unwrap_or_else(|| panic!("{to_idp:?}\n{}", apache.log()));
    assert!(
        authorize.starts_with(&format!("{issuer}/authorize?")),
        "{authorize}"
    );
    authorize
}
