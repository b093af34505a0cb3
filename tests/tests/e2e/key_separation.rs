//! Issue 13, attack 9 ("one key for everything"), against a real TBS on a real regtest
//! node: the TBS's anchored key signs its certificate and its anchors and nothing else.
//!
//! - Envelopes are opened only with the `envelope` key the TBS's certificate lists: an
//!   enrolment request or a signed anchor sealed to the anchored key is refused with `400`
//!   (it does not open), and so is a request whose proof of possession names the
//!   anchored key. A real device reads the envelope key from the certificate it checked
//!   and enrols.
//! - Checkpoint notes are signed with the `checkpoint` key the certificate lists; the
//!   served key and key ID are that key's, and the same checkpoint signed with the anchored
//!   key is refused by a verifier that takes the key from the certificate.
//!
//! The session-token half of the attack runs against a real authentication server in
//! `authserver_login.rs` (it needs D-TAs and an IdP to become ready).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::str::FromStr;
use std::time::Duration;

use milagro_anchor::birth_certificate::{BirthCertificate, Role};
use milagro_anchor::checkpoint::{CheckpointError, KeyId, KeyName, SignedCheckpoint};
use milagro_anchor::enrolment::{EnrolmentRequest, SignedAnchor};
use milagro_anchor::envelope::InstructionKey;
use milagro_anchor::keys::PublicKey;
use milagro_anchor::purpose_keys::KeyPurpose;
use milagro_pat_client::{enrol, Provisioning, ServiceClient, Stage, WaitOptions};
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

/// The TBS's certificate as a device sees it.
fn served_certificate(w: &EnrolmentWorld) -> BirthCertificate {
    let served = w.api.ok("/.well-known/milagro/birth-certificate");
    let bc = BirthCertificate::parse(served["birth_certificate"].to_string().as_bytes()).unwrap();
    assert_eq!(bc.digest(), w.tbs_digest);
    bc
}

/// Waits for a checkpoint covering at least one registration, mining its anchor.
fn checkpoint(w: &EnrolmentWorld) -> Value {
    wait_until("a confirmed checkpoint", PATIENCE, || {
        let (status, body) = w.api.get("/v1/audit/checkpoint");
        if status != 200 {
            return None;
        }
        let anchor = &body["anchor"];
        let txid = bitcoin::Txid::from_str(anchor["txid"].as_str()?).ok()?;
        if anchor["state"] == "pending" && w.node().rpc.in_mempool(&txid).unwrap() {
            w.mine(1);
        }
        (anchor["state"] == "confirmed").then_some(body)
    })
}

#[test]
fn the_tbs_opens_envelopes_and_signs_checkpoints_only_with_its_listed_purpose_keys() {
    let w = EnrolmentWorld::start_with(&WorldOptions {
        extra_config: "[audit]\ncheckpoint_interval_secs = 1\n".into(),
        restartable: false,
        http: None,
    });
    let dta = w.anchored(Role::Dta, "D-TA");
    let idp = w.anchored(Role::Idp, "IdP");
    w.put_group("eu", &[&dta], &idp);
    let bc = served_certificate(&w);
    let anchored = *bc.public_key();
    let envelope_key = *bc.purpose_key(KeyPurpose::Envelope).unwrap();
    let checkpoint_key = *bc.purpose_key(KeyPurpose::Checkpoint).unwrap();
    assert_ne!(envelope_key, anchored);
    assert_ne!(checkpoint_key, anchored);
    assert_ne!(envelope_key, checkpoint_key);

    // Envelopes: a device's genuine request (valid credential, fresh possession proof),
    // made for and sealed to the anchored key, or with one of the two swapped.
    let (key, device_bc) = party(Role::Pat, "thermostat");
    let request_for = |tbs: &PublicKey| {
        EnrolmentRequest::new(
            &mut OsRng,
            &key,
            device_bc.clone(),
            InstructionKey::generate(&mut OsRng),
            w.credential(&key.public_key(), "eu"),
            tbs,
            now(),
        )
        .unwrap()
    };
    let cases = [
        (&anchored, &anchored, "sealed to another key"),
        (&envelope_key, &anchored, "sealed to another key"),
        (&anchored, &envelope_key, "proof of possession"),
    ];
    for (made_for, sealed_to, reason) in cases {
        let body =
            json!({ "envelope": request_for(made_for).seal(&mut OsRng, sealed_to).unwrap() });
        let (status, answer) = w.api.call("POST", "/v1/enrolments", None, Some(body));
        assert_eq!(status, 400, "{answer}");
        assert!(answer.to_string().contains(reason), "{reason}: {answer}");
    }
    // Nothing was offered for those: the device is unknown to the TBS.
    assert_eq!(
        w.api.get(&format!("/v1/enrolments/{}", key.public_key())).0,
        404
    );
    let stray = SignedAnchor {
        device: key.public_key(),
        tx: bitcoin::Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![],
            output: vec![],
        },
    };
    let body = json!({ "envelope": stray.seal(&mut OsRng, &anchored).unwrap() });
    let (status, answer) = w
        .api
        .call("POST", "/v1/enrolments/signed", None, Some(body));
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer.to_string().contains("sealed to another key"),
        "{answer}"
    );

    // The control: a real device reads the envelope key from the certificate it checked
    // by SPV, seals to it and enrols; its registration is then logged.
    let dir = tempfile::tempdir().unwrap();
    let provisioning = Provisioning {
        tbs_url: w.url(),
        tbs_digest: w.tbs_digest,
        tenant: "acme".into(),
        group: "eu".into(),
        network: bitcoin::Network::Regtest,
        sources: Default::default(),
    };
    let stage = w.provision(dir.path(), provisioning, None);
    assert!(matches!(stage, Stage::Provisioned(_)), "{}", stage.name());
    let tbs = ServiceClient::new(&w.url()).unwrap();
    let wait = WaitOptions {
        timeout: PATIENCE,
        interval: Duration::from_millis(50),
    };
    let enrolling = std::thread::spawn(move || enrol(stage, &tbs, &wait, |_| {}));
    w.mine_while_waiting("the device to enrol", || {
        enrolling.is_finished().then_some(())
    });
    enrolling.join().unwrap().unwrap();

    // Checkpoints: served with the checkpoint key and its key ID, and signed by it.
    let body = checkpoint(&w);
    let origin = KeyName::new(body["key_name"].as_str().unwrap()).unwrap();
    assert_eq!(body["public_key"], checkpoint_key.to_string());
    assert_eq!(
        body["key_id"],
        KeyId::of(&origin, &checkpoint_key).to_string()
    );
    let note = body["checkpoint"]["note"].as_str().unwrap();
    let signed = SignedCheckpoint::parse_certified(note, &origin, &bc).unwrap();
    assert!(SignedCheckpoint::parse(note, &origin, &anchored).is_err());
    // The same checkpoint signed with the anchored key (what a TBS that still signed with
    // it, or a thief of that key, would publish) is refused by a verifier reading the key
    // from the certificate.
    let by_anchored_key = signed
        .checkpoint()
        .sign(&origin, w.tbs.state().identity.secret_key())
        .to_note();
    assert!(matches!(
        SignedCheckpoint::parse_certified(&by_anchored_key, &origin, &bc),
        Err(CheckpointError::NoSignatureFromKey { .. })
    ));
}
