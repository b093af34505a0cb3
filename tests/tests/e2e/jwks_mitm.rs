//! Issue 13, attack 3: ID tokens signed by a key bound to nothing. The D-TA reaches its
//! IdP over plain HTTP, so anyone on that path can serve their own JWKS and mint ID tokens
//! for any subject with their own key, collecting every D-TA's client shares.
//!
//! Against a real regtest node, a real IdP and a real D-TA on loopback, with a real
//! proxy between the D-TA and the IdP (the IdP's issuer URL is the proxy's; the user
//! reaches the IdP directly): an honest token gets its shares through the proxy; each
//! way the proxy serves the attacker's keys (the plain JWKS swapped, the signed JWKS
//! re-signed with the attacker's own secp256k1 key, replaced by a plain one, or dropped
//! from the discovery document) gets 401 for a token that verifies with the attacker's
//! keys, issues nothing, and the D-TA logs the refusal with its reason (ADR 0010). Key
//! rotation keeps working through the signed JWKS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::dta_common;
use milagro_tests::idp_common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use dta_common::{
    call, config as config_dta, sealing_key_file, wait_for_anchors_broadcast, wait_for_share_api,
};
use idp_common::{
    alice_id_token, free_port, idp_config_at, register_client, start_configured_idp_with_alice,
    wait_for_certificate,
};
use milagro_anchor::birth_certificate::Role;
use milagro_anchor::keys::SecretKey;
use milagro_anchor::signed_jwks;
use milagro_dta::{Dta, RunningDta};
use milagro_idp::keys::Es256Key;
use milagro_idp::RunningIdp;
use milagro_tests::enrolment_world::EnrolmentWorld;
use milagro_tests::on_path::{Answer, OnPathProxy};
use milagro_tests::tls_parties::TlsParty;
use milagro_tests::wait_until;
use openidconnect::core::{
    CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
};
use openidconnect::{ClientId, IssuerUrl, Nonce};
use serde_json::{json, Value};

const DISCOVERY: &str = "/.well-known/openid-configuration";

/// An ID token for `subject` that `key` signs (ES256), as the IdP's would be.
fn mint(key: &Es256Key, issuer: &str, audience: &str, subject: &str) -> String {
    let now = milagro_service::unix_now();
    let part = |value: Value| B64URL.encode(value.to_string());
    let input = format!(
        "{}.{}",
        part(json!({"alg": "ES256", "typ": "JWT", "kid": key.kid()})),
        part(json!({"iss": issuer, "sub": subject, "aud": [audience],
                    "iat": now, "exp": now + 300, "auth_time": now})),
    );
    format!(
        "{input}.{}",
        B64URL.encode(key.sign_jws(input.as_bytes()).unwrap())
    )
}

fn answer(content_type: &str, body: String) -> Answer {
    Answer {
        status: 200,
        content_type: content_type.into(),
        body,
    }
}

/// A world, an IdP (user alice) behind a proxy whose URL is its issuer, and a D-TA that
/// trusts it and reaches it through the proxy; the user reaches the IdP directly. Fields
/// drop in order: the services stop before the proxy, their directory and the node go.
struct OnPathWorld {
    dta: RunningDta,
    pat: TlsParty,
    idp: RunningIdp,
    proxy: OnPathProxy,
    /// What the proxy answers instead of the IdP, by path.
    forged: Arc<Mutex<HashMap<&'static str, Answer>>>,
    /// Where the IdP listens (the user's way in).
    idp_url: String,
    /// The D-TA's client at the IdP.
    client: (String, String),
    _dir: tempfile::TempDir,
    w: EnrolmentWorld,
}

impl OnPathWorld {
    /// Starts everything, the IdP with `idp_extra` TOML, and waits until the IdP's anchor
    /// is deep enough for the D-TA and its share API serves.
    fn start(idp_extra: &str) -> Self {
        let w = EnrolmentWorld::start();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let idp_url = format!("http://127.0.0.1:{port}");
        let forged: Arc<Mutex<HashMap<&'static str, Answer>>> = Arc::default();
        let proxy = OnPathProxy::start(&idp_url, {
            let forged = forged.clone();
            move |path, real| forged.lock().unwrap().get(path).cloned().unwrap_or(real)
        });
        let issuer = proxy.url().to_owned();
        let idp_dir = dir.path().join("idp");
        let config = idp_config_at(w.node(), &idp_dir, port, &issuer, idp_extra);
        let (idp, named, _) = start_configured_idp_with_alice(config);
        assert_eq!(named, issuer);
        let client = register_client(&idp_url);
        let trusted = format!(
            "[[trusted_idps]]\nissuer = {issuer:?}\nbc_digest = \"{}\"\nclient_id = {:?}\n",
            idp.state().identity.digest(),
            client.0
        );
        let master_key = sealing_key_file(dir.path());
        let dta = Dta::start(config_dta(
            &w,
            &dir.path().join("dta"),
            &master_key,
            &trusted,
        ));
        let dta = dta.unwrap();
        wait_for_anchors_broadcast(&[&idp], &[dta.local_url()]);
        let pat = TlsParty::broadcast(&w, Role::Pat, "pat");
        w.mine(6);
        wait_for_share_api(&w, &dta);
        wait_for_certificate(&idp_url);
        Self {
            dta,
            pat,
            idp,
            proxy,
            forged,
            idp_url,
            client,
            _dir: dir,
            w,
        }
    }

    /// The issuer: the proxy's URL.
    fn issuer(&self) -> &str {
        self.proxy.url()
    }

    /// The PAT asks the D-TA for its client share with `token`: status and JSON.
    fn ask(&self, token: &str) -> (u16, Value) {
        let body = json!({ "id_token": token }).to_string().into_bytes();
        call(
            &self.w,
            &self.dta,
            &self.pat,
            "POST",
            "/v1/shares/client",
            body,
        )
        .unwrap()
    }

    /// Issuances logged by the D-TA.
    fn issued(&self) -> u64 {
        self.dta.state().audit.tree_head().size.get()
    }

    /// A fresh ID token of alice's for the D-TA.
    fn alice(&self) -> String {
        alice_id_token(&self.idp_url, &self.client, &self.pat.key)
    }
}

#[test]
fn a_proxy_serving_its_own_keys_between_a_d_ta_and_the_idp_gets_401_and_a_logged_reason() {
    let logs = milagro_tests::logs::capture();
    let p = OnPathWorld::start("");
    let (issuer, client) = (p.issuer().to_owned(), p.client.clone());
    let digest = p.idp.state().identity.digest();
    let idp_url = &p.idp_url;

    // The honest path, through the proxy: alice's token gets her shares.
    let (status, shares) = p.ask(&p.alice());
    assert_eq!(status, 200, "{shares}");
    assert_eq!(p.issued(), 2, "client share and permit logged");

    // The attacker's keys: a P-256 key that signs its tokens, its JWKS, and a secp256k1
    // key to sign that JWKS with, claiming the IdP's certificate.
    let attacker = Es256Key::generate(0);
    let attacker_jwks = json!({ "keys": [attacker.jwk()] }).to_string();
    let attacker_anchor_key = SecretKey::generate(&mut rand_core::OsRng);
    let now = milagro_service::unix_now();
    let resigned = signed_jwks::sign(
        &attacker_anchor_key,
        digest,
        &issuer,
        vec![attacker.jwk()],
        now,
        now + 300,
    );
    let minted = mint(&attacker, &issuer, &client.0, "victim");
    // The minted token is good against the attacker's keys: only the binding refuses it.
    let keys: CoreJsonWebKeySet = serde_json::from_str(&attacker_jwks).unwrap();
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(client.0.clone()),
        IssuerUrl::new(issuer.clone()).unwrap(),
        keys,
    )
    .set_allowed_algs(vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256]);
    let parsed: CoreIdToken = minted.parse().unwrap();
    let claims = parsed
        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
        .unwrap();
    assert_eq!(claims.subject().as_str(), "victim");

    let mut plain_discovery: Value = milagro_http_client::Outbound::system()
        .unwrap()
        .client()
        .unwrap()
        .get(format!("{idp_url}{DISCOVERY}"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        plain_discovery["signed_jwks_uri"],
        format!("{issuer}/jwks.jwt")
    );
    plain_discovery
        .as_object_mut()
        .unwrap()
        .remove("signed_jwks_uri");
    let json_type = "application/json";
    let jwks = ("/jwks", answer(json_type, attacker_jwks.clone()));
    // What the proxy serves, the answer, and what the D-TA's log line must name.
    let cases = [
        (
            vec![jwks.clone()],
            "invalid_token",
            "the id token does not verify",
        ),
        (
            vec![
                jwks.clone(),
                ("/jwks.jwt", answer(signed_jwks::MEDIA_TYPE, resigned)),
            ],
            "idp_keys_not_bound",
            "signature does not verify with the birth certificate's key",
        ),
        (
            vec![
                jwks.clone(),
                ("/jwks.jwt", answer(signed_jwks::MEDIA_TYPE, attacker_jwks)),
            ],
            "idp_keys_not_bound",
            "malformed signed jwk set",
        ),
        (
            vec![
                jwks,
                (DISCOVERY, answer(json_type, plain_discovery.to_string())),
            ],
            "idp_keys_not_bound",
            "names no signed_jwks_uri",
        ),
    ];
    for (i, (forgeries, code, reason)) in cases.into_iter().enumerate() {
        *p.forged.lock().unwrap() = forgeries.into_iter().collect();
        let mark = logs.mark();
        let (status, refused) = p.ask(&minted);
        assert_eq!(
            (status, refused["error"].as_str()),
            (401, Some(code)),
            "case {i}: {refused}"
        );
        let logged = logs.since(mark);
        let line = logged
            .lines()
            .find(|line| line.contains("refused an id token"))
            .unwrap_or_else(|| panic!("case {i}: no refusal logged in {logged:?}"));
        assert!(
            line.contains("WARN") && line.contains(code) && line.contains(reason),
            "case {i}: {line}"
        );
    }
    assert_eq!(p.issued(), 2, "the attacker got no share");

    // The attacker gone, the honest path still works (the genuine keys, checked afresh).
    p.forged.lock().unwrap().clear();
    let (status, again) = p.ask(&p.alice());
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["client_share"], shares["client_share"]);
}

/// The `kid` in an ID token's header.
fn kid_of(token: &str) -> String {
    let header = B64URL.decode(token.split('.').next().unwrap()).unwrap();
    let header: Value = serde_json::from_slice(&header).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// Key rotation keeps working through the signed JWKS: a token signed with the IdP's next
/// key (published ahead in the signed set, or fetched afresh when the D-TA's copy lacks
/// it) gets the same shares as one signed with the first.
#[test]
fn the_d_ta_follows_the_idps_key_rotation_through_its_signed_jwks() {
    // Keys sign for 6 s, are published 3 s ahead.
    let p = OnPathWorld::start("[keys]\nrotation_secs = 6\nprepublish_secs = 3\n");
    let first = p.alice();
    let (status, shares) = p.ask(&first);
    assert_eq!(status, 200, "{shares}");
    let next = wait_until(
        "a token signed with the next key",
        std::time::Duration::from_secs(30),
        || {
            let token = p.alice();
            if kid_of(&token) != kid_of(&first) {
                return Some(token);
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
            None
        },
    );
    let (status, again) = p.ask(&next);
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["client_share"], shares["client_share"]);
}
