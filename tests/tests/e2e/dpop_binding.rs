//! Issue 13, attack 4: a stolen ID token must not become a lasting credential. Against a
//! real regtest node, a real IdP and two real D-TAs on loopback: device A logs in with
//! the device grant through the device library, proving its anchored key with DPoP
//! (RFC 9449), and gets an ID token bound to that key (`cnf.jkt`); device B, another
//! anchored PAT, presents A's token to every D-TA over Milagro TLS and is refused (401
//! `token_bound_to_another_key`, a logged reason, nothing issued, no permit renewals for
//! B), while A still gets its shares from each with the same token (ADR 0012).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::dta_common;
use milagro_tests::idp_common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use dta_common::{
    call, numbered_config, pat_shares, wait_for_anchors_broadcast, wait_for_share_api,
};
use idp_common::{
    approve_device, no_redirect_client, start_idp_with_alice, wait_for_certificate, PASSWORD,
};
use milagro_anchor::birth_certificate::Role;
use milagro_anchor::dpop::Thumbprint;
use milagro_anchor::instructions::ServiceAnchor;
use milagro_dta::issuance::mpin_id;
use milagro_dta::Dta;
use milagro_pat_client::idp_login::IdpLogin;
use milagro_tests::enrolment_world::EnrolmentWorld;
use milagro_tests::tls_parties::TlsParty;
use serde_json::{json, Value};

#[test]
fn a_token_bound_to_device_a_presented_with_device_bs_key_is_refused_by_every_d_ta() {
    let logs = milagro_tests::logs::capture();
    let w = EnrolmentWorld::start();
    let dir = tempfile::tempdir().unwrap();
    let (idp, issuer, subject) = start_idp_with_alice(w.node(), dir.path(), "idp");
    let http = no_redirect_client();
    // The group's client at the IdP: public, device grant, as `milagro pat login` uses.
    let registered: Value = http
        .post(format!("{issuer}/register"))
        .json(&json!({
            "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"],
            "token_endpoint_auth_method": "none",
            "client_name": "Staff badges",
        }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let (a, b) = (
        TlsParty::broadcast(&w, Role::Pat, "badge A"),
        TlsParty::broadcast(&w, Role::Pat, "badge B"),
    );
    let extra = format!(
        "[[trusted_idps]]\nissuer = {issuer:?}\nbc_digest = \"{}\"\nclient_id = {client_id:?}\n",
        idp.state().identity.digest(),
    );
    let dtas: Vec<_> = (1..=2u8)
        .map(|n| Dta::start(numbered_config(&w, dir.path(), n, &extra)).unwrap())
        .collect();
    let urls: Vec<String> = dtas.iter().map(|dta| dta.local_url()).collect();
    wait_for_anchors_broadcast(&[&idp], &urls);
    w.mine(6);
    for dta in &dtas {
        wait_for_share_api(&w, dta);
    }
    wait_for_certificate(&issuer);

    // Device A logs in: the device grant through the device library, every poll with a
    // DPoP proof by A's anchored key; the person approves on the IdP's page.
    let served: Value = http
        .get(format!("{issuer}/.well-known/milagro/birth-certificate"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let idp_anchor = ServiceAnchor {
        url: issuer.clone(),
        birth_certificate: idp.state().identity.digest(),
        anchor_proof: serde_json::from_value(served["anchor_proof"].clone()).unwrap(),
    };
    let pending = IdpLogin::discover(
        &milagro_http_client::Outbound::system().unwrap(),
        &idp_anchor,
        &client_id,
    )
    .unwrap()
    .start()
    .unwrap();
    let (status, page) = approve_device(&http, &issuer, pending.user_code(), PASSWORD);
    assert_eq!(status, 200, "{page}");
    let token = pending.wait(&a.key).unwrap();
    let claims: Value = serde_json::from_slice(
        &B64URL
            .decode(token.secret().split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let a_thumbprint = Thumbprint::of(a.bc.public_key());
    assert_eq!(claims["cnf"]["jkt"], a_thumbprint.as_str(), "{claims}");

    // Device B presents A's token to every D-TA: refused, naming the reason, nothing
    // issued, and so no permit to renew either.
    let body = || {
        json!({ "id_token": token.secret() })
            .to_string()
            .into_bytes()
    };
    for dta in &dtas {
        let mark = logs.mark();
        let (status, refused) = call(&w, dta, &b, "POST", "/v1/shares/client", body()).unwrap();
        assert_eq!(
            (status, refused["error"].as_str()),
            (401, Some("token_bound_to_another_key")),
            "{refused}"
        );
        let reason = refused["error_description"].as_str().unwrap();
        assert!(
            reason.contains(a_thumbprint.as_str())
                && reason.contains(Thumbprint::of(b.bc.public_key()).as_str()),
            "{reason}"
        );
        let logged = logs.since(mark);
        assert!(
            logged.contains("refused an id token") && logged.contains("token_bound_to_another_key"),
            "{logged}"
        );
        assert_eq!(
            dta.state().audit.tree_head().size.get(),
            0,
            "nothing issued"
        );
        let (status, refused) = call(&w, dta, &b, "POST", "/v1/shares/permit", vec![]).unwrap();
        assert_eq!(
            (status, refused["error"].as_str()),
            (403, Some("no_client_share")),
            "{refused}"
        );
    }

    // The same token still serves the device it is bound to, at every D-TA, for the
    // identity of A's key.
    let shares = pat_shares(&w, &a, &dtas.iter().collect::<Vec<_>>(), token.secret());
    let expected = mpin_id(&issuer, &subject, a.bc.public_key()).unwrap();
    assert_eq!(shares.len(), 2);
    for (dta, shares) in dtas.iter().zip(&shares) {
        assert_eq!(shares.id.as_bytes(), expected.as_bytes());
        assert_eq!(dta.state().audit.tree_head().size.get(), 2);
    }
    for dta in dtas {
        dta.stop();
    }
    drop(idp);
}
