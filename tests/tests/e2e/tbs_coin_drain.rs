//! Issue 13, attack 1: draining the TBS's coins, against a real TBS on a real regtest node.
//!
//! - Enrolment requests with valid tenant and group names but no credential from one of
//!   the group's enrolment keys are refused before anything is reserved: 1,000 of them
//!   move no satoshi.
//! - Offers with a valid credential whose devices never sign reserve pool coins but pay
//!   nothing (the payment goes out only with a checked, signed anchor), and the coins are
//!   free again once the offers lapse; a device whose offer lapsed asks again and enrols.
//! - A flood from one address past its limit gets `429` with `Retry-After`, while an
//!   honest device (another address) enrols in the same second.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use milagro_anchor::birth_certificate::{BirthCertificate, Role};
use milagro_anchor::enrolment::EnrolmentRequest;
use milagro_anchor::enrolment_credential::EnrolmentCredential;
use milagro_anchor::envelope::InstructionKey;
use milagro_anchor::keys::{PublicKey, SecretKey};
use milagro_anchor::purpose_keys::KeyPurpose;
use milagro_pat_client::{enrol, Provisioning, Requested, ServiceClient, Stage, WaitOptions};
use milagro_tests::enrolment_world::{EnrolmentWorld, WorldOptions};
use milagro_tests::{party, wait_until};
use rand_core::OsRng;
use serde_json::{json, Value};

const PATIENCE: Duration = Duration::from_secs(60);

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A world whose group `eu` (direct mode) lists the maker's enrolment key, with `config`
/// added to the TBS's configuration, and the envelope key its certificate lists (what a
/// device seals its requests to).
fn world(config: &str) -> (EnrolmentWorld, PublicKey) {
    let w = EnrolmentWorld::start_with(&WorldOptions {
        extra_config: config.into(),
        restartable: false,
        http: None,
    });
    let dta = w.anchored(Role::Dta, "D-TA");
    let idp = w.anchored(Role::Idp, "IdP");
    w.put_group("eu", &[&dta], &idp);
    let served = w.api.ok("/.well-known/milagro/birth-certificate");
    let bc = BirthCertificate::parse(served["birth_certificate"].to_string().as_bytes()).unwrap();
    (w, *bc.purpose_key(KeyPurpose::Envelope).unwrap())
}

/// A JSON client whose requests come from `address` (any 127.0.0.0/8 address reaches
/// the loopback listener): how a test plays two clients on one machine.
fn client_from(address: IpAddr) -> reqwest::blocking::Client {
    milagro_http_client::Outbound::system()
        .unwrap()
        .builder()
        .local_address(address)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `POST /v1/enrolments` with a request from `key` carrying `credential`: status,
/// `Retry-After` and body.
fn post_request(
    client: &reqwest::blocking::Client,
    w: &EnrolmentWorld,
    tbs: &PublicKey,
    key: &SecretKey,
    bc: &BirthCertificate,
    credential: EnrolmentCredential,
) -> (u16, Option<u64>, Value) {
    let request = EnrolmentRequest::new(
        &mut OsRng,
        key,
        bc.clone(),
        InstructionKey::generate(&mut OsRng),
        credential,
        tbs,
        now(),
    )
    .unwrap();
    let body = json!({ "envelope": request.seal(&mut OsRng, tbs).unwrap() });
    let response = client
        .post(format!("{}/v1/enrolments", w.url()))
        .json(&body)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, retry_after, response.json().unwrap())
}

/// What the TBS could spend: the node wallet's balance (confirmed and pending) and the
/// free pool coins, and the mempool (where anything it paid would be).
fn funds(w: &EnrolmentWorld) -> (Value, u64, Vec<String>) {
    let balances: Value = w.node().rpc.call("getbalances", &[]).unwrap();
    let free = w.api.ok("/v1/status")["funding_pool"]["free"]
        .as_u64()
        .unwrap();
    let mempool: Vec<String> = w.node().rpc.call("getrawmempool", &[]).unwrap();
    (balances["mine"].clone(), free, mempool)
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
fn a_thousand_enrolments_without_a_credential_move_no_satoshi() {
    let (w, tbs) = world("[enrolment]\nrequests_per_minute_per_address = 100000\n");
    let before = funds(&w);
    assert!(before.2.is_empty());
    let client = client_from(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let attacker = SecretKey::generate(&mut OsRng);
    for i in 0..1_000 {
        let (key, bc) = party(Role::Pat, &format!("junk {i}"));
        // Valid names, a well-formed credential, signed by a key the group does not list.
        let credential =
            EnrolmentCredential::issue(&attacker, "acme", "eu", &key.public_key()).unwrap();
        let (status, _, body) = post_request(&client, &w, &tbs, &key, &bc, credential);
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"], "forbidden");
        if i == 0 {
            let message = body["error_description"].as_str().unwrap();
            assert!(message.contains("not an enrolment key"), "{message}");
        }
    }
    assert_eq!(funds(&w), before, "nothing reserved, nothing paid");
    // Nothing of them is stored either.
    assert_eq!(w.requests("/v1/enrolments", "POST", 200), 0);
}

#[test]
fn offers_never_signed_pay_nothing_and_their_coins_return_when_they_lapse() {
    let (w, tbs) = world(
        "[anchoring]\nfunding_pool = 1000\n\
         [enrolment]\noffer_expiry_secs = 4\nrequests_per_minute_per_address = 100000\n\
         max_pending_offers_per_tenant = 200\n",
    );
    wait_until("the pool to be full", PATIENCE, || {
        (w.api.ok("/v1/status")["funding_pool"]["free"] == 1000).then_some(())
    });
    let (balance, free, mempool) = funds(&w);
    assert_eq!((free, mempool.len()), (1000, 0));
    let client = client_from(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut devices = Vec::new();
    for i in 0..200 {
        let (key, bc) = party(Role::Pat, &format!("silent {i}"));
        let credential = w.credential(&key.public_key(), "eu");
        let (status, _, body) = post_request(&client, &w, &tbs, &key, &bc, credential);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "offered");
        devices.push((key, bc));
    }
    // 200 coins are held for the offers; not one satoshi left the TBS.
    assert_eq!(funds(&w), (balance.clone(), 800, vec![]));
    // One more offer waiting for a signature is past the tenant's cap.
    let (key, bc) = party(Role::Pat, "one too many");
    let credential = w.credential(&key.public_key(), "eu");
    let (status, retry_after, body) = post_request(&client, &w, &tbs, &key, &bc, credential);
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("too_many_requests"))
    );
    assert!(retry_after.is_some(), "429 says when to come back");

    // The offers lapse: every coin is free again, and still nothing was paid.
    wait_until("the offers to lapse", PATIENCE, || {
        (w.api.ok("/v1/status")["funding_pool"]["free"] == 1000).then_some(())
    });
    assert_eq!(funds(&w), (balance, 1000, vec![]));
    let (key, _) = &devices[0];
    let status = w.api.ok(&format!("/v1/enrolments/{}", key.public_key()));
    assert_eq!(status["status"], "expired");
}

#[test]
fn a_device_whose_offer_lapsed_asks_again_and_enrols() {
    let (w, _) = world("[enrolment]\noffer_expiry_secs = 2\n");
    let dir = tempfile::tempdir().unwrap();
    let Stage::Provisioned(device) = w.provision(dir.path(), provisioning(&w), None) else {
        panic!("a new device starts provisioned")
    };
    let tbs = ServiceClient::new(&w.url()).unwrap();
    let Requested::Offered(offered) = device.verify_tbs(&tbs).unwrap().request(&tbs).unwrap()
    else {
        panic!("an offer")
    };
    let device_key = offered.device().public_key();
    // The device is slow to sign: its offer lapses first, and its signature is refused.
    wait_until("the offer to lapse", PATIENCE, || {
        let status = w.api.ok(&format!("/v1/enrolments/{device_key}"));
        (status["status"] == "expired").then_some(())
    });
    let error = offered.sign_and_send(&tbs).unwrap_err();
    assert!(
        matches!(error, milagro_pat_client::Error::OfferExpired),
        "{error}"
    );
    // The device forgot the lapsed offer; enrolling again gets a new one and goes through.
    let stage = milagro_pat_client::open(dir.path()).unwrap();
    assert!(matches!(stage, Stage::Provisioned(_)), "{}", stage.name());
    let wait = WaitOptions {
        timeout: PATIENCE,
        interval: Duration::from_millis(50),
    };
    let enrolling = std::thread::spawn(move || enrol(stage, &tbs, &wait, |_| {}));
    w.mine_while_waiting("the device to enrol", || {
        enrolling.is_finished().then_some(())
    });
    let enrolled = enrolling.join().unwrap().unwrap();
    assert_eq!(enrolled.device().public_key(), device_key);
}

#[test]
fn a_flood_from_one_address_gets_429_while_an_honest_device_enrols() {
    let (w, tbs) = world("[enrolment]\nrequests_per_minute_per_address = 20\n");
    // The flood comes from 127.0.0.2 with valid credentials (say, an extracted claim
    // key); the honest device from 127.0.0.1.
    let flood = {
        let (url, maker) = (w.url(), w.maker.clone());
        std::thread::spawn(move || {
            let client = client_from(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
            let mut answers = Vec::new();
            for i in 0..100 {
                let (key, bc) = party(Role::Pat, &format!("flood {i}"));
                let credential =
                    EnrolmentCredential::issue(&maker, "acme", "eu", &key.public_key()).unwrap();
                let request = EnrolmentRequest::new(
                    &mut OsRng,
                    &key,
                    bc,
                    InstructionKey::generate(&mut OsRng),
                    credential,
                    &tbs,
                    now(),
                )
                .unwrap();
                let body = json!({ "envelope": request.seal(&mut OsRng, &tbs).unwrap() });
                let response = client
                    .post(format!("{url}/v1/enrolments"))
                    .json(&body)
                    .send()
                    .unwrap();
                let retry_after = response.headers().get("Retry-After").is_some();
                answers.push((response.status().as_u16(), retry_after));
            }
            answers
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let stage = w.provision(dir.path(), provisioning(&w), None);
    let client = ServiceClient::new(&w.url()).unwrap();
    let wait = WaitOptions {
        timeout: PATIENCE,
        interval: Duration::from_millis(50),
    };
    let honest = std::thread::spawn(move || enrol(stage, &client, &wait, |_| {}));
    w.mine_while_waiting("the honest device to enrol", || {
        honest.is_finished().then_some(())
    });
    honest
        .join()
        .unwrap()
        .expect("the honest device enrols during the flood");
    let answers = flood.join().unwrap();
    let offered = answers.iter().filter(|(s, _)| *s == 200).count();
    let limited: Vec<_> = answers.iter().filter(|(s, _)| *s == 429).collect();
    assert_eq!(offered, 20, "the address's budget for the minute");
    assert_eq!(limited.len(), 80);
    assert!(limited.iter().all(|(_, retry_after)| *retry_after));
}
