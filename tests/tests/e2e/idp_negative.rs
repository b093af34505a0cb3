//! The IdP refuses what the specs say to refuse, with the codes they name, and never
//! answers 500: wrong redirect URI, reused code (which also revokes its tokens), wrong
//! PKCE verifier, expired code, tampered token, unknown client, wrong secret, bad JSON,
//! wrong grant types, a missing CSRF cookie, a wrong password; of concurrent redemptions
//! of one code, one wins.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::idp_common;

use idp_common::{encode, query, IdpWorld, PASSWORD, USER};
use serde_json::{json, Value};

const REDIRECT: &str = "https://rp.milagro.test/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A confidential client's id and secret.
fn client(w: &IdpWorld) -> (String, String) {
    let (status, body) = w.register(&json!({"redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"]}));
    assert_eq!(status, 201, "{body}");
    (
        body["client_id"].as_str().unwrap().into(),
        body["client_secret"].as_str().unwrap().into(),
    )
}

fn authorize_url(w: &IdpWorld, client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("state", "s1"),
        ("nonce", "n1"),
    ];
    pairs.extend_from_slice(extra);
    format!("{}/authorize?{}", w.issuer, encode(pairs.into_iter()))
}

/// Logs in and returns a fresh code (with the PKCE challenge of [`VERIFIER`]).
fn code(w: &IdpWorld, client_id: &str) -> String {
    let url = authorize_url(
        w,
        client_id,
        &[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    );
    let location = w.login(&url, USER, PASSWORD).unwrap();
    query(&location)["code"].clone()
}

fn exchange(
    w: &IdpWorld,
    (id, secret): (&str, &str),
    code: &str,
    verifier: &str,
    redirect: &str,
) -> (u16, Value) {
    w.post_form(
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ],
        Some((id, secret)),
    )
}

fn assert_error(answer: (u16, Value), status: u16, code: &str) {
    assert_eq!(
        (answer.0, answer.1["error"].as_str()),
        (status, Some(code)),
        "{}",
        answer.1
    );
}

#[test]
fn every_bad_request_gets_the_error_code_its_spec_names() {
    let w = IdpWorld::start("[tokens]\ncode_secs = 2\n");
    let (id, secret) = client(&w);
    let creds = (id.as_str(), secret.as_str());

    // A redirect URI the client did not register: shown to the person, never redirected.
    let bad = authorize_url(&w, &id, &[]).replace("rp.milagro.test", "evil.test");
    let (status, page) = w.login(&bad, USER, PASSWORD).unwrap_err();
    assert_eq!(status, 400);
    assert!(page.contains("not one the client registered"), "{page}");
    // Unknown client at the authorization endpoint: the same.
    assert_eq!(
        w.login(&authorize_url(&w, "nobody", &[]), USER, PASSWORD)
            .unwrap_err()
            .0,
        400
    );
    // Errors after the redirect URI is trusted go back to the client, with state and iss.
    let location = w
        .login(
            &authorize_url(
                &w,
                &id,
                &[("code_challenge_method", "plain"), ("code_challenge", "x")],
            ),
            USER,
            PASSWORD,
        )
        .unwrap();
    let answer = query(&location);
    assert_eq!(
        (answer["error"].as_str(), answer["state"].as_str()),
        ("invalid_request", "s1")
    );
    assert_eq!(answer["iss"], w.issuer);
    let no_openid = authorize_url(&w, &id, &[]).replace("scope=openid", "scope=email");
    assert_eq!(
        query(&w.login(&no_openid, USER, PASSWORD).unwrap())["error"],
        "invalid_scope"
    );
    let token_flow =
        authorize_url(&w, &id, &[]).replace("response_type=code", "response_type=token");
    assert_eq!(
        query(&w.login(&token_flow, USER, PASSWORD).unwrap())["error"],
        "unsupported_response_type"
    );

    // A wrong password shows the page again, with no code.
    let (status, page) = w
        .login(&authorize_url(&w, &id, &[]), USER, "wrong password")
        .unwrap_err();
    assert_eq!(status, 401);
    assert!(page.contains("Wrong username or password"), "{page}");

    // Wrong PKCE verifier: invalid_grant, and the code is spent.
    let c = code(&w, &id);
    let wrong = "x".repeat(43);
    assert_error(
        exchange(&w, creds, &c, &wrong, REDIRECT),
        400,
        "invalid_grant",
    );
    assert_error(
        exchange(&w, creds, &c, VERIFIER, REDIRECT),
        400,
        "invalid_grant",
    );
    // A malformed verifier: invalid_request.
    assert_error(
        exchange(&w, creds, &code(&w, &id), "short", REDIRECT),
        400,
        "invalid_request",
    );
    // Redirect URI differing from the authorization request's.
    let c = code(&w, &id);
    assert_error(
        exchange(&w, creds, &c, VERIFIER, "https://rp.milagro.test/other"),
        400,
        "invalid_grant",
    );

    // A code used twice: invalid_grant, and the tokens it gave stop working.
    let c = code(&w, &id);
    let (status, tokens) = exchange(&w, creds, &c, VERIFIER, REDIRECT);
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let userinfo = |token: &str| {
        let response = w
            .http
            .get(format!("{}/userinfo", w.issuer))
            .bearer_auth(token)
            .send()
            .unwrap();
        (
            response.status().as_u16(),
            response.headers().get("www-authenticate").is_some(),
        )
    };
    assert_eq!(userinfo(access), (200, false));
    assert_error(
        exchange(&w, creds, &c, VERIFIER, REDIRECT),
        400,
        "invalid_grant",
    );
    assert_eq!(userinfo(access), (401, true));
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_error(
        w.post_form(
            "/token",
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
            Some(creds),
        ),
        400,
        "invalid_grant",
    );

    // An expired code (lifetime 2 s here, so at least 1 s after rounding to seconds: more than an exchange takes).
    let c = code(&w, &id);
    std::thread::sleep(std::time::Duration::from_millis(3100));
    assert_error(
        exchange(&w, creds, &c, VERIFIER, REDIRECT),
        400,
        "invalid_grant",
    );

    // Client authentication: unknown client, wrong secret, two methods at once.
    let c = code(&w, &id);
    assert_error(
        exchange(&w, ("nobody", "x"), &c, VERIFIER, REDIRECT),
        401,
        "invalid_client",
    );
    assert_error(
        exchange(&w, (&id, "wrong"), &c, VERIFIER, REDIRECT),
        401,
        "invalid_client",
    );
    let both = w.post_form(
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("client_secret", &secret),
        ],
        Some(creds),
    );
    assert_error(both, 400, "invalid_request");
    let post_instead = w.post_form(
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
        None,
    );
    assert_error(post_instead, 401, "invalid_client");

    // Grant types: unknown, and one the client did not register.
    assert_error(
        w.post_form("/token", &[("grant_type", "password")], Some(creds)),
        400,
        "unsupported_grant_type",
    );
    let device = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", "x"),
    ];
    assert_error(
        w.post_form("/token", &device, Some(creds)),
        400,
        "unauthorized_client",
    );
    assert_error(
        w.post_form("/token", &[("code", "x")], Some(creds)),
        400,
        "invalid_request",
    );
    let repeated = w.post_form(
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("grant_type", "refresh_token"),
        ],
        Some(creds),
    );
    assert_error(repeated, 400, "invalid_request");
    let json_body = w
        .http
        .post(format!("{}/token", w.issuer))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(json_body.status().as_u16(), 400);

    // Tampered tokens: an access token with a changed byte, a forged ID token signature.
    let c = code(&w, &id);
    let (_, tokens) = exchange(&w, creds, &c, VERIFIER, REDIRECT);
    let access = tokens["access_token"].as_str().unwrap();
    let mut tampered = access.to_owned();
    tampered.replace_range(0..1, if access.starts_with('A') { "B" } else { "A" });
    assert_eq!(userinfo(&tampered), (401, true));
    assert_eq!(userinfo(tokens["id_token"].as_str().unwrap()), (401, true));
    let unauthenticated = w.http.get(format!("{}/userinfo", w.issuer)).send().unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);

    // Registration: bad JSON, bad metadata, bad redirect URIs.
    let raw = |body: &str| {
        let response = w
            .http
            .post(format!("{}/register", w.issuer))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().unwrap(),
        )
    };
    assert_error(raw("{not json"), 400, "invalid_client_metadata");
    assert_error(raw("[1,2]"), 400, "invalid_client_metadata");
    assert_error(
        w.register(&json!({"redirect_uris": ["http://rp.test/cb"]})),
        400,
        "invalid_redirect_uri",
    );
    // The implicit grant is not refused but replaced (RFC 7591 §2): the answer says so.
    let (status, implicit) =
        w.register(&json!({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}));
    assert_eq!(status, 201, "{implicit}");
    assert_eq!(implicit["grant_types"], json!(["authorization_code"]));
    assert_error(
        w.register(&json!({"redirect_uris": "not a list"})),
        400,
        "invalid_client_metadata",
    );

    // The login form without its CSRF cookie is refused.
    let url = authorize_url(&w, &id, &[]);
    let page = w.http.get(&url).send().unwrap().text().unwrap();
    let mut form = idp_common::hidden_fields(&page);
    form.push(("username".into(), USER.into()));
    form.push(("password".into(), PASSWORD.into()));
    let forged = w
        .http
        .post(format!("{}/login", w.issuer))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(form.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
        .send()
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    assert!(forged.headers().get("location").is_none());

    // Routes and methods that do not exist; discovery of another host.
    assert_error(w.get("/nothing"), 404, "not_found");
    let delete = w.http.delete(format!("{}/token", w.issuer)).send().unwrap();
    assert_eq!(delete.status().as_u16(), 405);
    assert_error(
        w.get("/.well-known/webfinger?resource=acct:alice@elsewhere.test"),
        404,
        "not_found",
    );
    assert_error(w.get("/.well-known/webfinger"), 400, "invalid_request");
    // The admin API without a configured token is off.
    let admin = w
        .http
        .post(format!("{}/v1/admin/users", w.issuer))
        .body("{}")
        .send()
        .unwrap();
    assert_eq!(admin.status().as_u16(), 403);
}

/// Eight clients race to redeem one code at the same moment (each on its own connection):
/// exactly one gets tokens; every other gets `invalid_grant`, and the reuse revokes what
/// the winner got. Done for several codes, so the race is really run.
#[test]
fn of_concurrent_redemptions_of_one_code_exactly_one_gets_tokens() {
    let w = IdpWorld::start("");
    let (id, secret) = client(&w);
    for _ in 0..5 {
        let c = code(&w, &id);
        let start = std::sync::Barrier::new(8);
        let form = encode(
            [
                ("grant_type", "authorization_code"),
                ("code", c.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ]
            .into_iter(),
        );
        // The world holds the in-process IdP (not shared across threads): the racers get
        // its client and URL only.
        let (http, url) = (&w.http, format!("{}/token", w.issuer));
        let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        let answer = http
                            .post(&url)
                            .basic_auth(&id, Some(&secret))
                            .header("content-type", "application/x-www-form-urlencoded")
                            .body(form.clone())
                            .send()
                            .unwrap();
                        (answer.status().as_u16(), answer.json::<Value>().unwrap())
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let winners: Vec<&Value> = answers
            .iter()
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| body)
            .collect();
        assert_eq!(winners.len(), 1, "{answers:?}");
        for answer in answers.iter().filter(|(status, _)| *status != 200) {
            assert_error(answer.clone(), 400, "invalid_grant");
        }
        let access = winners[0]["access_token"].as_str().unwrap();
        let revoked = w
            .http
            .get(format!("{}/userinfo", w.issuer))
            .bearer_auth(access)
            .send()
            .unwrap();
        assert_eq!(revoked.status().as_u16(), 401);
    }
}

#[test]
fn webfinger_names_the_issuer_for_accounts_at_its_host() {
    let w = IdpWorld::start("");
    let host = w.issuer.trim_start_matches("http://");
    let (status, body) = w.get(&format!(
        "/.well-known/webfinger?resource=acct:{USER}@{host}&rel=http://openid.net/specs/connect/1.0/issuer"
    ));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subject"], format!("acct:{USER}@{host}"));
    assert_eq!(
        body["links"][0]["rel"],
        "http://openid.net/specs/connect/1.0/issuer"
    );
    assert_eq!(body["links"][0]["href"], w.issuer);
}
