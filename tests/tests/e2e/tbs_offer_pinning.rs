//! Issue 13, attack 2, the offer's half: the anchoring offer travels sealed under the
//! device's instruction key with the funding outpoint and change script the TBS meant,
//! and the real device (`milagro-pat-client`) signs nothing else. Against a real TBS on a
//! real regtest node, through a proxy on the path between the device and the TBS:
//!
//! - an offer swapped for another device's (sealed under another instruction key) does
//!   not open, and the device signs nothing;
//! - an offer re-sealed by someone holding the device's instruction key, whose PSBT spends
//!   another outpoint than its terms name, or pays its change to another script, is
//!   refused by the device with the mismatch named;
//! - after each refusal the TBS still waits for a signature (nothing was paid), and the
//!   device, talking to the TBS directly, enrols by spending exactly the outpoint sealed
//!   in the honest offer.
//!
//! That nobody but the device reads an offer (a progress `GET` shows no PSBT) is
//! `tbs_enrolment.rs` `bad_enrolments_get_a_4xx_and_change_nothing`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::hashes::Hash as _;
use bitcoin::psbt::Psbt;
use bitcoin::{OutPoint, Txid};
use milagro_anchor::anchor_offer::{AnchorOffer, OfferError, OfferTerms};
use milagro_anchor::anchor_tx::p2wpkh_script;
use milagro_anchor::birth_certificate::{BirthCertificate, Role};
use milagro_anchor::enrolment::EnrolmentRequest;
use milagro_anchor::envelope::{EnvelopeError, InstructionKey, SealedOffer};
use milagro_anchor::keys::{PublicKey, SecretKey};
use milagro_anchor::purpose_keys::KeyPurpose;
use milagro_pat_client::{enrol, Error, Provisioning, ServiceClient, Stage, WaitOptions};
use milagro_tests::enrolment_world::EnrolmentWorld;
use milagro_tests::on_path::{Answer, OnPathProxy};
use milagro_tests::party;
use rand_core::OsRng;
use serde_json::{json, Value};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// What the proxy does to the offer in an answer to `POST /v1/enrolments`.
#[derive(Clone)]
enum Tamper {
    /// Passes it on.
    Nothing,
    /// Puts this sealed offer (another device's) in its place.
    Replace(String),
    /// Opens it with the device's instruction key and re-seals it with terms naming this
    /// funding outpoint instead of the one the PSBT spends.
    Refund(OutPoint),
    /// Opens it and re-seals it with a PSBT paying its change to this script, the terms
    /// still naming the TBS's.
    Rechange(bitcoin::ScriptBuf),
}

/// What the proxy knows: the device's secrets it was handed (a leaked instruction key)
/// and what it saw.
struct OnPath {
    tamper: Tamper,
    instruction_key: InstructionKey,
    tbs: PublicKey,
    bc: BirthCertificate,
    /// The funding outpoint of the last honest offer it opened.
    honest_funding: Option<OutPoint>,
}

impl OnPath {
    fn rewrite(&mut self, body: &str) -> String {
        let mut answer: Value = serde_json::from_str(body).unwrap();
        let Some(sealed) = answer["offer"].as_str() else {
            return body.to_owned();
        };
        let sealed = SealedOffer::from_base64(sealed).unwrap();
        let device = *self.bc.public_key();
        let terms = OfferTerms::open(&self.instruction_key, &self.tbs, &device, &sealed).unwrap();
        let offer = terms.clone().check(&self.bc, now()).unwrap();
        self.honest_funding = Some(terms.funding());
        let forged = match &self.tamper {
            Tamper::Nothing => return body.to_owned(),
            Tamper::Replace(other) => other.clone(),
            Tamper::Refund(elsewhere) => OfferTerms::new(
                &offer,
                *elsewhere,
                terms.change().clone(),
                terms.expires_at(),
            )
            .seal(&mut OsRng, &self.instruction_key, &self.tbs, &device)
            .unwrap()
            .to_base64(),
            Tamper::Rechange(script) => {
                let mut psbt = Psbt::deserialize(&offer.to_psbt_bytes()).unwrap();
                psbt.unsigned_tx.output[1].script_pubkey = script.clone();
                // Every check of the offer alone passes: only its terms tell.
                let swapped = AnchorOffer::check(&psbt.serialize(), &self.bc).unwrap();
                OfferTerms::new(
                    &swapped,
                    terms.funding(),
                    terms.change().clone(),
                    terms.expires_at(),
                )
                .seal(&mut OsRng, &self.instruction_key, &self.tbs, &device)
                .unwrap()
                .to_base64()
            }
        };
        answer["offer"] = json!(forged);
        answer.to_string()
    }
}

fn provisioning(w: &EnrolmentWorld, tbs_url: String) -> Provisioning {
    Provisioning {
        tbs_url,
        tbs_digest: w.tbs_digest,
        tenant: "acme".into(),
        group: "eu".into(),
        network: bitcoin::Network::Regtest,
        sources: Default::default(),
    }
}

/// The sealed offer the TBS of envelope key `envelope` makes another device (with its own
/// instruction key).
fn another_devices_offer(w: &EnrolmentWorld, envelope: &PublicKey) -> String {
    let (key, bc) = party(Role::Pat, "another device");
    let request = EnrolmentRequest::new(
        &mut OsRng,
        &key,
        bc,
        InstructionKey::generate(&mut OsRng),
        w.credential(&key.public_key(), "eu"),
        envelope,
        now(),
    )
    .unwrap();
    let (status, answer) = w.api.call(
        "POST",
        "/v1/enrolments",
        None,
        Some(json!({ "envelope": request.seal(&mut OsRng, envelope).unwrap() })),
    );
    assert_eq!(status, 200, "{answer}");
    answer["offer"].as_str().unwrap().to_owned()
}

/// The device, restarted from its state, asks for an offer through `tbs`.
fn request_offer(dir: &std::path::Path, tbs: &ServiceClient) -> Result<(), Error> {
    let Stage::Provisioned(device) = milagro_pat_client::open(dir).unwrap() else {
        panic!("the device has signed nothing, so it is still only provisioned")
    };
    device.verify_tbs(tbs)?.request(tbs).map(|_| ())
}

#[test]
fn a_device_signs_only_the_offer_sealed_to_it_with_the_outpoint_and_change_it_names() {
    let w = EnrolmentWorld::start();
    let dta = w.anchored(Role::Dta, "D-TA");
    let idp = w.anchored(Role::Idp, "IdP");
    w.put_group("eu", &[&dta], &idp);
    let served = w.api.ok("/.well-known/milagro/birth-certificate");
    let tbs_bc =
        BirthCertificate::parse(served["birth_certificate"].to_string().as_bytes()).unwrap();
    // Offers are sealed as the TBS's anchored key; requests to its envelope key.
    let tbs = *tbs_bc.public_key();
    let envelope = *tbs_bc.purpose_key(KeyPurpose::Envelope).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let stage = w.provision(dir.path(), provisioning(&w, w.url()), None);
    let device_bc = stage.device().birth_certificate().clone();
    let device = *device_bc.public_key();
    // The attacker holds the device's instruction key (as if it leaked): the strongest
    // position short of the device key itself.
    let text = std::fs::read_to_string(dir.path().join("instruction.key")).unwrap();
    let on_path = Arc::new(Mutex::new(OnPath {
        tamper: Tamper::Nothing,
        instruction_key: InstructionKey::from_hex(text.trim()).unwrap(),
        tbs,
        bc: device_bc,
        honest_funding: None,
    }));
    let proxy = OnPathProxy::start(&w.url(), {
        let on_path = on_path.clone();
        move |path, answer| {
            if path != "/v1/enrolments" || answer.status != 200 {
                return answer;
            }
            let body = on_path.lock().unwrap().rewrite(&answer.body);
            Answer { body, ..answer }
        }
    });
    let through_proxy = ServiceClient::new(proxy.url()).unwrap();
    let set = |tamper: Tamper| on_path.lock().unwrap().tamper = tamper;

    set(Tamper::Replace(another_devices_offer(&w, &envelope)));
    let error = request_offer(dir.path(), &through_proxy).unwrap_err();
    assert!(
        matches!(
            error,
            Error::Offer(OfferError::Sealed(EnvelopeError::Decrypt))
        ),
        "{error}"
    );

    let elsewhere = OutPoint::new(Txid::from_byte_array([7; 32]), 0);
    set(Tamper::Refund(elsewhere));
    let error = request_offer(dir.path(), &through_proxy).unwrap_err();
    let honest_funding = on_path.lock().unwrap().honest_funding.unwrap();
    assert!(
        matches!(
            &error,
            Error::Offer(OfferError::FundingMismatch { sealed, psbt })
                if *sealed == elsewhere && *psbt == honest_funding
        ),
        "{error}"
    );

    let mallory = p2wpkh_script(&SecretKey::generate(&mut OsRng).public_key());
    set(Tamper::Rechange(mallory.clone()));
    let error = request_offer(dir.path(), &through_proxy).unwrap_err();
    assert!(
        matches!(
            &error,
            Error::Offer(OfferError::ChangeMismatch { psbt, .. }) if *psbt == mallory
        ),
        "{error}"
    );

    // Nothing was signed, so nothing was paid: the TBS still holds the same offer.
    assert_eq!(w.requests("/v1/enrolments/signed", "POST", 202), 0);
    let progress = w.api.ok(&format!("/v1/enrolments/{device}"));
    assert_eq!(progress["status"], "offered", "{progress}");

    // Straight to the TBS, the device enrols by spending exactly the sealed outpoint.
    let direct = ServiceClient::new(&w.url()).unwrap();
    let stage = milagro_pat_client::open(dir.path()).unwrap();
    let wait = WaitOptions {
        timeout: Duration::from_secs(60),
        interval: Duration::from_millis(50),
    };
    let enrolling = std::thread::spawn(move || enrol(stage, &direct, &wait, |_| {}));
    w.mine_while_waiting("the device to enrol", || {
        enrolling.is_finished().then_some(())
    });
    let enrolled = enrolling.join().unwrap().unwrap();
    let txid = enrolled.device().anchor_txid().unwrap();
    let hex: String = w
        .node()
        .rpc
        .call("getrawtransaction", &[json!(txid.to_string())])
        .unwrap();
    let anchor: bitcoin::Transaction = bitcoin::consensus::encode::deserialize_hex(&hex).unwrap();
    assert_eq!(anchor.input[0].previous_output, honest_funding);
}
