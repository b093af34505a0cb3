//! Issue 14: the device itself logs in at a third-party OpenID provider (ADR 0015) and
//! collects its shares with the token, against a real regtest node, a real TBS the device
//! enrols through, a real D-TA its group names, trusting the providers with
//! `trust = "web_pki"`, and `oidc-provider` (npm) over HTTPS with a certificate of a test
//! CA. Nothing of the login is the test's but what a person does on
//! the provider's own pages: the device (`milagro_pat_client::third_party_login`)
//! discovers the provider over verified HTTPS, asks for a device code with a nonce
//! committing to its anchored key, polls, checks the ID token, and presents it with the
//! nonce's salt to the D-TA over Milagro TLS.
//!
//! Three providers: one whose device grant carries the nonce into the ID token (as
//! Keycloak's does), one as `oidc-provider` ships (it drops it), and one that lies (it
//! puts a nonce committing to another device's key in the token). The device refuses the
//! last two tokens itself, before any D-TA sees them, naming the provider's token
//! endpoint; and the D-TA refuses a token committing to another key whoever presents it,
//! so the binding holds even for a device that would not check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use milagro_anchor::birth_certificate::Role;
use milagro_anchor::dpop::Thumbprint;
use milagro_anchor::id_token_nonce::{commitment, NonceSalt};
use milagro_anchor::keys::PublicKey;
use milagro_dta::issuance::mpin_id;
use milagro_dta::{Dta, RunningDta};
use milagro_mpin::Pin;
use milagro_pat_client::dtas::{client_id_for, collect_shares, locate};
use milagro_pat_client::mpin_key::{request_shares, ClientShareRequest, MpinKey};
use milagro_pat_client::peering::TbsDirectory;
use milagro_pat_client::third_party_login::{ProviderFault, ThirdPartyLogin};
use milagro_pat_client::Error;
use milagro_tests::dta_common::{numbered_config, wait_for_anchors_broadcast, wait_for_share_api};
use milagro_tests::enrolment_world::EnrolmentWorld;
use milagro_tests::https::{is_untrusted_certificate, TestTls};
use milagro_tests::third_party_op::{
    approve_device, keeping_nonce, log_in, replacing_nonce, ThirdPartyOps, CLIENT_ID, USER,
};
use milagro_tests::tls_parties::{runtime, TlsParty};
use milagro_tls::{LocalIdentity, Options, PeerDirectory};
use milagro_wire::tbs::tenants::EnrolmentMode;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

fn issued(dta: &RunningDta) -> u64 {
    dta.state().audit.tree_head().size.get()
}

/// The claims of a compact JWS.
fn claims(token: &str) -> Value {
    serde_json::from_slice(&B64URL.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

/// The device of key `device` logs in at `issuer` by itself; the person approves its
/// code on the provider's pages. The device's result.
fn device_login(
    outbound: &milagro_http_client::Outbound,
    issuer: &str,
    device: &PublicKey,
) -> Result<milagro_pat_client::idp_login::IdToken, Error> {
    let login = ThirdPartyLogin::discover(outbound, issuer, CLIENT_ID)?;
    let pending = login.start(device)?;
    assert!(pending.verification_uri().starts_with(issuer));
    approve_device(outbound, pending.verification_uri(), pending.user_code());
    pending.wait()
}

#[test]
fn a_device_logs_in_at_a_third_party_provider_by_itself_and_gets_its_shares_with_the_token() {
    let logs = milagro_tests::logs::capture();
    let tls = TestTls::new();
    let w = EnrolmentWorld::start();
    let dir = tempfile::tempdir().unwrap();
    let b = TlsParty::broadcast(&w, Role::Pat, "badge B");
    // What the liar writes into A's token: a nonce committing to B's key.
    let b_salt = NonceSalt::from_bytes([42; 32]);
    let b_nonce = commitment(&Thumbprint::of(b.bc.public_key()), &b_salt);
    let ops = ThirdPartyOps::start(
        &tls,
        &[
            keeping_nonce("RS256"),
            "ES256".to_owned(),
            replacing_nonce("RS256", &b_nonce),
        ],
    );
    let (keeping, dropping, lying) = (&ops.issuers[0], &ops.issuers[1], &ops.issuers[2]);
    let trusted: String = ops
        .issuers
        .iter()
        .map(|issuer| {
            format!(
                "[[trusted_idps]]\nissuer = {issuer:?}\ntrust = \"web_pki\"\nclient_id = {CLIENT_ID:?}\n"
            )
        })
        .collect();
    let extra = format!("{trusted}[outbound_http]\nca_bundle = {:?}\n", tls.bundle());
    let dta = Dta::start(numbered_config(&w, dir.path(), 1, &extra)).unwrap();
    wait_for_anchors_broadcast(&[], &[dta.local_url()]);
    w.mine(6);
    wait_for_share_api(&w, &dta);
    let dta_digest = dta.state().identity.digest();

    // Badge A enrols into a group naming the D-TA (and an anchored IdP it will not use).
    let idp = w.anchored(Role::Idp, "the group's IdP");
    let idp_url = "https://idp.milagro.test".to_owned();
    w.put_group_at(
        "eu",
        EnrolmentMode::Direct,
        &[(dta_digest, dta.local_url())],
        (idp.digest(), idp_url),
    );
    let badge = w.enrolled_device(&dir.path().join("badge-a"), "eu");
    // The D-TA admits a device whose anchor is final (6 blocks).
    w.mine(6);
    wait_for_share_api(&w, &dta);
    let device = badge.device();
    let a = device.public_key();
    let outbound = tls.outbound();
    let identity: LocalIdentity = device.tls_identity().unwrap();
    let directory = || -> Arc<dyn PeerDirectory> {
        Arc::new(TbsDirectory::for_device(device, &outbound, Duration::ZERO).unwrap())
    };

    // It finds the D-TA's share API and the client id the D-TA has at the provider.
    let dtas: Vec<_> = badge
        .instructions()
        .instructions
        .dtas
        .iter()
        .map(|service| locate(&outbound, service).unwrap())
        .collect();
    assert_eq!(client_id_for(&dtas, keeping).unwrap(), CLIENT_ID);

    // A logs in by itself, and collects its shares with the token and the nonce's salt.
    let token = device_login(&outbound, keeping, &a).unwrap();
    assert_eq!((token.issuer.as_str(), token.idp), (keeping.as_str(), None));
    let salt = token.nonce_salt().unwrap();
    let nonce = commitment(&Thumbprint::of(&a), salt);
    let signed = claims(token.secret());
    assert_eq!(
        (&signed["nonce"], &signed["sub"]),
        (&nonce.into(), &USER.into())
    );
    let shares = runtime()
        .block_on(collect_shares(
            &identity,
            &dtas,
            directory(),
            &Options::default(),
            &token.share_request(),
        ))
        .unwrap();
    let expected = mpin_id(keeping, USER, &a).unwrap();
    assert_eq!(shares[0].id.as_bytes(), expected.as_bytes());
    let key = MpinKey::assemble(&shares, Pin::new(2468).unwrap()).unwrap();
    assert_eq!(key.dtas, [dta_digest]);
    assert_eq!(issued(&dta), 2, "a client share and a permit logged");

    // The liar's token for A commits to B's key: A refuses it before sending it anywhere.
    let mark = logs.mark();
    match device_login(&outbound, lying, &a) {
        Err(Error::Provider {
            url,
            fault: ProviderFault::NonceMismatch,
        }) => assert_eq!(url, format!("{lying}/token")),
        other => panic!("{other:?}"),
    }
    // A provider that drops the nonce gives a token bound to nothing: refused the same way.
    match device_login(&outbound, dropping, &a) {
        Err(Error::Provider {
            url,
            fault: ProviderFault::NonceNotCarried,
        }) => assert_eq!(url, format!("{dropping}/token")),
        other => panic!("{other:?}"),
    }
    assert_eq!(issued(&dta), 2, "nothing issued");
    let logged = logs.since(mark);
    assert!(
        !logged.contains("refused an id token"),
        "the d-ta saw nothing: {logged}"
    );

    // Had A sent a token committing to B anyway, the D-TA refuses it: the binding is the
    // D-TA's to enforce, the device's check only keeps it from sending what fails. (A
    // token of the honest provider made with B's nonce, through its authorization page.)
    let for_b = log_in(&outbound, keeping, &b_nonce);
    let request = |salt: &NonceSalt| ClientShareRequest {
        id_token: for_b.clone(),
        nonce_salt: Some(salt.encode()),
    };
    let addr = dta.state().share_listen.to_string();
    let presented = |who: &LocalIdentity, salt: &NonceSalt| {
        runtime().block_on(request_shares(
            who,
            dta_digest,
            &addr,
            directory(),
            &Options::default(),
            &request(salt),
        ))
    };
    let refused = presented(&identity, &b_salt).unwrap_err().to_string();
    let named = Thumbprint::of(&a);
    assert!(
        refused.contains("401") && refused.contains(named.as_str()),
        "{refused}"
    );
    assert_eq!(issued(&dta), 2, "nothing issued");
    // ... and the same token serves B, whose key it commits to.
    assert!(presented(&b.identity, &b_salt).is_ok());

    // Discovery is verified HTTPS: a device trusting another CA never reaches the
    // provider, and an issuer that is not the provider's own name is refused.
    let other_ca = TestTls::new();
    match ThirdPartyLogin::discover(&other_ca.outbound(), keeping, CLIENT_ID) {
        Err(Error::Http { source, url, .. }) => {
            assert!(url.starts_with(keeping.as_str()), "{url}");
            assert!(is_untrusted_certificate(source.as_ref()), "{source:?}");
        }
        other => panic!("{other:?}"),
    }
    let slashed = format!("{keeping}/");
    match ThirdPartyLogin::discover(&outbound, &slashed, CLIENT_ID) {
        Err(Error::Provider {
            fault: ProviderFault::IssuerMismatch { named },
            ..
        }) => assert_eq!(&named, keeping),
        other => panic!("{other:?}"),
    }
    dta.stop();
    drop(ops);
}
