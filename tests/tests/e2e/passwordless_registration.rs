//! Issue 15, item 1: a person registers a device without any password, by proving an
//! e-mail address, against a real regtest node, a real IdP on loopback and a real SMTP
//! server this project did not write (aiosmtpd, [`milagro_tests::smtp_sink`]):
//!
//! - the device starts its grant (the device library, as `milagro pat login` does); the
//!   person gives their address on `/device`, the IdP e-mails a code (the test reads it
//!   from the mail aiosmtpd received), the person types it, allows the client, and the
//!   device is registered for a person the IdP created without a password: the
//!   registration names the M-Pin identity the D-TAs bind
//!   (`milagro_dta::issuance::mpin_id`);
//! - refused, with one answer: a wrong code, the code typed for another device
//!   authorization or with another address, a used code, an expired code;
//! - an address whose domain may not register itself gets the same answer and no mail
//!   (no enumeration), but registers with the operator's activation code
//!   (`POST /v1/admin/activation-codes`), once;
//! - a lost device: the same person registers a new one by e-mail, which replaces it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_anchor::instructions::ServiceAnchor;
use milagro_anchor::keys::SecretKey;
use milagro_dta::issuance::mpin_id;
use milagro_pat_client::idp_login::{DeviceLogin, IdpLogin};
use milagro_service::token::ApiToken;
use milagro_tests::idp_common::{encode, hidden_fields, register_device_client, IdpWorld};
use milagro_tests::smtp_sink::{code_and_link, SmtpSink};
use serde_json::{json, Value};

const CAROL: &str = "carol@milagro.test";
const ERIN: &str = "erin@elsewhere.test";
const FRANK: &str = "frank@milagro.test";
const WRONG: &str = "That code is wrong, used or expired";
const SENT: &str = "If this address may register here, a code is on its way";

/// A browser on the device page: its CSRF cookie and token.
struct Browser<'a> {
    w: &'a IdpWorld,
    cookie: String,
    csrf: String,
}

impl<'a> Browser<'a> {
    fn open(w: &'a IdpWorld, query: &str) -> (Self, String) {
        let page = w
            .http
            .get(format!("{}/device{query}", w.issuer))
            .send()
            .unwrap();
        let cookie = page.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let html = page.text().unwrap();
        let csrf = hidden_fields(&html)
            .into_iter()
            .find(|(name, _)| name == "csrf")
            .unwrap()
            .1;
        (Self { w, cookie, csrf }, html)
    }

    fn post(&self, fields: &[(&str, &str)]) -> (u16, String) {
        let mut form = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        let answer = self
            .w
            .http
            .post(format!("{}/device", self.w.issuer))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &self.cookie)
            .body(encode(form.into_iter()))
            .send()
            .unwrap();
        (answer.status().as_u16(), answer.text().unwrap())
    }

    /// Types `email` and `code` for `user_code`; on the consent page, allows the client.
    fn prove_and_allow(&self, user_code: &str, email: &str, code: &str) -> (u16, String) {
        let (status, page) =
            self.post(&[("user_code", user_code), ("email", email), ("code", code)]);
        if !page.contains("name=\"consent\"") {
            return (status, page);
        }
        let mut choice: Vec<(String, String)> = hidden_fields(&page);
        choice.push(("decision".into(), "allow".into()));
        let pairs: Vec<(&str, &str)> = choice
            .iter()
            .filter(|(k, _)| k != "csrf")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.post(&pairs)
    }
}

fn start_device(w: &IdpWorld, client_id: &str) -> DeviceLogin {
    let (_, served) = w.get("/.well-known/milagro/birth-certificate");
    let anchor = ServiceAnchor {
        url: w.issuer.clone(),
        birth_certificate: w.idp.state().identity.digest(),
        anchor_proof: serde_json::from_value(served["anchor_proof"].clone()).unwrap(),
    };
    IdpLogin::discover(
        &milagro_http_client::Outbound::system().unwrap(),
        &anchor,
        client_id,
    )
    .unwrap()
    .start()
    .unwrap()
}

fn world(sink: &SmtpSink, admin: &ApiToken, extra: &str) -> IdpWorld {
    IdpWorld::start(&format!(
        "[admin]\ntoken_sha256 = \"{}\"\n[enrolment]\nallowed_domains = [\"milagro.test\"]\n{extra}\n{}",
        admin.hash(),
        sink.idp_section()
    ))
}

fn activation_code(w: &IdpWorld, token: Option<&ApiToken>, email: &str) -> (u16, Value) {
    let mut request = w
        .http
        .post(format!("{}/v1/admin/activation-codes", w.issuer))
        .json(&json!({ "email": email }));
    if let Some(token) = token {
        request = request.bearer_auth(token.reveal());
    }
    let answer = request.send().unwrap();
    (answer.status().as_u16(), answer.json().unwrap())
}

#[test]
fn a_person_registers_a_device_by_email_or_activation_code_without_a_password() {
    let sink = SmtpSink::start();
    let admin = ApiToken::generate(&mut rand_core::OsRng);
    let w = world(&sink, &admin, "");
    let client_id = register_device_client(&w.http, &w.issuer);
    let state = w.idp.state();

    // Device A starts; the person asks for a code by e-mail.
    let a_key = SecretKey::generate(&mut rand_core::OsRng);
    let a = start_device(&w, &client_id);
    let (browser, _) = Browser::open(&w, "");
    let (status, page) = browser.post(&[
        ("user_code", a.user_code()),
        ("email", "Carol@Milagro.test"),
    ]);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(SENT), "{page}");
    let (code, link) = code_and_link(&sink.wait_for_message(CAROL, 1));

    // The link opens the page with the device's code and the mailed code filled in.
    let path = link.strip_prefix(&w.issuer).unwrap();
    let (_, linked) = Browser::open(&w, path.strip_prefix("/device").unwrap());
    assert!(linked.contains(&format!("value=\"{code}\"")), "{linked}");
    assert!(
        linked.contains(&format!("value=\"{}\"", a.user_code())),
        "{linked}"
    );

    // Refused, all with the same answer: a wrong code, the code for another device
    // authorization, the code with another address.
    let wrong = if code == "12345678" {
        "87654321"
    } else {
        "12345678"
    };
    let (status, page) = browser.prove_and_allow(a.user_code(), CAROL, wrong);
    assert_eq!((status, page.contains(WRONG)), (401, true), "{page}");
    let other = start_device(&w, &client_id);
    let (status, page) = browser.prove_and_allow(other.user_code(), CAROL, &code);
    assert_eq!((status, page.contains(WRONG)), (401, true), "{page}");
    let (status, page) = browser.prove_and_allow(a.user_code(), "dave@milagro.test", &code);
    assert_eq!((status, page.contains(WRONG)), (401, true), "{page}");

    // The right code: consent, then the device is registered for a new person with no
    // password, under the identity the D-TAs bind.
    let (status, page) = browser.prove_and_allow(a.user_code(), CAROL, &code);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Device connected"), "{page}");
    a.wait(&a_key).unwrap();
    let carol = state
        .users
        .by_username(CAROL)
        .unwrap()
        .expect("carol exists");
    assert_eq!(carol.password_hash, None);
    assert_eq!(carol.email.as_deref(), Some(CAROL));
    let registered = state
        .registered_devices
        .current(&carol.subject)
        .unwrap()
        .unwrap();
    assert_eq!(registered.device_key, a_key.public_key());
    let identity = mpin_id(&w.issuer, &carol.subject, &a_key.public_key()).unwrap();
    assert_eq!(registered.mpin_id.as_bytes(), identity.as_bytes());

    // A used code: spent, even for a new authorization of the same person.
    let b = start_device(&w, &client_id);
    let (status, page) = browser.prove_and_allow(b.user_code(), CAROL, &code);
    assert_eq!((status, page.contains(WRONG)), (401, true), "{page}");

    // Lost device: carol registers device B by e-mail; A is replaced.
    let b_key = SecretKey::generate(&mut rand_core::OsRng);
    let (status, page) = browser.post(&[("user_code", b.user_code()), ("email", CAROL)]);
    assert_eq!((status, page.contains(SENT)), (200, true), "{page}");
    let (code, _) = code_and_link(&sink.wait_for_message(CAROL, 2));
    let (status, page) = browser.prove_and_allow(b.user_code(), CAROL, &code);
    assert_eq!(status, 200, "{page}");
    b.wait(&b_key).unwrap();
    let now = state
        .registered_devices
        .current(&carol.subject)
        .unwrap()
        .unwrap();
    assert_eq!(now.device_key, b_key.public_key());
    assert_eq!(
        state
            .registered_devices
            .by_mpin_id(&registered.mpin_id)
            .unwrap(),
        None
    );
    assert_eq!(
        state.users.by_username(CAROL).unwrap().unwrap().subject,
        carol.subject
    );

    // Another domain: the same answer, no mail, no person.
    let e = start_device(&w, &client_id);
    let (status, page) = browser.post(&[("user_code", e.user_code()), ("email", ERIN)]);
    assert_eq!((status, page.contains(SENT)), (200, true), "{page}");
    // Mail leaves from one queue in order: once a later message is in, erin's would be.
    let (_, page) = browser.post(&[("user_code", e.user_code()), ("email", FRANK)]);
    assert!(page.contains(SENT), "{page}");
    sink.wait_for_message(FRANK, 1);
    assert!(sink.messages_to(ERIN).is_empty());
    assert!(state.users.by_username(ERIN).unwrap().is_none());

    // The operator's activation code: only with the admin token; once.
    let (status, refused) = activation_code(&w, None, ERIN);
    assert_eq!(
        (status, refused["error"].as_str()),
        (401, Some("invalid_token"))
    );
    let (status, issued) = activation_code(&w, Some(&admin), "Erin@Elsewhere.test");
    assert_eq!(status, 201, "{issued}");
    assert_eq!(issued["email"], ERIN);
    let activation = issued["activation_code"].as_str().unwrap();
    let (status, page) = browser.prove_and_allow(e.user_code(), CAROL, activation);
    assert_eq!(
        (status, page.contains(WRONG)),
        (401, true),
        "another address: {page}"
    );
    let e_key = SecretKey::generate(&mut rand_core::OsRng);
    let (status, page) = browser.prove_and_allow(e.user_code(), ERIN, activation);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Device connected"), "{page}");
    e.wait(&e_key).unwrap();
    let erin = state.users.by_username(ERIN).unwrap().expect("erin exists");
    assert_eq!(erin.password_hash, None);
    let registered = state
        .registered_devices
        .current(&erin.subject)
        .unwrap()
        .unwrap();
    let identity = mpin_id(&w.issuer, &erin.subject, &e_key.public_key()).unwrap();
    assert_eq!(registered.mpin_id.as_bytes(), identity.as_bytes());
    let again = start_device(&w, &client_id);
    let (status, page) = browser.prove_and_allow(again.user_code(), ERIN, activation);
    assert_eq!((status, page.contains(WRONG)), (401, true), "used: {page}");
}

#[test]
fn expired_codes_are_refused() {
    let sink = SmtpSink::start();
    let admin = ApiToken::generate(&mut rand_core::OsRng);
    let w = world(
        &sink,
        &admin,
        "mail_code_secs = 1\nactivation_code_secs = 1\n",
    );
    let client_id = register_device_client(&w.http, &w.issuer);
    let device = start_device(&w, &client_id);
    let (browser, _) = Browser::open(&w, "");
    let (status, page) = browser.post(&[("user_code", device.user_code()), ("email", CAROL)]);
    assert_eq!((status, page.contains(SENT)), (200, true), "{page}");
    let (code, _) = code_and_link(&sink.wait_for_message(CAROL, 1));
    let (status, issued) = activation_code(&w, Some(&admin), CAROL);
    assert_eq!(status, 201, "{issued}");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    for code in [code.as_str(), issued["activation_code"].as_str().unwrap()] {
        let (status, page) = browser.prove_and_allow(device.user_code(), CAROL, code);
        assert_eq!((status, page.contains(WRONG)), (401, true), "{page}");
    }
    assert!(w.idp.state().users.by_username(CAROL).unwrap().is_none());
}
