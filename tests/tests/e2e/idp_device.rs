//! The device authorization grant (RFC 8628) with the `openidconnect` crate as the
//! device: it asks for a code, a person approves it on the verification page (logging
//! in), and the device's polling gets tokens and an ID token that verifies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::idp_common;

use idp_common::{approve_device, decide_device, IdpWorld, PASSWORD, USER};
use openidconnect::core::{CoreClient, CoreDeviceAuthorizationResponse, CoreProviderMetadata};
use openidconnect::{
    ClientId, ClientSecret, DeviceAuthorizationUrl, IssuerUrl, Nonce, Scope, TokenResponse as _,
};
use serde_json::json;

/// What a person does on the verification page: open it, type the code, log in.
fn approve(w: &IdpWorld, user_code: &str, password: &str) -> (u16, String) {
    approve_device(&w.http, &w.issuer, user_code, password)
}

#[test]
fn a_device_without_a_browser_gets_tokens_once_a_person_approves_it() {
    // The default 5 s interval: two polls in a row are always too fast, and an approved
    // code is answered at once whatever the interval.
    let w = IdpWorld::start("");
    let http = w.oidc_http();
    let provider =
        CoreProviderMetadata::discover(&IssuerUrl::new(w.issuer.clone()).unwrap(), &http).unwrap();
    let grant = "urn:ietf:params:oauth:grant-type:device_code";
    let (status, registered) = w.register(&json!({
        "grant_types": [grant, "refresh_token"],
        "client_name": "Living-room <TV>",
    }));
    assert_eq!(status, 201, "{registered}");
    let client = CoreClient::from_provider_metadata(
        provider,
        ClientId::new(registered["client_id"].as_str().unwrap().into()),
        Some(ClientSecret::new(
            registered["client_secret"].as_str().unwrap().into(),
        )),
    )
    .set_device_authorization_url(
        DeviceAuthorizationUrl::new(format!("{}/device_authorization", w.issuer)).unwrap(),
    );

    let details: CoreDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scope(Scope::new("profile".into()))
        .request(&w.oidc_http())
        .unwrap();
    let user_code = details.user_code().secret().clone();
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert_eq!(
        details.verification_uri().as_str(),
        format!("{}/device", w.issuer)
    );

    // Not yet approved: the token endpoint says so (RFC 8628 §3.5).
    let basic = Some((
        registered["client_id"].as_str().unwrap(),
        registered["client_secret"].as_str().unwrap(),
    ));
    let poll = [
        ("grant_type", grant),
        ("device_code", details.device_code().secret().as_str()),
    ];
    let (status, pending) = w.post_form("/token", &poll, basic);
    assert_eq!(
        (status, pending["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    let (status, slow) = w.post_form("/token", &poll, basic);
    assert_eq!((status, slow["error"].as_str()), (400, Some("slow_down")));

    // A wrong password approves nothing; the right one does.
    let (status, page) = approve(&w, &user_code, "not the password");
    assert_eq!(status, 401);
    assert!(page.contains("Wrong username or password"), "{page}");
    // The right one shows which client asks (RFC 8628 §5.4), escaped, before anything is
    // approved; the person allows it.
    let ((status, consent), _, (decided, page)) =
        decide_device(&w.http, &w.issuer, &user_code, PASSWORD, "allow");
    assert_eq!(status, 200, "{consent}");
    let client_id = registered["client_id"].as_str().unwrap();
    assert!(
        consent.contains(&format!("<code id=\"client_id\">{client_id}</code>"))
            && consent.contains("Living-room &lt;TV&gt;")
            && consent.contains(&format!("as <strong>{USER}</strong>")),
        "{consent}"
    );
    assert_eq!(decided, 200, "{page}");
    assert!(page.contains("return to your device"), "{page}");

    // The device's polling (the crate's, honouring the interval) gets the tokens.
    let tokens = client
        .exchange_device_access_token(&details)
        .unwrap()
        .request(&w.oidc_http(), std::thread::sleep, None)
        .unwrap();
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&client.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
        .unwrap();
    assert_eq!(claims.preferred_username().unwrap().as_str(), USER);
    assert!(claims.nonce().is_none());
    // Once only.
    let (status, again) = w.post_form("/token", &poll, basic);
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // The code is no longer pending on the page.
    let (status, page) = approve(&w, &user_code, PASSWORD);
    assert_eq!(status, 401);
    assert!(page.contains("unknown or has expired"), "{page}");
}

/// Issue 13, attack 4 (the approval page): a person who sees a client they did not start
/// denies it, and its device is told `access_denied`; a consent token is good only for the
/// person it was shown to, once.
#[test]
fn a_person_shown_the_client_can_deny_it_and_a_forged_consent_counts_for_nothing() {
    let w = IdpWorld::start("");
    let grant = "urn:ietf:params:oauth:grant-type:device_code";
    let (status, registered) = w.register(&json!({ "grant_types": [grant] }));
    assert_eq!(status, 201, "{registered}");
    let basic = Some((
        registered["client_id"].as_str().unwrap(),
        registered["client_secret"].as_str().unwrap(),
    ));
    let start = || {
        let (status, started) = w.post_form("/device_authorization", &[("scope", "openid")], basic);
        assert_eq!(status, 200, "{started}");
        started
    };
    let poll = |started: &serde_json::Value| {
        let poll = [
            ("grant_type", grant),
            ("device_code", started["device_code"].as_str().unwrap()),
        ];
        w.post_form("/token", &poll, basic)
    };

    let denied = start();
    let code = denied["user_code"].as_str().unwrap();
    let ((status, consent), _, (decided, page)) =
        decide_device(&w.http, &w.issuer, code, PASSWORD, "deny");
    assert_eq!(status, 200, "{consent}");
    assert!(consent.contains("An unnamed client"), "{consent}");
    assert_eq!(decided, 200, "{page}");
    assert!(page.contains("not let in"), "{page}");
    let (status, answer) = poll(&denied);
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("access_denied"))
    );

    // A consent token made up (or another code's) approves nothing; the real one still
    // works after.
    let pending = start();
    let code = pending["user_code"].as_str().unwrap();
    let ((_, consent), cookie, _) = decide_device(&w.http, &w.issuer, code, PASSWORD, "none");
    let mut fields = idp_common::hidden_fields(&consent);
    let real = fields.iter().position(|(k, _)| k == "consent").unwrap();
    let token = std::mem::replace(&mut fields[real].1, "forged".into());
    let post = |fields: &[(String, String)]| {
        let mut fields = fields.to_vec();
        fields.push(("decision".into(), "allow".into()));
        let answer = w
            .http
            .post(format!("{}/device", w.issuer))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &cookie)
            .body(idp_common::encode(
                fields.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ))
            .send()
            .unwrap();
        (answer.status().as_u16(), answer.text().unwrap())
    };
    let (status, page) = post(&fields);
    assert_eq!(status, 400, "{page}");
    let (status, answer) = poll(&pending);
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("authorization_pending"))
    );
    fields[real].1 = token;
    let (status, page) = post(&fields);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("return to your device"), "{page}");
}

/// Issue 13, attack 6: someone without an account tries 1,000 user codes on the
/// verification page. A wrong password is answered the same whether the code is live or
/// not; the live code is denied after a few failures (its device is told so); and the
/// address gets only a few failed attempts before every answer is 429.
#[test]
fn guessing_device_codes_is_limited_and_learns_nothing() {
    let w = IdpWorld::start("");
    let grant = "urn:ietf:params:oauth:grant-type:device_code";
    let (status, registered) = w.register(&json!({ "grant_types": [grant] }));
    assert_eq!(status, 201, "{registered}");
    let basic = Some((
        registered["client_id"].as_str().unwrap(),
        registered["client_secret"].as_str().unwrap(),
    ));
    let (status, started) = w.post_form("/device_authorization", &[("scope", "openid")], basic);
    assert_eq!(status, 200, "{started}");
    let live = started["user_code"].as_str().unwrap().to_owned();
    let device_code = started["device_code"].as_str().unwrap().to_owned();

    // Codes of the right shape, none of them the live one.
    let alphabet = b"BCDFGHJKLMNPQRSTVWXZ";
    let guess = |i: usize| -> String {
        let letters: String = (0..8)
            .map(|d| char::from(alphabet[(i / 20usize.pow(d)) % 20]))
            .collect();
        format!("{}-{}", &letters[..4], &letters[4..])
    };
    let guesses: Vec<String> = (0..1_000)
        .map(guess)
        .filter(|g| *g != live)
        .take(995)
        .collect();

    // The same answer for the live code and a dead one, but for the typed code echoed
    // back and the page's fresh CSRF token.
    let (live_status, live_page) = approve(&w, &live, "not the password");
    let (dead_status, dead_page) = approve(&w, &guesses[0], "not the password");
    assert_eq!((live_status, dead_status), (401, 401));
    let normalised = |page: &str, code: &str| {
        let page = page.replace(&code.to_lowercase(), "CODE");
        let marker = "name=\"csrf\" value=\"";
        let start = page.find(marker).unwrap() + marker.len();
        let end = start + page[start..].find('"').unwrap();
        // The token appears in each form of the page (password and e-mail).
        page.replace(&page[start..end], "TOKEN")
    };
    assert_eq!(
        normalised(&live_page, &live),
        normalised(&dead_page, &guesses[0]),
        "a wrong password must not tell a live code from a dead one"
    );

    // Four more failures on the live code deny it: the device is told.
    for _ in 0..4 {
        assert_eq!(approve(&w, &live, "not the password").0, 401);
    }
    let poll = [("grant_type", grant), ("device_code", device_code.as_str())];
    let (status, denied) = w.post_form("/token", &poll, basic);
    assert_eq!(
        (status, denied["error"].as_str()),
        (400, Some("access_denied"))
    );

    // The rest of the 1,000 guesses: 4 more are checked, then every answer is 429.
    let mut checked = 0;
    for code in &guesses[1..] {
        match approve(&w, code, "not the password") {
            (401, _) => checked += 1,
            (429, page) => assert!(page.contains("too many failed attempts"), "{page}"),
            (status, page) => panic!("{status}: {page}"),
        }
    }
    assert_eq!(checked, 4, "failures allowed to one address: 10 in all");
    // The right password from this address waits too.
    assert_eq!(approve(&w, &guesses[1], PASSWORD).0, 429);
}
