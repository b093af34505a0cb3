//! A world where people sign in with M-Pin and no password, shared by the CLI tests of
//! issue 15 (`pat_register`, `pat_signin`, `pat_ciba`, `apache_mpin`): a real regtest node
//! and TBS ([`EnrolmentWorld`]), a real SMTP server (aiosmtpd), an IdP that keeps no
//! password (passwords off, the default; `[enrolment]` by e-mail; `[mpin]` summing two
//! real D-TAs' server shares over Milagro TLS, and not ready until it has both), both
//! D-TAs trusting that IdP and listing it in their `authservers`, and a group `staff`
//! naming all three. Badges enrol as real `milagro pat enrol` processes and register with
//! `milagro pat register --email` ([`MpinWorld::register`]), the person reading the code
//! the IdP e-mailed; [`with_badge`] is that world with one badge registered for
//! [`EMAIL`].

use std::io::{BufRead as _, BufReader};
use std::ops::Deref;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use milagro_anchor::keys::CompressedKey;
use milagro_idp::devices::Registration;
use milagro_mpin::MpinId;

use milagro_dta::{Dta, RunningDta};
use milagro_idp::{Idp, RunningIdp};
use milagro_tests::dta_common::{numbered_config, wait_for_share_api, PATIENCE};
use milagro_tests::enrolment_world::EnrolmentWorld;
use milagro_tests::idp_common::{
    email_device, free_port, idp_config, no_redirect_client, register_device_client, NO_PASSWORDS,
};
use milagro_tests::smtp_sink::{code_and_link, SmtpSink};
use milagro_tests::{wait_until, Api};
use serde_json::Value;

use super::pat_mpin::milagro_with_pin;
use super::{json, stderr};

/// Every badge's PIN in this world.
pub(super) const PIN: &str = "1357";
/// A PIN that is not it.
pub(super) const WRONG_PIN: &str = "2468";
/// The address people register with (its domain may register itself).
pub(super) const EMAIL: &str = "carol@milagro.test";

/// The running world; everything stops when it is dropped.
pub(super) struct MpinWorld {
    /// The node, the TBS and the device maker.
    pub w: EnrolmentWorld,
    /// Where every party and badge keeps its state.
    pub dir: tempfile::TempDir,
    /// The SMTP server the IdP sends its codes to.
    pub sink: SmtpSink,
    /// The IdP, with `[mpin]`.
    pub idp: RunningIdp,
    /// Its issuer URL.
    pub issuer: String,
    /// The two D-TAs.
    pub dtas: Vec<RunningDta>,
    /// A client that follows no redirect.
    pub http: reqwest::blocking::Client,
}

impl MpinWorld {
    /// Starts everything and waits until the IdP has summed both D-TAs' server shares
    /// (checking it is not ready before); `mpin` is added inside the IdP's `[mpin]`
    /// section (e.g. `signin_secs = 30`), `tables` after it (e.g. `[mpin.login]`).
    pub fn start(mpin: &str, tables: &str) -> Self {
        let w = EnrolmentWorld::start();
        let dir = tempfile::tempdir().unwrap();
        let http = no_redirect_client();
        let sink = SmtpSink::start();
        let (port, idp_dir) = (free_port(), dir.path().join("idp"));
        let base = format!(
            "{NO_PASSWORDS}[enrolment]\nallowed_domains = [\"milagro.test\"]\n{}",
            sink.idp_section()
        );
        let idp = Idp::start(idp_config(w.node(), &idp_dir, port, &base)).unwrap();
        let issuer = idp.state().issuer().to_owned();
        let device_client = register_device_client(&http, &issuer);
        let digest = idp.state().identity.digest();
        // Each D-TA trusts the IdP's ID tokens and gives the IdP its server share.
        let extra = format!(
            "[[trusted_idps]]\nissuer = {issuer:?}\nbc_digest = \"{digest}\"\n\
             client_id = {device_client:?}\n[shares]\nauthservers = [\"{digest}\"]\n"
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
        let with_mpin = format!("{base}[mpin]\n{mpin}\n{peers}{tables}");
        let idp = Idp::start(idp_config(w.node(), &idp_dir, port, &with_mpin)).unwrap();
        wait_until("every anchor to be broadcast", PATIENCE, || {
            let pending = |api: Api| api.ok("/v1/status")["anchor"]["state"] == "pending";
            let idp_sent = !matches!(
                idp.state().own_anchor.get(),
                milagro_service::own_anchor::AnchorState::None
            );
            (idp_sent && dtas.iter().all(|d| pending(Api::new(d.local_url())))).then_some(())
        });
        // Not ready while the D-TAs' anchors are not final: no server secret yet.
        let server_secret = || -> (bool, Value) {
            let readiness: Value = http
                .get(format!("{issuer}/readyz"))
                .send()
                .unwrap()
                .json()
                .unwrap();
            let summed = readiness["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == "server_secret" && c["ok"] == true);
            (readiness["ready"] == true && summed, readiness)
        };
        let (ready, before) = server_secret();
        assert!(
            !ready,
            "ready before the D-TAs' anchors are final: {before}"
        );
        w.mine(6);
        for dta in &dtas {
            wait_for_share_api(&w, dta);
        }
        wait_until("the IdP's server secret to be summed", PATIENCE, || {
            server_secret().0.then_some(())
        });
        w.put_group_of("staff", &dtas, (digest, issuer.clone()));
        Self {
            w,
            dir,
            sink,
            idp,
            issuer,
            dtas,
            http,
        }
    }

    /// Enrols the badge `name` into `staff` (a real `milagro pat enrol`) and confirms its
    /// anchor; its state directory.
    pub fn enrol(&self, name: &str) -> String {
        let claim = self.w.maker_key_file().display().to_string();
        let state = self.dir.path().join(name).display().to_string();
        let (url, digest) = (self.w.url(), self.w.tbs_digest.to_string());
        let enrol = super::pat::run_mining(
            &self.w,
            &super::pat::enrol_args(&url, &digest, "staff", &state, &claim),
        );
        assert!(enrol.status.success(), "{}", stderr(&enrol));
        self.w.mine(6);
        state
    }

    /// Runs `milagro pat register --email` for the badge at `state`, drives the person's
    /// side on the IdP's device page (the `n`th mail to [`EMAIL`]) and returns the
    /// command's JSON answer.
    pub fn register(&self, state: &str, n: usize) -> Value {
        let (http, issuer) = (&self.http, self.issuer.as_str());
        pat_register(state, EMAIL, |user_code| {
            let (status, page) = email_device(http, issuer, user_code, EMAIL, "");
            assert_eq!(status, 200, "{page}");
            let (code, _) = code_and_link(&self.sink.wait_for_message(EMAIL, n));
            let (status, page) = email_device(http, issuer, user_code, EMAIL, &code);
            assert_eq!(status, 200, "{page}");
            assert!(page.contains("Device connected"), "{page}");
        })
    }
}

/// An [`MpinWorld`] with one badge registered for [`EMAIL`], its M-Pin key from both
/// D-TAs; derefs to the world.
pub(super) struct BadgeWorld {
    world: MpinWorld,
    /// The person's subject (`sub`).
    pub person: String,
    /// The badge's state directory.
    pub state: String,
    /// The badge's M-Pin identity (hex).
    pub mpin_id: String,
    /// The person's registration at the IdP: the badge.
    pub registration: Registration,
}

impl Deref for BadgeWorld {
    type Target = MpinWorld;

    fn deref(&self) -> &MpinWorld {
        &self.world
    }
}

/// Starts an [`MpinWorld`] (`mpin` and `tables` as [`MpinWorld::start`] takes them) and
/// registers a badge for [`EMAIL`]: the identity the D-TAs bound (issuer, subject, device
/// key) is the one the IdP registered.
pub(super) fn with_badge(mpin: &str, tables: &str) -> BadgeWorld {
    let world = MpinWorld::start(mpin, tables);
    let state = world.enrol("badge");
    let registered = world.register(&state, 1);
    assert_eq!(registered["status"], "registered", "{registered}");
    let mpin_id = registered["mpin_id"].as_str().unwrap().to_owned();
    let idp = world.idp.state();
    let person = idp
        .users
        .by_username(EMAIL)
        .unwrap()
        .expect("the person exists")
        .subject;
    let device_key = match milagro_pat_client::open(Path::new(&state)).unwrap() {
        milagro_pat_client::Stage::Enrolled(enrolled) => enrolled.device().key().public_key(),
        other => panic!("the badge is {}", other.name()),
    };
    let bound = MpinId::of_device(&world.issuer, &person, &device_key.to_sec1()).unwrap();
    assert_eq!(bound.as_bytes(), mpin_id.as_bytes());
    let registration = idp
        .registered_devices
        .current(&person)
        .unwrap()
        .expect("pat register registers the device");
    assert_eq!(registration.mpin_id, mpin_id);
    assert_eq!(registration.device_key, CompressedKey::from(&device_key));
    BadgeWorld {
        world,
        person,
        state,
        mpin_id,
        registration,
    }
}

/// Runs `milagro pat register --state state --email email` (the PIN [`PIN`]) as a
/// process; `prove` does the person's side on the IdP's device page, given the device
/// code the command printed. The command's JSON answer.
pub(super) fn pat_register(state: &str, email: &str, prove: impl FnOnce(&str)) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_milagro"))
        .args(["pat", "register", "--state", state, "--email", email])
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
    prove(&user_code);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", rest.join("\n"));
    json(&output)
}

/// `milagro pat approve --state state` with `how` (`--access-number N` or `--url U`).
pub(super) fn approve(state: &str, how: [&str; 2], pin: &str) -> Output {
    milagro_with_pin(
        &["pat", "approve", "--state", state, how[0], how[1]],
        Some(pin),
    )
}

/// Asserts `output` (of a `milagro` command) failed with the IdP's `status` and `code`.
pub(super) fn refused(output: &Output, status: u16, code: &str, case: &str) {
    let text = stderr(output);
    assert!(!output.status.success(), "{case}: {text}");
    assert!(
        text.contains(&format!("answered {status} {code}")),
        "{case}: {text}"
    );
}
