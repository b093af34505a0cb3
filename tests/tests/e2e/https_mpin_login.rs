//! Issue 14: a whole M-Pin login over HTTPS, with a test CA and verification on at the
//! device, against a real regtest node. The TBS, the IdP, both D-TAs' public APIs and the
//! authentication server serve HTTPS with the test CA's certificate
//! ([`milagro_tests::https::TestTls`]). A device (`milagro-pat-client`, trusting that CA
//! only) enrols through the TBS, logs its user in at the IdP (device grant, DPoP), finds
//! its D-TAs, collects and sums their shares over Milagro TLS, and logs in at the
//! authentication server with its PIN: a session token signed by the server's session
//! key. A device given another CA's bundle is refused by every one of these services at
//! the TLS handshake, before any request reaches them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use milagro_anchor::birth_certificate::BirthCertificate;
use milagro_anchor::purpose_keys::KeyPurpose;
use milagro_authserver::api::OPENAPI_JSON;
use milagro_authserver::AuthServer;
use milagro_dta::Dta;
use milagro_http_client::Outbound;
use milagro_mpin::Pin;
use milagro_pat_client::authenticate::authenticate;
use milagro_pat_client::dtas::{client_id_for, collect_shares, locate};
use milagro_pat_client::idp_login::IdpLogin;
use milagro_pat_client::mpin_key::MpinKey;
use milagro_pat_client::peering::TbsDirectory;
use milagro_pat_client::{Error, ServiceClient, DEFAULT_REQUEST_TIMEOUT};
use milagro_tests::authserver_common::AuthServerIdentity;
use milagro_tests::dta_common::{
    authserver_peers, numbered_config, wait_for_anchors_broadcast_over, wait_for_share_api,
    PATIENCE,
};
use milagro_tests::enrolment_world::{EnrolmentWorld, WorldOptions};
use milagro_tests::https::{is_untrusted_certificate, TestTls};
use milagro_tests::idp_common::{
    approve_device, free_port, idp_config_at, register_device_client,
    start_configured_idp_with_alice, wait_for_certificate_over, PASSWORD,
};
use milagro_tests::tls_parties::runtime;
use milagro_tests::{wait_until, Api};
use milagro_tls::Options;
use milagro_wire::tbs::tenants::EnrolmentMode;

const PIN: u16 = 1357;

/// `error` is the transport error of a client that does not trust the server's CA.
fn untrusted(error: Error) {
    match error {
        Error::Http { source, url, .. } => {
            assert!(url.starts_with("https://"), "{url}");
            assert!(is_untrusted_certificate(source.as_ref()), "{source:?}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_device_logs_in_with_m_pin_over_https_end_to_end_and_one_with_another_ca_is_refused() {
    let tls = TestTls::new();
    let outbound = tls.outbound();
    let w = EnrolmentWorld::start_with(&WorldOptions {
        extra_config: tls.section(),
        http: Some(outbound.clone()),
        ..WorldOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (idp, issuer, _) = start_configured_idp_with_alice(idp_config_at(
        w.node(),
        &dir.path().join("idp"),
        port,
        &format!("https://127.0.0.1:{port}"),
        &tls.section(),
    ));
    let http = outbound
        .builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let client_id = register_device_client(&http, &issuer);

    // The server's identity first (the D-TAs list it); the D-TAs take the IdP's keys over
    // HTTPS verified against the test CA.
    let identity = AuthServerIdentity::create(
        &dir.path().join("auth"),
        "Auth server",
        "https://auth.milagro.test",
    );
    let extra = format!(
        "[[trusted_idps]]\nissuer = {issuer:?}\nbc_digest = \"{}\"\nclient_id = {client_id:?}\n\
         {}[outbound_http]\nca_bundle = {:?}\n{}",
        idp.state().identity.digest(),
        identity.listed(),
        tls.bundle(),
        tls.section(),
    );
    let dtas: Vec<_> = (1..=2)
        .map(|n| Dta::start(numbered_config(&w, dir.path(), n, &extra)).unwrap())
        .collect();
    let peers = authserver_peers(&dtas.iter().collect::<Vec<_>>());
    let server = AuthServer::start(identity.config(w.node(), &peers, &tls.section())).unwrap();
    let mut urls: Vec<String> = dtas.iter().map(|dta| dta.local_url()).collect();
    urls.push(server.local_url());
    for url in urls.iter().chain([&issuer, &w.url()]) {
        assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    }
    wait_for_anchors_broadcast_over(&outbound, &[&idp], &urls);
    w.mine(6);
    for dta in &dtas {
        wait_for_share_api(&w, dta);
    }
    wait_for_certificate_over(&outbound, &issuer);
    let status = Api::with_outbound(server.local_url(), &outbound).with_document(OPENAPI_JSON);
    wait_until("the server secret to be summed", PATIENCE, || {
        (status.ok("/v1/status")["server_secret"]["state"] == "ready").then_some(())
    });

    // The device enrols through the TBS into a group naming both D-TAs and the IdP.
    let services: Vec<_> = dtas
        .iter()
        .map(|dta| (dta.state().identity.digest(), dta.local_url()))
        .collect();
    let idp_digest = idp.state().identity.digest();
    w.put_group_at(
        "staff",
        EnrolmentMode::Direct,
        &services,
        (idp_digest, issuer.clone()),
    );
    let badge = w.enrolled_device(&dir.path().join("badge"), "staff");
    // The D-TAs admit a device whose anchor is final.
    w.mine(6);
    for dta in &dtas {
        wait_for_share_api(&w, dta);
    }
    let device = badge.device();
    let instructions = &badge.instructions().instructions;
    let named_idp = instructions.idp.as_ref().unwrap();

    // Its user logs in at the IdP; it collects both D-TAs' shares and sums them.
    let located: Vec<_> = instructions
        .dtas
        .iter()
        .map(|dta| locate(&outbound, dta).unwrap())
        .collect();
    let client = client_id_for(&located, &issuer).unwrap();
    let pending = IdpLogin::discover(&outbound, named_idp, &client)
        .unwrap()
        .start()
        .unwrap();
    let (approved, page) = approve_device(&http, &issuer, pending.user_code(), PASSWORD);
    assert_eq!(approved, 200, "{page}");
    let token = pending.wait(device.key()).unwrap();
    let directory = Arc::new(TbsDirectory::for_device(device, &outbound, Duration::ZERO).unwrap());
    let shares = runtime()
        .block_on(collect_shares(
            &device.tls_identity().unwrap(),
            &located,
            directory,
            &Options::default(),
            &token.share_request(),
        ))
        .unwrap();
    let key = MpinKey::assemble(&shares, Pin::new(PIN).unwrap()).unwrap();
    assert_eq!(key.dtas.len(), 2);

    // It logs in at the authentication server with its PIN, over HTTPS.
    let server_url = server.local_url();
    let at = |outbound: &Outbound| {
        ServiceClient::with_outbound(&server_url, outbound, DEFAULT_REQUEST_TIMEOUT).unwrap()
    };
    let session = authenticate(&at(&outbound), &key, Pin::new(PIN).unwrap()).unwrap();
    let mpin_id = String::from_utf8(key.id.as_bytes().to_vec()).unwrap();
    assert_eq!(session.mpin_id, mpin_id);
    let document = status.ok("/.well-known/milagro/birth-certificate");
    let bc = BirthCertificate::parse(document["birth_certificate"].to_string().as_bytes()).unwrap();
    let verified = milagro_authserver::session::verify(
        &session.token,
        bc.purpose_key(KeyPurpose::Session).unwrap(),
        &identity.digest,
        milagro_service::unix_now(),
    )
    .unwrap();
    assert_eq!(verified.sub, mpin_id);
    let audit_size = || status.ok("/v1/status")["audit_size"].as_u64().unwrap();
    let logged = audit_size();

    // A device given another CA's bundle reaches none of them: each handshake fails on the
    // server's certificate before a request is sent, so nothing is logged in or logged.
    let other = TestTls::new().outbound();
    untrusted(authenticate(&at(&other), &key, Pin::new(PIN).unwrap()).unwrap_err());
    untrusted(IdpLogin::discover(&other, named_idp, &client).unwrap_err());
    untrusted(locate(&other, &instructions.dtas[0]).unwrap_err());
    assert_eq!(audit_size(), logged, "the server saw no login");

    drop(status);
    server.stop();
    for dta in dtas {
        dta.stop();
    }
    idp.stop();
}
