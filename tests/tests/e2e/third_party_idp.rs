//! Issue 14: a D-TA accepts ID tokens from an OpenID provider outside this project, over
//! verified HTTPS, bound to the device that logged in (ADR 0015). Against a real regtest
//! node, two real D-TAs on loopback and `oidc-provider` (npm, pinned major 9) serving three
//! providers over HTTPS with a certificate of a test CA: one signing ID tokens RS256, one
//! ES256, one the D-TAs do not trust. No IdP of this project runs.
//!
//! Each device (an anchored PAT) logs in at a provider with the authorization-code flow
//! (PKCE, the provider's own login and consent pages), its `nonce` a commitment to its
//! anchored key (`milagro_anchor::id_token_nonce`), and presents the ID token and the
//! commitment's salt to the D-TA over Milagro TLS. D-TA 1 trusts the first two providers
//! with `trust = "web_pki"` and the test CA as `[outbound_http] ca_bundle`; D-TA 2 the
//! same providers with another CA's bundle. Then the attacks: device B presents A's token
//! (with A's salt), a token without its salt, a token of the untrusted provider, and D-TA
//! 2 is given a good token: each refused with its code, a logged reason, nothing issued.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use milagro_anchor::birth_certificate::Role;
use milagro_anchor::dpop::Thumbprint;
use milagro_anchor::id_token_nonce::{commitment, NonceSalt};
use milagro_dta::issuance::mpin_id;
use milagro_dta::{Dta, RunningDta};
use milagro_tests::dta_common::{
    call, numbered_config, wait_for_anchors_broadcast, wait_for_share_api,
};
use milagro_tests::enrolment_world::EnrolmentWorld;
use milagro_tests::https::TestTls;
use milagro_tests::third_party_op::{log_in, ThirdPartyOps, CLIENT_ID, USER};
use milagro_tests::tls_parties::TlsParty;
use serde_json::{json, Value};

/// A fresh salt and the nonce committing `device` to it.
fn nonce_for(device: &TlsParty) -> (NonceSalt, String) {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    let salt = NonceSalt::from_bytes(bytes);
    let nonce = commitment(&Thumbprint::of(device.bc.public_key()), &salt);
    (salt, nonce)
}

/// The decoded `part` (0: header, 1: claims) of a compact JWS.
fn decoded(token: &str, part: usize) -> Value {
    serde_json::from_slice(&B64URL.decode(token.split('.').nth(part).unwrap()).unwrap()).unwrap()
}

fn body(token: &str, salt: Option<&NonceSalt>) -> Vec<u8> {
    let mut body = json!({ "id_token": token });
    if let Some(salt) = salt {
        body["nonce_salt"] = json!(salt.encode());
    }
    body.to_string().into_bytes()
}

fn issued(dta: &RunningDta) -> u64 {
    dta.state().audit.tree_head().size.get()
}

#[test]
fn a_d_ta_takes_third_party_id_tokens_over_verified_https_bound_to_the_device_by_their_nonce() {
    let logs = milagro_tests::logs::capture();
    let tls = TestTls::new();
    let other_ca = TestTls::new();
    let ops = ThirdPartyOps::start(&tls, &["RS256", "ES256", "RS256"]);
    let (rs256, es256, stranger) = (&ops.issuers[0], &ops.issuers[1], &ops.issuers[2]);
    let w = EnrolmentWorld::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        TlsParty::broadcast(&w, Role::Pat, "badge A"),
        TlsParty::broadcast(&w, Role::Pat, "badge B"),
    );
    let trusting = |bundle: std::path::PathBuf| {
        let idps: String = [rs256, es256]
            .iter()
            .map(|issuer| {
                format!(
                    "[[trusted_idps]]\nissuer = {issuer:?}\ntrust = \"web_pki\"\nclient_id = {CLIENT_ID:?}\n"
                )
            })
            .collect();
        format!("{idps}[outbound_http]\nca_bundle = {bundle:?}\n")
    };
    let dta = Dta::start(numbered_config(&w, dir.path(), 1, &trusting(tls.bundle()))).unwrap();
    let misled = Dta::start(numbered_config(
        &w,
        dir.path(),
        2,
        &trusting(other_ca.bundle()),
    ))
    .unwrap();
    wait_for_anchors_broadcast(&[], &[dta.local_url(), misled.local_url()]);
    w.mine(6);
    wait_for_share_api(&w, &dta);
    wait_for_share_api(&w, &misled);
    let outbound = tls.outbound();

    // Device A logs in at the RS256 provider, B at the ES256 one; each gets its shares.
    let (a_salt, a_nonce) = nonce_for(&a);
    let a_token = log_in(&outbound, rs256, &a_nonce);
    let (b_salt, b_nonce) = nonce_for(&b);
    let b_token = log_in(&outbound, es256, &b_nonce);
    for (token, alg, nonce) in [(&a_token, "RS256", &a_nonce), (&b_token, "ES256", &b_nonce)] {
        assert_eq!(decoded(token, 0)["alg"], alg);
        let claims = decoded(token, 1);
        assert_eq!(
            (&claims["nonce"], &claims["sub"]),
            (&json!(nonce), &json!(USER))
        );
        assert!(
            claims.get("cnf").is_none(),
            "a third party binds nothing itself"
        );
    }
    for (device, token, salt, issuer, n) in [
        (&a, &a_token, &a_salt, rs256, 2),
        (&b, &b_token, &b_salt, es256, 4),
    ] {
        let (status, shares) = call(
            &w,
            &dta,
            device,
            "POST",
            "/v1/shares/client",
            body(token, Some(salt)),
        )
        .unwrap();
        assert_eq!(status, 200, "{shares}");
        let expected = mpin_id(issuer, USER, device.bc.public_key()).unwrap();
        assert_eq!(
            shares["mpin_id"].as_str().unwrap().as_bytes(),
            expected.as_bytes()
        );
        assert_eq!(issued(&dta), n, "a client share and a permit logged");
    }

    // Refused, each with its code and a logged reason, nothing issued.
    let refused = |target: &RunningDta, who: &TlsParty, body: Vec<u8>, status, code: &str| {
        let (mark, before) = (logs.mark(), issued(target));
        let (found, answer) = call(&w, target, who, "POST", "/v1/shares/client", body).unwrap();
        assert_eq!(
            (found, answer["error"].as_str()),
            (status, Some(code)),
            "{answer}"
        );
        let logged = logs.since(mark);
        assert!(
            logged.contains("refused an id token") && logged.contains(code),
            "{logged}"
        );
        assert_eq!(issued(target), before, "nothing issued");
        (
            answer["error_description"].as_str().unwrap().to_owned(),
            logged,
        )
    };
    // B presents A's token, with the salt that opens its nonce: bound to A's key.
    let (reason, _) = refused(
        &dta,
        &b,
        body(&a_token, Some(&a_salt)),
        401,
        "token_bound_to_another_key",
    );
    assert!(
        reason.contains(Thumbprint::of(b.bc.public_key()).as_str()),
        "{reason}"
    );
    // With B's own salt it commits to nothing of B's either.
    refused(
        &dta,
        &b,
        body(&a_token, Some(&b_salt)),
        401,
        "token_bound_to_another_key",
    );
    // Without a salt nothing binds the token to any device.
    refused(&dta, &a, body(&a_token, None), 401, "token_not_bound");
    // A provider the D-TA was not told to trust, over the same trusted CA.
    let (s_salt, s_nonce) = nonce_for(&a);
    let s_token = log_in(&outbound, stranger, &s_nonce);
    refused(
        &dta,
        &a,
        body(&s_token, Some(&s_salt)),
        403,
        "untrusted_issuer",
    );
    // A D-TA whose bundle is another CA's does not believe the provider's HTTPS, so it
    // never takes its keys: the good token of A is refused, naming the certificate.
    let (_, logged) = refused(
        &misled,
        &a,
        body(&a_token, Some(&a_salt)),
        503,
        "idp_unavailable",
    );
    assert!(
        logged.contains("UnknownIssuer") || logged.contains("invalid peer certificate"),
        "{logged}"
    );

    // The token still serves the device it is bound to.
    let (status, _) = call(
        &w,
        &dta,
        &a,
        "POST",
        "/v1/shares/client",
        body(&a_token, Some(&a_salt)),
    )
    .unwrap();
    assert_eq!(status, 200);
    dta.stop();
    misled.stop();
    drop(ops);
}
