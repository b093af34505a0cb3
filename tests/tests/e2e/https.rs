//! HTTPS on the services' public listeners, against real processes: a test CA signs a
//! certificate for `127.0.0.1`/`localhost`; the IdP, the TBS and the authentication
//! server serve it from their `[tls]` section; the `openidconnect` relying party,
//! `openid-client` from npm (`NODE_EXTRA_CA_CERTS`) and the device (`milagro-pat-client`)
//! connect with verification on; a client trusting another CA, or only the system's
//! roots, is refused; an off-loopback `http://` URL is refused before any request; a
//! renewed certificate is served without a restart, and a half-written renewal keeps the
//! old one. (SIGHUP with the real binary: `tests/cli/https.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_tests::idp_common;

use std::time::Duration;

use idp_common::{node_rp, query, IdpWorld, PASSWORD, PATIENCE, USER};
use milagro_anchor::birth_certificate::Role;
use milagro_http_client::{ClientError, Outbound};
use milagro_pat_client::{Error, Provisioning, Requested, ServiceClient, Stage};
use milagro_tests::authserver_common::AuthServerIdentity;
use milagro_tests::enrolment_world::{EnrolmentWorld, WorldOptions};
use milagro_tests::https::{is_untrusted_certificate, served_certificate, TestTls};
use milagro_tests::{wait_until, Api};
use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationFlow, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    RedirectUrl, Scope, TokenResponse as _,
};
use serde_json::json;

/// A client trusting `tls`'s CA, the system's roots, or another CA must each see (or not
/// see) `url`'s certificate.
fn only_the_test_ca_is_trusted(tls: &TestTls, url: &str) {
    assert_eq!(
        served_certificate(&tls.outbound(), url).unwrap(),
        tls.leaf.der
    );
    let other = TestTls::new();
    let refused = served_certificate(&other.outbound(), url).unwrap_err();
    assert!(is_untrusted_certificate(&refused), "{refused:?}");
    let refused = served_certificate(&Outbound::system().unwrap(), url).unwrap_err();
    assert!(is_untrusted_certificate(&refused), "{refused:?}");
    // Plain HTTP to the HTTPS port gets no answer.
    let plain = url.replacen("https://", "http://", 1);
    let answer = Outbound::system()
        .unwrap()
        .builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(&plain)
        .send();
    assert!(
        answer.as_ref().map_or(true, |a| !a.status().is_success()),
        "{answer:?}"
    );
}

#[test]
fn the_idp_over_https_signs_in_openidconnect_and_openid_client_and_refuses_other_cas() {
    let npm = node_rp::npm_rp();
    let tls = TestTls::new();
    let w = IdpWorld::start_https("", &tls);
    assert!(w.issuer.starts_with("https://127.0.0.1:"), "{}", w.issuer);
    assert_eq!(w.idp.local_url(), w.issuer);
    only_the_test_ca_is_trusted(
        &tls,
        &format!("{}/.well-known/openid-configuration", w.issuer),
    );

    // openidconnect (Rust): discovery, the code flow with PKCE, the ID token verified, all
    // through a client that trusts the test CA only.
    let http = w.oidc_http();
    let (status, registered) = w.register(&json!({
        "redirect_uris": [idp_common::REDIRECT], "client_name": "rust rp"
    }));
    assert_eq!(status, 201, "{registered}");
    let provider =
        CoreProviderMetadata::discover(&IssuerUrl::new(w.issuer.clone()).unwrap(), &http).unwrap();
    assert!(provider
        .token_endpoint()
        .unwrap()
        .as_str()
        .starts_with("https://"));
    let client = CoreClient::from_provider_metadata(
        provider,
        ClientId::new(registered["client_id"].as_str().unwrap().into()),
        Some(ClientSecret::new(
            registered["client_secret"].as_str().unwrap().into(),
        )),
    )
    .set_redirect_uri(RedirectUrl::new(idp_common::REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize, _, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let landed = w.login(authorize.as_str(), USER, PASSWORD).unwrap();
    let code = query(&landed)["code"].clone();
    let tokens = client
        .exchange_code(openidconnect::AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request(&http)
        .unwrap();
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(claims.issuer().as_str(), w.issuer);
    assert_eq!(
        claims.preferred_username().unwrap().as_str(),
        USER,
        "{claims:?}"
    );

    // openid-client (npm) under Node, trusting the test CA through NODE_EXTRA_CA_CERTS.
    let bundle = tls.bundle();
    let (registered, result) = node_rp::sign_in(&w, &npm, &[("NODE_EXTRA_CA_CERTS", &bundle)]);
    let result = result.unwrap_or_else(|stderr| panic!("the node relying party failed: {stderr}"));
    node_rp::check_result(&w, &registered, &result);
    // Without the test CA, Node refuses the IdP's certificate.
    let (_, refused) = node_rp::sign_in(&w, &npm, &[]);
    let stderr = refused.expect_err("node must not trust the test CA by default");
    assert!(
        stderr.contains("certificate") || stderr.contains("CERT"),
        "{stderr}"
    );
}

fn provisioning(w: &EnrolmentWorld) -> Provisioning {
    Provisioning {
        tbs_url: w.url(),
        tbs_digest: w.tbs_digest,
        tenant: "acme".into(),
        group: "eu".into(),
        network: bitcoin::Network::Regtest,
        sources: Default::default(),
    }
}

#[test]
fn a_device_enrols_through_a_tbs_over_https_which_renews_its_certificate_without_a_restart() {
    let logs = milagro_tests::logs::capture();
    let mut tls = TestTls::new();
    let w = EnrolmentWorld::start_with(&WorldOptions {
        extra_config: tls.section(),
        http: Some(tls.outbound()),
        ..WorldOptions::default()
    });
    assert!(w.url().starts_with("https://127.0.0.1:"), "{}", w.url());
    only_the_test_ca_is_trusted(&tls, &format!("{}/v1/status", w.url()));
    let dta = w.anchored(Role::Dta, "D-TA");
    let idp = w.anchored(Role::Idp, "IdP");
    w.put_group("eu", &[&dta], &idp);

    // A device that trusts only the system's roots cannot even fetch the certificate.
    let home = tempfile::tempdir().unwrap();
    let stage = w.provision(&home.path().join("untrusting"), provisioning(&w), None);
    let Stage::Provisioned(untrusting) = stage else {
        panic!("a new device starts provisioned")
    };
    match untrusting.verify_tbs(&ServiceClient::new(&w.url()).unwrap()) {
        Err(Error::Http { source, .. }) => {
            assert!(is_untrusted_certificate(source.as_ref()), "{source:?}")
        }
        other => panic!("{other:?}"),
    }
    // An off-loopback plain http:// TBS is refused before any request.
    assert!(matches!(
        ServiceClient::new("http://tbs.milagro.test"),
        Err(Error::Transport(ClientError::PlainHttpRefused { .. }))
    ));

    // The device with the CA bundle enrols end to end, verification on.
    let tbs = ServiceClient::with_outbound(
        &w.url(),
        &tls.outbound(),
        milagro_pat_client::DEFAULT_REQUEST_TIMEOUT,
    )
    .unwrap();
    let stage = w.provision(&home.path().join("pat"), provisioning(&w), None);
    let Stage::Provisioned(provisioned) = stage else {
        panic!("a new device starts provisioned")
    };
    let Requested::Offered(offered) = provisioned.verify_tbs(&tbs).unwrap().request(&tbs).unwrap()
    else {
        panic!("a new device gets an offer")
    };
    let waiting = offered.sign_and_send(&tbs).unwrap();
    let waiter = tbs.clone();
    let waiting = std::thread::spawn(move || {
        waiting.wait(&waiter, PATIENCE, Duration::from_millis(50), |_| {})
    });
    w.mine_while_waiting("the device to get its instructions", || {
        waiting.is_finished().then_some(())
    });
    let enrolled = waiting.join().unwrap().unwrap();
    assert_eq!(
        enrolled.instructions().instructions.dtas[0].birth_certificate,
        dta.digest()
    );

    // Renewal: a new certificate of the same CA replaces the files and is served, on new
    // connections, without a restart.
    let url = format!("{}/v1/status", w.url());
    let renewed = tls.renew(2);
    wait_until("the renewed certificate to be served", PATIENCE, || {
        (served_certificate(&tls.outbound(), &url).unwrap() == renewed.der).then_some(())
    });
    let mut enrolled = enrolled;
    enrolled.refresh(&tbs).unwrap();

    // Half a renewal (a new certificate, the old key): refused with a warning, the
    // previous certificate stays.
    let mark = logs.mark();
    let next = tls.ca.leaf(3);
    std::fs::write(tls.dir().join("cert.pem"), &next.cert_pem).unwrap();
    wait_until("the broken renewal to be reported", PATIENCE, || {
        logs.since(mark)
            .contains("still serving the previous one")
            .then_some(())
    });
    assert!(
        logs.since(mark)
            .contains("is not the key of the certificate"),
        "{}",
        logs.since(mark)
    );
    assert_eq!(
        served_certificate(&tls.outbound(), &url).unwrap(),
        renewed.der
    );
    // Once the key follows, the new pair is served.
    std::fs::write(tls.dir().join("key.pem"), &next.key_pem).unwrap();
    wait_until("the completed renewal to be served", PATIENCE, || {
        (served_certificate(&tls.outbound(), &url).unwrap() == next.der).then_some(())
    });
    assert!(!logs.since(mark).contains(&next.key_pem[30..80]));
}

#[test]
fn the_authentication_server_serves_https() {
    let tls = TestTls::new();
    let w = EnrolmentWorld::start();
    let dir = tempfile::tempdir().unwrap();
    let dta = w.anchored(Role::Dta, "D-TA");
    let identity =
        AuthServerIdentity::create(&dir.path().join("auth"), "Auth server", "https://127.0.0.1");
    // A D-TA that serves no share: this test is about the server's own HTTPS.
    let dtas = format!(
        "[[dtas]]\nbc_digest = \"{}\"\nshare_api = \"127.0.0.1:9\"\n",
        dta.digest()
    );
    let config = identity.config(w.node(), &dtas, &tls.section());
    let server = milagro_authserver::AuthServer::start(config).unwrap();
    let url = server.local_url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let api = Api::with_outbound(&url, &tls.outbound());
    wait_until("the server's anchor to be broadcast", PATIENCE, || {
        (api.ok("/v1/status")["anchor"]["state"] == "pending").then_some(())
    });
    w.mine(1);
    wait_until("the server's certificate to be served", PATIENCE, || {
        (api.get("/.well-known/milagro/birth-certificate").0 == 200).then_some(())
    });
    only_the_test_ca_is_trusted(&tls, &format!("{url}/v1/status"));
}
