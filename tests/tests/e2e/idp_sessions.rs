//! What web apps expect of an OpenID provider, against a real IdP with a scripted
//! browser that keeps cookies: login sessions and single sign-on across two clients;
//! `prompt` (`none`, `login`, `consent`) and `max_age`; the consent screen (approve,
//! deny, remembered); `response_mode=form_post`; unknown scopes dropped; RP-initiated
//! logout with `id_token_hint` and `post_logout_redirect_uri`, and back-channel logout
//! received by a real HTTP listener, its token verified against the IdP's JWKS; the
//! sweep deleting expired codes and tokens; mod_auth_openidc's registration accepted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use milagro_tests::idp_common::browser::{Browser, Page};
use milagro_tests::idp_common::{encode, query, IdpWorld, PATIENCE, REDIRECT};
use milagro_tests::wait_until;
use openidconnect::core::{CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use openidconnect::JsonWebKey as _;
use serde_json::{json, Value};

const LOGGED_OUT: &str = "http://127.0.0.1:9/logged-out";

/// What mod_auth_openidc 2.4.12 (Debian bookworm's libapache2-mod-auth-openidc) sends
/// to register (its `oidc_metadata_client_register`, with `OIDCDefaultLoggedOutURL` and
/// `OIDCClientContact` set): every flow it knows, the implicit grant, and members this
/// IdP has no use for.
fn mod_auth_openidc_body() -> Value {
    json!({
        "client_name": "mod_auth_openidc",
        "redirect_uris": ["http://127.0.0.1:9/protected/redirect_uri"],
        "response_types": ["code", "id_token", "id_token token", "code id_token",
                           "code token", "code id_token token"],
        "grant_types": ["authorization_code", "implicit", "refresh_token"],
        "contacts": ["ops@rp.test"],
        "initiate_login_uri": "http://127.0.0.1:9/protected/redirect_uri",
        "frontchannel_logout_uri": "http://127.0.0.1:9/protected/redirect_uri?logout=get",
        "backchannel_logout_uri": "http://127.0.0.1:9/protected/redirect_uri?logout=backchannel",
        "post_logout_redirect_uris": ["http://127.0.0.1:9/loggedout.html"]
    })
}

/// A listener for logout tokens: each POST body's `logout_token`, on the channel.
fn backchannel_listener() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/backchannel", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap();
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let pairs: Vec<(String, String)> = serde_urlencoded_pairs(&body);
            let token = pairs
                .into_iter()
                .find(|(k, _)| k == "logout_token")
                .map(|(_, v)| v)
                .unwrap_or_default();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .unwrap();
            let _ = tx.send(token);
        }
    });
    (url, rx)
}

fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    openidconnect::url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The claims of a JWT the IdP signed, checked against its JWKS (ES256).
fn verified_claims(w: &IdpWorld, jwt: &str) -> Value {
    let (status, jwks) = w.get("/jwks");
    assert_eq!(status, 200);
    let jwks: CoreJsonWebKeySet = serde_json::from_value(jwks).unwrap();
    let (signed, signature) = jwt.rsplit_once('.').unwrap();
    let (header, payload) = signed.split_once('.').unwrap();
    let header: Value = serde_json::from_slice(&B64URL.decode(header).unwrap()).unwrap();
    let key = jwks
        .keys()
        .iter()
        .find(|k| k.key_id().map(|id| id.as_str()) == header["kid"].as_str())
        .expect("the token's key is in the JWKS");
    key.verify_signature(
        &CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        signed.as_bytes(),
        &B64URL.decode(signature).unwrap(),
    )
    .expect("signed by the IdP's key");
    serde_json::from_slice(&B64URL.decode(payload).unwrap()).unwrap()
}

/// A client registered with a back-channel logout URI: id and secret.
fn register(w: &IdpWorld, name: &str, backchannel: &str) -> (String, String) {
    let (status, client) = w.register(&json!({
        "client_name": name,
        "redirect_uris": [REDIRECT],
        "post_logout_redirect_uris": [LOGGED_OUT],
        "backchannel_logout_uri": backchannel,
        "backchannel_logout_session_required": true,
    }));
    assert_eq!(status, 201, "{client}");
    let field = |name: &str| client[name].as_str().unwrap().to_owned();
    (field("client_id"), field("client_secret"))
}

fn authorize(w: &IdpWorld, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile email phone"),
        ("state", "st"),
    ];
    pairs.extend_from_slice(extra);
    format!("{}/authorize?{}", w.issuer, encode(pairs.into_iter()))
}

/// The code of a redirect to the client, checked to carry `state` and `iss`.
fn code_of(w: &IdpWorld, page: &Page) -> String {
    let location = page
        .location
        .as_deref()
        .unwrap_or_else(|| panic!("{page:?}"));
    assert!(location.starts_with(REDIRECT), "{location}");
    let answer = query(location);
    assert_eq!(
        (answer["state"].as_str(), answer["iss"].as_str()),
        ("st", w.issuer.as_str())
    );
    answer
        .get("code")
        .unwrap_or_else(|| panic!("no code: {location}"))
        .clone()
}

fn error_of(page: &Page) -> String {
    query(
        page.location
            .as_deref()
            .unwrap_or_else(|| panic!("{page:?}")),
    )["error"]
        .clone()
}

/// Redeems `code` for `client`: the token response.
fn redeem(w: &IdpWorld, (id, secret): &(String, String), code: &str) -> Value {
    let (status, tokens) = w.post_form(
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ],
        Some((id, secret)),
    );
    assert_eq!(status, 200, "{tokens}");
    tokens
}

#[test]
fn sessions_sign_on_once_ask_consent_once_and_log_out_everywhere() {
    let w = IdpWorld::start(
        "[consent]\nrequired = true\n[tokens]\ncode_secs = 5\naccess_secs = 5\nrefresh_secs = 6\n",
    );
    let (backchannel, logout_tokens) = backchannel_listener();
    let one = register(&w, "Client One", &backchannel);
    let two = register(&w, "Client Two", &backchannel);
    let browser = Browser::new(&w.http, &w.issuer);

    // prompt=none without a session: login_required, and no page.
    let silent = browser.get(&authorize(&w, &one.0, &[("prompt", "none")]));
    assert_eq!(error_of(&silent), "login_required");

    // The first sign-in: a new session cookie, then the consent screen for the client
    // and its granted scopes (`phone` is not offered: dropped).
    let signed_in = browser.sign_in(&browser.get(&authorize(&w, &one.0, &[])));
    let cookie = signed_in
        .set_cookies
        .iter()
        .find(|c| c.starts_with("milagro_idp_session="))
        .expect("a session cookie")
        .to_lowercase();
    for attribute in ["httponly", "samesite=lax", "path=/", "max-age="] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("secure"), "http issuer: {cookie}");
    let consent = browser.follow(signed_in);
    assert!(consent.is_consent(), "{consent:?}");
    let scopes = consent.body.split("<ul id=\"scopes\">").nth(1).unwrap();
    let scopes = scopes.split("</ul>").next().unwrap();
    assert!(consent.body.contains("Client One"), "{}", consent.body);
    assert_eq!(
        scopes.matches("<li").count(),
        3,
        "openid, profile and email, not phone: {scopes}"
    );
    // The consent form is refused without this browser's CSRF token.
    let mut forged = milagro_tests::idp_common::hidden_fields(&consent.body);
    forged.retain(|(k, _)| k != "csrf");
    forged.push(("decision".into(), "approve".into()));
    assert_eq!(browser.post("/consent", &forged).status, 403);
    let approved = browser.submit(&consent, "/consent", &[("decision", "approve")]);
    let tokens = redeem(&w, &one, &code_of(&w, &approved));
    assert_eq!(tokens["scope"], "openid profile email");
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let claims = verified_claims(&w, &id_token);
    // Alice's account has a password and proved no address: no `email` claim.
    assert!(claims["email"].is_null(), "{claims}");
    let sid = claims["sid"]
        .as_str()
        .expect("sid: the client asked for it")
        .to_owned();
    assert!(claims["auth_time"].is_u64());

    // Client one again: a code at once (single sign-on, consent remembered).
    let again = browser.get(&authorize(&w, &one.0, &[("prompt", "none")]));
    assert!(!code_of(&w, &again).is_empty());
    // Client two: signed in already, but not approved: consent_required when silent;
    // denied, access_denied; approved, a code without any sign-in; then remembered.
    let silent = browser.get(&authorize(&w, &two.0, &[("prompt", "none")]));
    assert_eq!(error_of(&silent), "consent_required");
    let consent = browser.get(&authorize(&w, &two.0, &[]));
    assert!(consent.is_consent(), "{consent:?}");
    let denied = browser.submit(&consent, "/consent", &[("decision", "deny")]);
    assert_eq!(error_of(&denied), "access_denied");
    let consent = browser.get(&authorize(&w, &two.0, &[]));
    let approved = browser.submit(&consent, "/consent", &[("decision", "approve")]);
    let two_tokens = redeem(&w, &two, &code_of(&w, &approved));
    assert_eq!(
        verified_claims(&w, two_tokens["id_token"].as_str().unwrap())["sid"],
        sid
    );
    assert!(!code_of(&w, &browser.get(&authorize(&w, &two.0, &[]))).is_empty());
    // prompt=consent asks again; prompt=login and an exceeded max_age sign in again.
    assert!(browser
        .get(&authorize(&w, &two.0, &[("prompt", "consent")]))
        .is_consent());
    assert!(browser
        .get(&authorize(&w, &two.0, &[("prompt", "login")]))
        .is_sign_in());
    std::thread::sleep(Duration::from_millis(1100));
    assert!(browser
        .get(&authorize(&w, &two.0, &[("max_age", "0")]))
        .is_sign_in());
    assert!(!code_of(
        &w,
        &browser.get(&authorize(&w, &two.0, &[("max_age", "3600")]))
    )
    .is_empty());
    // Another browser has no session.
    let stranger = Browser::new(&w.http, &w.issuer);
    assert_eq!(
        error_of(&stranger.get(&authorize(&w, &two.0, &[("prompt", "none")]))),
        "login_required"
    );

    // response_mode=form_post: a page posting code, state and iss to the redirect URI,
    // whose one script its CSP allows by hash; errors go the same way.
    let posted = browser.get(&authorize(&w, &two.0, &[("response_mode", "form_post")]));
    assert_eq!(posted.status, 200, "{posted:?}");
    assert!(
        posted.body.contains(&format!("action=\"{REDIRECT}\"")),
        "{}",
        posted.body
    );
    let fields = milagro_tests::idp_common::hidden_fields(&posted.body);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(field("state").as_deref(), Some("st"));
    assert_eq!(field("iss").as_deref(), Some(w.issuer.as_str()));
    redeem(&w, &two, &field("code").unwrap());
    let csp = posted.csp.unwrap();
    assert!(
        csp.contains("script-src 'sha256-") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let refused = stranger.get(&authorize(
        &w,
        &two.0,
        &[("response_mode", "form_post"), ("prompt", "none")],
    ));
    assert!(
        refused
            .body
            .contains("name=\"error\" value=\"login_required\""),
        "{}",
        refused.body
    );

    // Logout: a post_logout_redirect_uri the client did not register redirects nowhere.
    let logout = |extra: &[(&str, &str)]| {
        let mut pairs = vec![("id_token_hint", id_token.as_str())];
        pairs.extend_from_slice(extra);
        browser.get(&format!(
            "{}/logout?{}",
            w.issuer,
            encode(pairs.into_iter())
        ))
    };
    let open_redirect = logout(&[("post_logout_redirect_uri", "https://evil.test/")]);
    assert_eq!((open_redirect.status, open_redirect.location), (400, None));
    assert!(
        browser.cookie("milagro_idp_session").is_some(),
        "still signed in"
    );
    // With the hint of the session's person: signed out at once, sent to the registered
    // URI with state, the cookie cleared.
    let out = logout(&[("post_logout_redirect_uri", LOGGED_OUT), ("state", "bye")]);
    assert_eq!(
        out.location.as_deref(),
        Some(format!("{LOGGED_OUT}?state=bye").as_str())
    );
    assert!(browser.cookie("milagro_idp_session").is_none());
    // Each client of the session gets a logout token, checked against the JWKS.
    let mut audiences = Vec::new();
    for _ in 0..2 {
        let token = logout_tokens
            .recv_timeout(PATIENCE)
            .expect("a logout token");
        let claims = verified_claims(&w, &token);
        assert_eq!(claims["iss"], w.issuer);
        assert_eq!(claims["sid"], sid);
        assert_eq!(claims["sub"], verified_claims(&w, &id_token)["sub"]);
        assert_eq!(
            claims["events"],
            json!({"http://schemas.openid.net/event/backchannel-logout": {}})
        );
        assert!(claims.get("nonce").is_none() && claims["jti"].is_string());
        audiences.push(claims["aud"].as_str().unwrap().to_owned());
    }
    audiences.sort();
    let mut expected = vec![one.0.clone(), two.0.clone()];
    expected.sort();
    assert_eq!(audiences, expected);
    let after = browser.get(&authorize(&w, &one.0, &[("prompt", "none")]));
    assert_eq!(error_of(&after), "login_required");

    // Without a hint, the person is asked (a forged confirmation is refused).
    let signed_in = browser.follow(browser.sign_in(&browser.get(&authorize(&w, &one.0, &[]))));
    assert!(!code_of(&w, &signed_in).is_empty(), "consent remembered");
    let ask = browser.get("/logout");
    assert!(
        ask.status == 200 && ask.body.contains("id=\"confirm\""),
        "{ask:?}"
    );
    let forged = vec![("confirm".to_owned(), "yes".to_owned())];
    assert_eq!(browser.post("/logout", &forged).status, 403);
    assert!(browser.cookie("milagro_idp_session").is_some());
    let confirmed = browser.submit(&ask, "/logout", &[]);
    assert!(confirmed.body.contains("signed-out"), "{confirmed:?}");
    assert!(browser.cookie("milagro_idp_session").is_none());

    // The sweep (the IdP's own, on its chain loop) deletes the codes and tokens once
    // expired, the used ones too.
    let rows = |tree: &str| w.idp.state().db.open_tree(tree).unwrap().len();
    assert!(rows("codes") > 0 && rows("tokens") > 0);
    wait_until(
        "the sweep to delete expired codes and tokens",
        PATIENCE,
        || {
            w.node.mine(1);
            (rows("codes") == 0 && rows("tokens") == 0).then_some(())
        },
    );
}

#[test]
fn mod_auth_openidc_registers_unchanged_and_is_told_what_was_registered() {
    let w = IdpWorld::start("");
    let (status, registered) = w.register(&mod_auth_openidc_body());
    assert_eq!(status, 201, "{registered}");
    assert_eq!(
        registered["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(registered["response_types"], json!(["code"]));
    assert_eq!(
        registered["token_endpoint_auth_method"],
        "client_secret_basic"
    );
    assert_eq!(
        registered["backchannel_logout_uri"],
        "http://127.0.0.1:9/protected/redirect_uri?logout=backchannel"
    );
    assert_eq!(
        registered["post_logout_redirect_uris"],
        json!(["http://127.0.0.1:9/loggedout.html"])
    );
    assert!(registered["client_secret"].is_string());
    // Discovery says what a relying party needs for sessions and logout.
    let (_, discovery) = w.get("/.well-known/openid-configuration");
    assert_eq!(
        discovery["end_session_endpoint"],
        format!("{}/logout", w.issuer)
    );
    assert_eq!(discovery["backchannel_logout_supported"], true);
    assert_eq!(discovery["backchannel_logout_session_supported"], true);
    assert_eq!(
        discovery["response_modes_supported"],
        json!(["query", "form_post"])
    );
    assert!(discovery["prompt_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("none")));
}
