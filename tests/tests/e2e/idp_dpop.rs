//! DPoP (RFC 9449) at a real IdP on loopback, anchored on a real regtest node: a token
//! request with a proof gets DPoP-bound tokens (`token_type: DPoP`, `cnf.jkt` in the ID
//! token); a proof for another URI, a replayed one, or one by another key than the
//! grant's is refused (`invalid_dpop_proof`) before anything is spent; the bound access
//! token is accepted at `/userinfo` only with a fresh proof by its key, never as a Bearer
//! token; its refresh token only with a proof by the same key (ADR 0012).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::idp_common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use idp_common::{encode, query, IdpWorld, PASSWORD, REDIRECT, USER};
use milagro_anchor::dpop::{self, Thumbprint};
use milagro_anchor::keys::SecretKey;
use serde_json::{json, Value};

/// A proof by `key` for `method` on the IdP's `path`, with `jti`, made now.
fn proof(
    w: &IdpWorld,
    key: &SecretKey,
    method: &str,
    path: &str,
    at: Option<&str>,
    jti: &str,
) -> String {
    let uri = format!("{}{path}", w.issuer);
    let request = dpop::Request {
        method,
        uri: &uri,
        access_token: at,
    };
    dpop::sign(key, &request, jti, milagro_service::unix_now())
}

fn claims(id_token: &str) -> Value {
    let payload = id_token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64URL.decode(payload).unwrap()).unwrap()
}

#[test]
fn a_proof_binds_the_tokens_and_a_bad_replayed_or_foreign_one_spends_nothing() {
    let w = IdpWorld::start("");
    let (status, metadata) = w.get("/.well-known/openid-configuration");
    assert_eq!(status, 200);
    assert_eq!(
        metadata["dpop_signing_alg_values_supported"],
        json!(["ES256K"])
    );
    let (status, client) = w.register(&json!({
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
    }));
    assert_eq!(status, 201, "{client}");
    let (id, secret) = (
        client["client_id"].as_str().unwrap().to_owned(),
        client["client_secret"].as_str().unwrap().to_owned(),
    );
    let code = || {
        let url = format!(
            "{}/authorize?{}",
            w.issuer,
            encode(
                [
                    ("response_type", "code"),
                    ("client_id", id.as_str()),
                    ("redirect_uri", REDIRECT),
                    ("scope", "openid"),
                    ("state", "s"),
                ]
                .into_iter()
            )
        );
        query(&w.login(&url, USER, PASSWORD).unwrap())["code"].clone()
    };
    let token = |form: &[(&str, &str)], proof: Option<&str>| {
        let mut request = w
            .http
            .post(format!("{}/token", w.issuer))
            .basic_auth(&id, Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(form.iter().copied()));
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        let answer = request.send().unwrap();
        (answer.status().as_u16(), answer.json::<Value>().unwrap())
    };
    let redeem = |code: &str, proof: Option<&str>| {
        token(
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
            ],
            proof,
        )
    };
    let device = SecretKey::from_bytes(&[5; 32]).unwrap();
    let other = SecretKey::from_bytes(&[6; 32]).unwrap();

    // A proof made for another URI, or not a proof: refused, and the code is not spent.
    let first = code();
    for bad in [
        proof(&w, &device, "POST", "/userinfo", None, "j0"),
        "a.b.c".into(),
    ] {
        let (status, refused) = redeem(&first, Some(&bad));
        assert_eq!(
            (status, refused["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{refused}"
        );
    }
    let used = proof(&w, &device, "POST", "/token", None, "j1");
    let (status, bound) = redeem(&first, Some(&used));
    assert_eq!(status, 200, "{bound}");
    assert_eq!(bound["token_type"], "DPoP");
    let jkt = Thumbprint::of(&device.public_key());
    assert_eq!(
        claims(bound["id_token"].as_str().unwrap())["cnf"]["jkt"],
        jkt.as_str()
    );

    // The same proof again is a replay, refused without spending the second code, which
    // then gets unbound tokens without a proof, as a standard client's.
    let second = code();
    let (status, refused) = redeem(&second, Some(&used));
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("invalid_dpop_proof"))
    );
    assert!(refused["error_description"]
        .as_str()
        .unwrap()
        .contains("already used"));
    let (status, plain) = redeem(&second, None);
    assert_eq!(
        (status, plain["token_type"].as_str()),
        (200, Some("Bearer"))
    );
    assert!(claims(plain["id_token"].as_str().unwrap())
        .get("cnf")
        .is_none());

    // The bound access token at /userinfo: never as Bearer, only with a proof by its key.
    let access = bound["access_token"].as_str().unwrap();
    let userinfo = |scheme: &str, proof: Option<&str>| {
        let mut request = w
            .http
            .get(format!("{}/userinfo", w.issuer))
            .header("authorization", format!("{scheme} {access}"));
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        let answer = request.send().unwrap();
        let challenge = answer
            .headers()
            .get("www-authenticate")
            .map(|h| h.to_str().unwrap().to_owned());
        (
            answer.status().as_u16(),
            challenge,
            answer.json::<Value>().unwrap(),
        )
    };
    let good = proof(&w, &device, "GET", "/userinfo", Some(access), "j2");
    let cases = [
        ("Bearer", None),
        ("DPoP", None),
        (
            "DPoP",
            Some(proof(&w, &other, "GET", "/userinfo", Some(access), "j3")),
        ),
        (
            "DPoP",
            Some(proof(
                &w,
                &device,
                "GET",
                "/userinfo",
                Some("another token"),
                "j4",
            )),
        ),
    ];
    for (scheme, proof) in cases {
        let (status, challenge, body) = userinfo(scheme, proof.as_deref());
        assert_eq!(status, 401, "{scheme}: {body}");
        assert!(challenge.unwrap().starts_with("DPoP "), "{scheme}");
    }
    let (status, _, info) = userinfo("DPoP", Some(&good));
    assert_eq!(status, 200, "{info}");
    assert!(info["sub"].is_string());
    assert_eq!(userinfo("DPoP", Some(&good)).0, 401, "a proof counts once");
    // An unbound token stays a Bearer token.
    let plain_access = plain["access_token"].as_str().unwrap();
    let answer = w
        .http
        .get(format!("{}/userinfo", w.issuer))
        .bearer_auth(plain_access)
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);

    // The refresh token needs a proof by the grant's key; without one, or by another key,
    // it is refused and not burnt.
    let refresh = bound["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let foreign = proof(&w, &other, "POST", "/token", None, "j5");
    for attempt in [None, Some(foreign.as_str())] {
        let (status, refused) = token(&form, attempt);
        assert_eq!(
            (status, refused["error"].as_str()),
            (400, Some("invalid_dpop_proof")),
            "{refused}"
        );
    }
    let (status, refreshed) = token(
        &form,
        Some(&proof(&w, &device, "POST", "/token", None, "j6")),
    );
    assert_eq!(
        (status, refreshed["token_type"].as_str()),
        (200, Some("DPoP")),
        "{refreshed}"
    );
    assert_eq!(
        claims(refreshed["id_token"].as_str().unwrap())["cnf"]["jkt"],
        jkt.as_str()
    );
}
