//! `milagro pat login --provider ISSUER` as a process (ADR 0015, issue 14): an enrolled
//! badge logs its user in at a third-party OpenID provider (`oidc-provider` from npm, over
//! HTTPS with a certificate of a test CA, its device grant carrying the nonce) while the
//! user approves the code on the provider's pages; `pat shares` then gets the D-TA's
//! shares with the token and its nonce's salt. The provider is remembered for the next
//! `pat login`, forgotten with `--instructed-idp`; without the CA bundle the provider's
//! certificate is refused, naming its URL.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use milagro_anchor::birth_certificate::Role;
use milagro_dta::Dta;
use milagro_tests::dta_common::{numbered_config, wait_for_anchors_broadcast, wait_for_share_api};
use milagro_tests::enrolment_world::EnrolmentWorld;
use milagro_tests::https::TestTls;
use milagro_tests::third_party_op::{
    approve_device, keeping_nonce, ThirdPartyOps, CLIENT_ID, USER,
};

use super::pat_mpin::milagro_with_pin;
use super::{json, stderr};
use milagro_wire::tbs::tenants::EnrolmentMode;

/// Runs `milagro --ca-bundle BUNDLE pat login --state STATE EXTRA…` and approves the code
/// it shows at the provider, as its user would; its output.
fn logged_in(tls: &TestTls, state: &str, extra: &[&str]) -> std::process::Output {
    let bundle = tls.bundle().display().to_string();
    let mut login = Command::new(env!("CARGO_BIN_EXE_milagro"))
        .args(["--ca-bundle", &bundle, "pat", "login", "--state", state])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(login.stderr.take().unwrap()).lines();
    let shown = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("enter the code "))
        .expect("pat login showed no code");
    let (page, code) = shown
        .split_once(", open ")
        .and_then(|(_, rest)| rest.split_once(" and enter the code "))
        .unwrap();
    approve_device(&tls.outbound(), page, code.trim());
    let output = login.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    output
}

#[test]
fn a_badge_logs_in_at_a_third_party_provider_and_gets_its_shares_from_the_command_line() {
    let tls = TestTls::new();
    let ops = ThirdPartyOps::start(&tls, &[keeping_nonce("ES256")]);
    let issuer = ops.issuers[0].clone();
    let w = EnrolmentWorld::start();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "[[trusted_idps]]\nissuer = {issuer:?}\ntrust = \"web_pki\"\nclient_id = {CLIENT_ID:?}\n\
         [outbound_http]\nca_bundle = {:?}\n",
        tls.bundle()
    );
    let dta = Dta::start(numbered_config(&w, dir.path(), 1, &extra)).unwrap();
    wait_for_anchors_broadcast(&[], &[dta.local_url()]);
    w.mine(6);
    wait_for_share_api(&w, &dta);
    let idp = w.anchored(Role::Idp, "the group's IdP");
    let dtas = [(dta.state().identity.digest(), dta.local_url())];
    let named_idp = (idp.digest(), "https://idp.milagro.test".to_owned());
    w.put_group_at("staff", EnrolmentMode::Direct, &dtas, named_idp);
    let badge = dir.path().join("badge");
    let device_key = w.enrolled_device(&badge, "staff").device().public_key();
    w.mine(6);
    wait_for_share_api(&w, &dta);
    let state = badge.display().to_string();

    // Without the test CA the provider's certificate is refused, naming its URL.
    let untrusting = milagro_with_pin(
        &["pat", "login", "--state", &state, "--provider", &issuer],
        None,
    );
    assert!(!untrusting.status.success());
    let refusal = stderr(&untrusting);
    assert!(
        refusal.contains(&format!("{issuer}/.well-known/openid-configuration"))
            && refusal.contains("certificate"),
        "{refusal}"
    );

    let first = json(&logged_in(&tls, &state, &["--provider", &issuer]));
    assert_eq!(first["status"], "logged_in");
    assert_eq!(
        (
            &first["issuer"],
            &first["idp"],
            &first["binding"],
            &first["client_id"]
        ),
        (
            &issuer.clone().into(),
            &serde_json::Value::Null,
            &"nonce".into(),
            &CLIENT_ID.into()
        )
    );
    assert!(badge.join("login-provider.json").exists());

    let bundle = tls.bundle().display().to_string();
    let shares = milagro_with_pin(
        &["--ca-bundle", &bundle, "pat", "shares", "--state", &state],
        Some("2468"),
    );
    assert!(shares.status.success(), "{}", stderr(&shares));
    let key = json(&shares);
    assert_eq!(key["status"], "key_stored");
    let expected = milagro_dta::issuance::mpin_id(&issuer, USER, &device_key).unwrap();
    assert_eq!(
        key["mpin_id"].as_str().unwrap().as_bytes(),
        expected.as_bytes()
    );

    // The next login goes to the remembered provider.
    let again = json(&logged_in(&tls, &state, &[]));
    assert_eq!(again["issuer"], issuer.as_str());

    // `--instructed-idp` forgets it: this group's IdP is one the D-TA does not trust.
    let instructed = milagro_with_pin(
        &["pat", "login", "--state", &state, "--instructed-idp"],
        None,
    );
    assert!(!instructed.status.success());
    assert!(
        stderr(&instructed).contains("does not trust the idp https://idp.milagro.test"),
        "{}",
        stderr(&instructed)
    );
    assert!(!badge.join("login-provider.json").exists());
    dta.stop();
    drop(ops);
}
