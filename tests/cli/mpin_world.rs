//! The world an M-Pin sign-in at the IdP needs, shared by the web sign-in
//! (`pat_signin`) and CIBA (`pat_ciba`) tests: a real regtest node and TBS
//! ([`EnrolmentWorld`]), an IdP with Alice whose `[mpin]` sums two real D-TAs' server
//! shares (each D-TA trusting the IdP's ID tokens and listing it in its `authservers`),
//! and a badge enrolled into a group naming them, logged in at the IdP (which registers
//! it as Alice's device) and holding its M-Pin key from both D-TAs, the PIN [`PIN`].

use std::path::Path;
use std::process::Output;

use milagro_anchor::keys::CompressedKey;
use milagro_dta::{Dta, RunningDta};
use milagro_idp::devices::Registration;
use milagro_idp::{Idp, RunningIdp};
use milagro_mpin::MpinId;
use milagro_tests::dta_common::{numbered_config, wait_for_share_api, PATIENCE};
use milagro_tests::enrolment_world::EnrolmentWorld;
use milagro_tests::idp_common::{
    free_port, idp_config, no_redirect_client, register_device_client,
    start_configured_idp_with_alice,
};
use milagro_tests::{wait_until, Api};
use serde_json::Value;

use super::pat_mpin::{device_login, milagro_with_pin};
use super::{json, stderr};

/// The badge's PIN.
pub const PIN: &str = "2468";
/// Not the badge's PIN.
pub const WRONG_PIN: &str = "1357";

/// Everything running, and what the tests name.
pub struct MpinWorld {
    /// The node, the TBS and the two D-TAs, kept running for as long as the world.
    _running: (EnrolmentWorld, Vec<RunningDta>),
    /// The state directories (the IdP's, the D-TAs', the badge's).
    pub dir: tempfile::TempDir,
    /// A client that does not follow redirects.
    pub http: reqwest::blocking::Client,
    /// The IdP, with `[mpin]`.
    pub idp: RunningIdp,
    /// The IdP's issuer URL.
    pub issuer: String,
    /// Alice's subject.
    pub alice: String,
    /// The badge's state directory.
    pub state: String,
    /// The badge's M-Pin identity (hex).
    pub mpin_id: String,
    /// Alice's registration at the IdP: the badge.
    pub registration: Registration,
}

/// `mpin_extra` is appended to the IdP's `[mpin]` section (after `[mpin.login]`).
pub fn start(signin_secs: u64, max_failures: u32, mpin_extra: &str) -> MpinWorld {
    let w = EnrolmentWorld::start();
    let claim = w.maker_key_file().display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let http = no_redirect_client();
    let (port, idp_dir) = (free_port(), dir.path().join("idp"));
    let (idp, issuer, alice) =
        start_configured_idp_with_alice(idp_config(w.node(), &idp_dir, port, ""));
    let device_client = register_device_client(&http, &issuer);
    let idp_digest = idp.state().identity.digest();

    // Each D-TA trusts the IdP's ID tokens and gives the IdP its server share.
    let extra = format!(
        "[[trusted_idps]]\nissuer = {issuer:?}\nbc_digest = \"{idp_digest}\"\nclient_id = {device_client:?}\n\
         [shares]\nauthservers = [\"{idp_digest}\"]\n"
    );
    let dtas: Vec<_> = (1..=2)
        .map(|n| Dta::start(numbered_config(&w, dir.path(), n, &extra)).unwrap())
        .collect();
    // The IdP's operator adds [mpin] naming them, and restarts it on the same address.
    idp.stop();
    let peers: String = dtas
        .iter()
        .map(|d| {
            format!(
                "[[mpin.dtas]]\nbc_digest = \"{}\"\nshare_api = \"{}\"\n",
                d.state().identity.digest(),
                d.state().share_listen
            )
        })
        .collect();
    let mpin = format!(
        "[mpin]\nsignin_secs = {signin_secs}\n{peers}[mpin.login]\nmax_failures = {max_failures}\n{mpin_extra}"
    );
    let idp = Idp::start(idp_config(w.node(), &idp_dir, port, &mpin)).unwrap();
    let readyz = || -> Value {
        http.get(format!("{issuer}/readyz"))
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    wait_until("every anchor to be broadcast", PATIENCE, || {
        let pending = |api: Api| api.ok("/v1/status")["anchor"]["state"] == "pending";
        let idp_sent = !matches!(
            idp.state().own_anchor.get(),
            milagro_service::own_anchor::AnchorState::None
        );
        (idp_sent && dtas.iter().all(|d| pending(Api::new(d.local_url())))).then_some(())
    });
    let check = |readiness: &Value| {
        readiness["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "server_secret")
            .cloned()
    };
    let before = readyz();
    assert_eq!(check(&before).unwrap()["ok"], false, "{before}");
    w.mine(6);
    for dta in &dtas {
        wait_for_share_api(&w, dta);
    }
    wait_until("the IdP's server secret to be summed", PATIENCE, || {
        let readiness = readyz();
        (readiness["ready"] == true && check(&readiness).unwrap()["ok"] == true).then_some(())
    });

    // The badge enrols into a group naming both D-TAs and the IdP, logs in at the IdP
    // and gets its M-Pin key from both D-TAs.
    let services: Vec<_> = dtas
        .iter()
        .map(|d| (d.state().identity.digest(), d.local_url()))
        .collect();
    w.put_group_at(
        "staff",
        milagro_wire::tbs::tenants::EnrolmentMode::Direct,
        &services,
        (idp_digest, issuer.clone()),
    );
    let state = dir.path().join("badge").display().to_string();
    let (url, digest) = (w.url(), w.tbs_digest.to_string());
    let enrol = super::pat::run_mining(
        &w,
        &super::pat::enrol_args(&url, &digest, "staff", &state, &claim),
    );
    assert!(enrol.status.success(), "{}", stderr(&enrol));
    w.mine(6);
    assert_eq!(device_login(&http, &issuer, &state)["status"], "logged_in");
    let shares = milagro_with_pin(&["pat", "shares", "--state", &state], Some(PIN));
    assert!(shares.status.success(), "{}", stderr(&shares));
    let mpin_id = json(&shares)["mpin_id"].as_str().unwrap().to_owned();

    // `pat login` registered the device at the IdP (POST /v1/devices): the identity the
    // D-TAs bound (issuer, subject, device key) is the one the IdP accepts.
    let device_key = match milagro_pat_client::open(Path::new(&state)).unwrap() {
        milagro_pat_client::Stage::Enrolled(enrolled) => enrolled.device().key().public_key(),
        other => panic!("the badge is {}", other.name()),
    };
    let bound = MpinId::of_device(&issuer, &alice, &device_key.to_sec1()).unwrap();
    assert_eq!(bound.as_bytes(), mpin_id.as_bytes());
    let registration = idp
        .state()
        .registered_devices
        .current(&alice)
        .unwrap()
        .expect("pat login registers the device");
    assert_eq!(registration.mpin_id, mpin_id);
    assert_eq!(registration.device_key, CompressedKey::from(&device_key));
    MpinWorld {
        _running: (w, dtas),
        dir,
        http,
        idp,
        issuer,
        alice,
        state,
        mpin_id,
        registration,
    }
}

/// Asserts `output` (of a `milagro` command) failed with the IdP's `status` and `code`.
pub fn refused(output: &Output, status: u16, code: &str, case: &str) {
    let text = stderr(output);
    assert!(!output.status.success(), "{case}: {text}");
    assert!(
        text.contains(&format!("answered {status} {code}")),
        "{case}: {text}"
    );
}
