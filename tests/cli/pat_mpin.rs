//! `milagro pat login`, `pat shares` and `pat authenticate` as processes, against a real
//! regtest node, a TBS, an IdP, two D-TAs and an authentication server on loopback: the
//! user approves the device at the IdP while `pat login` waits, the badge collects and
//! sums both D-TAs' shares with its PIN, renews its time permit with its key alone, and
//! logs in with its PIN; the wrong PIN is refused,
//! and every command run out of order says what to run first.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Output, Stdio};

use milagro_authserver::AuthServer;
use milagro_dta::Dta;
use milagro_tests::authserver_common::AuthServerIdentity;
use milagro_tests::enrolment_world::EnrolmentWorld;
use milagro_tests::{wait_until, Api};

use super::{json, stderr};
use milagro_tests::dta_common::{authserver_peers, numbered_config, wait_for_share_api, PATIENCE};
use milagro_tests::idp_common::{
    approve_device, no_redirect_client, register_device_client, start_idp_with_alice, PASSWORD,
};

const PIN: &str = "2468";

/// Runs `milagro args` with `MILAGRO_PIN` set to `pin` (if any) and stdin closed.
pub(super) fn milagro_with_pin(args: &[&str], pin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_milagro"));
    command.args(args).stdin(Stdio::null());
    match pin {
        Some(pin) => command.env("MILAGRO_PIN", pin),
        None => command.env_remove("MILAGRO_PIN"),
    };
    command.output().unwrap()
}

/// `milagro pat login --state state`: the user approves the code it prints on the page
/// of the IdP at `issuer` (as alice) while it waits; what it printed.
pub(super) fn device_login(
    http: &reqwest::blocking::Client,
    issuer: &str,
    state: &str,
) -> serde_json::Value {
    let mut login = Command::new(env!("CARGO_BIN_EXE_milagro"))
        .args(["pat", "login", "--state", state])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(login.stderr.take().unwrap()).lines();
    let code = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| line.split("enter the code ").nth(1).map(str::to_owned))
        .expect("pat login printed no code");
    let (status, page) = approve_device(http, issuer, code.trim(), PASSWORD);
    assert_eq!(status, 200, "{page}");
    let logged_in = login.wait_with_output().unwrap();
    assert!(logged_in.status.success());
    json(&logged_in)
}

#[test]
fn a_badge_gets_its_m_pin_key_from_two_d_tas_and_logs_in_with_its_pin_from_the_command_line() {
    let w = EnrolmentWorld::start();
    // Each device signs its own credential with the maker's fleet claim key.
    let claim = w.maker_key_file().display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let http = no_redirect_client();
    let (idp, issuer, _) = start_idp_with_alice(w.node(), dir.path(), "idp");
    let client_id = register_device_client(&http, &issuer);

    // The authentication server's identity first: the D-TAs list its digest.
    let identity = AuthServerIdentity::create(
        &dir.path().join("auth"),
        "Badge login",
        "http://auth.milagro.test",
    );
    let extra = format!(
        "[[trusted_idps]]\nissuer = {issuer:?}\nbc_digest = \"{}\"\nclient_id = {client_id:?}\n{}",
        idp.state().identity.digest(),
        identity.listed(),
    );
    let dtas: Vec<_> = (1..=2)
        .map(|n| Dta::start(numbered_config(&w, dir.path(), n, &extra)).unwrap())
        .collect();
    let peers = authserver_peers(&dtas.iter().collect::<Vec<_>>());
    let auth = AuthServer::start(identity.config(w.node(), &peers, "")).unwrap();
    let (auth_api, auth_url) = (Api::new(auth.local_url()), auth.local_url());
    wait_until("every service's anchor to be broadcast", PATIENCE, || {
        let pending = |api: Api| api.ok("/v1/status")["anchor"]["state"] == "pending";
        let idp_sent = !matches!(
            idp.state().own_anchor.get(),
            milagro_service::own_anchor::AnchorState::None
        );
        (idp_sent
            && dtas.iter().all(|d| pending(Api::new(d.local_url())))
            && pending(Api::new(auth.local_url())))
        .then_some(())
    });
    w.mine(6);
    for dta in &dtas {
        wait_for_share_api(&w, dta);
    }
    wait_until("the server secret to be summed", PATIENCE, || {
        (auth_api.ok("/v1/status")["server_secret"]["state"] == "ready").then_some(())
    });

    // The badge enrols into a group naming both D-TAs and the IdP, at their real URLs.
    w.put_group_of(
        "staff",
        &dtas,
        (idp.state().identity.digest(), issuer.clone()),
    );
    let state = dir.path().join("badge").display().to_string();
    let (url, digest) = (w.url(), w.tbs_digest.to_string());
    let enrol = super::pat::run_mining(
        &w,
        &super::pat::enrol_args(&url, &digest, "staff", &state, &claim),
    );
    assert!(enrol.status.success(), "{}", stderr(&enrol));
    w.mine(6);

    // Out of order: no ID token yet, no key yet.
    let early = milagro_with_pin(&["pat", "shares", "--state", &state], Some(PIN));
    assert!(!early.status.success());
    assert!(
        stderr(&early).contains("run `milagro pat login` first"),
        "{}",
        stderr(&early)
    );
    let early = milagro_with_pin(
        &[
            "pat",
            "authenticate",
            "--state",
            &state,
            "--authserver",
            &auth_url,
        ],
        Some(PIN),
    );
    assert!(
        stderr(&early).contains("no m-pin key"),
        "{}",
        stderr(&early)
    );

    // `pat login` shows a code; the user approves it on the IdP's page while it waits.
    let logged_in = device_login(&http, &issuer, &state);
    assert_eq!(logged_in["status"], "logged_in");
    assert_eq!(logged_in["issuer"], issuer.as_str());
    assert_eq!(logged_in["client_id"], client_id);

    // A PIN that is not 4 digits is refused before anything is asked.
    let bad_pin = milagro_with_pin(&["pat", "shares", "--state", &state], Some("12345"));
    assert!(
        stderr(&bad_pin).contains("a pin is 4 digits"),
        "{}",
        stderr(&bad_pin)
    );

    let shares = milagro_with_pin(&["pat", "shares", "--state", &state], Some(PIN));
    assert!(shares.status.success(), "{}", stderr(&shares));
    let key = json(&shares);
    assert_eq!(key["status"], "key_stored");
    assert_eq!(key["dtas"].as_array().unwrap().len(), 2);
    let mpin_id = key["mpin_id"].as_str().unwrap().to_owned();
    let badge = std::path::Path::new(&state);
    assert!(badge.join("mpin-key.json").exists());
    assert!(
        !badge.join("id-token.json").exists(),
        "the id token outlived its use"
    );

    let session = milagro_with_pin(
        &[
            "pat",
            "authenticate",
            "--state",
            &state,
            "--authserver",
            &auth_url,
        ],
        Some(PIN),
    );
    assert!(session.status.success(), "{}", stderr(&session));
    let session = json(&session);
    assert_eq!(session["mpin_id"], mpin_id.as_str());
    let token = session["session_token"].as_str().unwrap();
    let claims = http
        .get(format!("{auth_url}/v1/session"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .json::<serde_json::Value>()
        .unwrap();
    assert_eq!(claims["sub"], mpin_id.as_str());

    let wrong = milagro_with_pin(
        &[
            "pat",
            "authenticate",
            "--state",
            &state,
            "--authserver",
            &auth_url,
        ],
        Some("1357"),
    );
    assert!(!wrong.status.success());
    assert!(wrong.stdout.is_empty());
    assert!(
        stderr(&wrong).contains("login_refused"),
        "{}",
        stderr(&wrong)
    );

    drop(http);
    auth.stop();
    for dta in dtas {
        dta.stop();
    }
    idp.stop();
}
