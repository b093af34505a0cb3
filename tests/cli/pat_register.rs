//! `milagro pat register` as a process (issue 15, item 1), against a real regtest node, a
//! TBS, an IdP that sends mail through a real SMTP server (aiosmtpd) and two D-TAs on
//! loopback: the badge starts its login and waits; the person gives their address on the
//! IdP's device page, reads the code the IdP e-mailed, types it and allows the client; the
//! badge is registered at the IdP under the M-Pin identity the D-TAs bind, collects both
//! D-TAs' shares with its PIN and stores its key. The person never had a password. A second
//! badge registered for the same address replaces the first at the IdP.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use milagro_dta::Dta;
use milagro_idp::Idp;
use milagro_tests::dta_common::{numbered_config, wait_for_share_api, PATIENCE};
use milagro_tests::enrolment_world::EnrolmentWorld;
use milagro_tests::idp_common::{
    email_device, free_port, idp_config, no_redirect_client, register_device_client,
};
use milagro_tests::smtp_sink::{code_and_link, SmtpSink};
use milagro_tests::{wait_until, Api};

use super::{json, stderr};

const PIN: &str = "1357";
const EMAIL: &str = "carol@milagro.test";

/// Runs `pat register` for the badge at `state`, drives the person's side on the IdP
/// (the `n`th mail to [`EMAIL`]) and returns the command's JSON answer.
fn register(
    http: &reqwest::blocking::Client,
    issuer: &str,
    sink: &SmtpSink,
    state: &str,
    n: usize,
) -> serde_json::Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_milagro"))
        .args(["pat", "register", "--state", state, "--email", EMAIL])
        .env("MILAGRO_PIN", PIN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let user_code = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let rest = line.split("(device code ").nth(1)?;
            Some(rest.split(')').next()?.to_owned())
        })
        .expect("pat register printed no device code");
    let (status, page) = email_device(http, issuer, &user_code, EMAIL, "");
    assert_eq!(status, 200, "{page}");
    let (code, _) = code_and_link(&sink.wait_for_message(EMAIL, n));
    let (status, page) = email_device(http, issuer, &user_code, EMAIL, &code);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Device connected"), "{page}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", rest.join("\n"));
    json(&output)
}

#[test]
fn a_badge_registers_by_email_and_gets_its_m_pin_key_from_two_d_tas() {
    let w = EnrolmentWorld::start();
    let claim = w.maker_key_file().display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let http = no_redirect_client();
    let sink = SmtpSink::start();
    let idp = Idp::start(idp_config(
        w.node(),
        &dir.path().join("idp"),
        free_port(),
        &format!(
            "[enrolment]\nallowed_domains = [\"milagro.test\"]\n{}",
            sink.idp_section()
        ),
    ))
    .unwrap();
    let issuer = idp.state().issuer().to_owned();
    let client_id = register_device_client(&http, &issuer);
    let extra = format!(
        "[[trusted_idps]]\nissuer = {issuer:?}\nbc_digest = \"{}\"\nclient_id = {client_id:?}\n",
        idp.state().identity.digest(),
    );
    let dtas: Vec<_> = (1..=2)
        .map(|n| Dta::start(numbered_config(&w, dir.path(), n, &extra)).unwrap())
        .collect();
    wait_until("every service's anchor to be broadcast", PATIENCE, || {
        let pending = |api: Api| api.ok("/v1/status")["anchor"]["state"] == "pending";
        let idp_sent = !matches!(
            idp.state().own_anchor.get(),
            milagro_service::own_anchor::AnchorState::None
        );
        (idp_sent && dtas.iter().all(|d| pending(Api::new(d.local_url())))).then_some(())
    });
    w.mine(6);
    for dta in &dtas {
        wait_for_share_api(&w, dta);
    }
    let services: Vec<_> = dtas
        .iter()
        .map(|d| (d.state().identity.digest(), d.local_url()))
        .collect();
    w.put_group_at(
        "staff",
        milagro_wire::tbs::tenants::EnrolmentMode::Direct,
        &services,
        (idp.state().identity.digest(), issuer.clone()),
    );
    let (url, digest) = (w.url(), w.tbs_digest.to_string());
    let badges: Vec<String> = ["badge-1", "badge-2"]
        .iter()
        .map(|name| {
            let state = dir.path().join(name).display().to_string();
            let enrol = super::pat::run_mining(
                &w,
                &super::pat::enrol_args(&url, &digest, "staff", &state, &claim),
            );
            assert!(enrol.status.success(), "{}", stderr(&enrol));
            state
        })
        .collect();
    w.mine(6);

    // Badge 1: registered by e-mail, key from both D-TAs, under the IdP's registration.
    let first = register(&http, &issuer, &sink, &badges[0], 1);
    assert_eq!(first["status"], "registered", "{first}");
    assert_eq!(first["issuer"], issuer.as_str());
    assert_eq!(first["dtas"].as_array().unwrap().len(), 2);
    assert!(std::path::Path::new(&badges[0])
        .join("mpin-key.json")
        .exists());
    let state = idp.state();
    let carol = state
        .users
        .by_username(EMAIL)
        .unwrap()
        .expect("carol exists");
    assert_eq!(carol.password_hash, None);
    let registered = state
        .registered_devices
        .current(&carol.subject)
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(registered.mpin_id.as_bytes()),
        first["mpin_id"].as_str().unwrap()
    );

    // Badge 2, the same person (badge 1 lost): it replaces badge 1 at the IdP.
    let second = register(&http, &issuer, &sink, &badges[1], 2);
    assert_eq!(second["status"], "registered", "{second}");
    assert_ne!(second["mpin_id"], first["mpin_id"]);
    let now = state
        .registered_devices
        .current(&carol.subject)
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(now.mpin_id.as_bytes()),
        second["mpin_id"].as_str().unwrap()
    );
    assert_eq!(
        state
            .registered_devices
            .by_mpin_id(&registered.mpin_id)
            .unwrap(),
        None
    );
}
