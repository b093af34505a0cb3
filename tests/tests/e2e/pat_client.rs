//! The device side of enrolment (`milagro-pat-client`) against a real TBS over HTTP on a
//! real regtest node: the library checks the TBS, signs its own anchor, waits while the
//! test mines, verifies its instructions by SPV and keeps them in a private state
//! directory it can resume from.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use milagro_anchor::birth_certificate::Role;
use milagro_anchor::digest::Digest;
use milagro_pat_client::{
    enrol, open, Enrolled, Error, Poll, Provisioning, Refreshed, Requested, ServiceClient, Stage,
    WaitOptions, Waiting,
};
use milagro_tests::enrolment_world::EnrolmentWorld;

const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

fn provisioning(w: &EnrolmentWorld, group: &str) -> Provisioning {
    Provisioning {
        tbs_url: w.url(),
        tbs_digest: w.tbs_digest,
        tenant: "acme".into(),
        group: group.into(),
        network: bitcoin::Network::Regtest,
        sources: Default::default(),
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Waits for instructions on a thread while the test mines whatever the TBS broadcast.
fn confirm(w: &EnrolmentWorld, tbs: &ServiceClient, broadcast: Waiting) -> Enrolled {
    let tbs = tbs.clone();
    let waiting = std::thread::spawn(move || broadcast.wait(&tbs, WAIT, POLL, |_| {}));
    w.mine_while_waiting("the device to get its instructions", || {
        waiting.is_finished().then_some(())
    });
    waiting
        .join()
        .unwrap()
        .expect("the device verifies and stores its instructions")
}

/// Runs the whole protocol from a fresh provisioning.
fn enrolled(w: &EnrolmentWorld, dir: &Path, group: &str) -> Enrolled {
    let stage = w.provision(dir, provisioning(w, group), None);
    let tbs = ServiceClient::new(&w.url()).unwrap();
    let Stage::Provisioned(provisioned) = stage else {
        panic!("a new device starts provisioned")
    };
    let Requested::Offered(offered) = provisioned.verify_tbs(&tbs).unwrap().request(&tbs).unwrap()
    else {
        panic!("a new device gets an offer")
    };
    confirm(w, &tbs, offered.sign_and_send(&tbs).unwrap())
}

#[test]
fn a_device_enrols_end_to_end_and_picks_up_a_changed_group() {
    let w = EnrolmentWorld::start();
    let dta1 = w.anchored(Role::Dta, "D-TA 1");
    let dta2 = w.anchored(Role::Dta, "D-TA 2");
    let idp = w.anchored(Role::Idp, "IdP");
    let first = w.put_group("eu", &[&dta1], &idp);
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("pat");
    let tbs = ServiceClient::new(&w.url()).unwrap();

    // Provisioned → TbsVerified: the digest is the provisioned one, the anchor verifies.
    let Stage::Provisioned(provisioned) =
        w.provision(&dir, provisioning(&w, "eu"), Some("meter 1"))
    else {
        panic!("a new device starts provisioned")
    };
    let device_key = provisioned.device().public_key();
    let verified = provisioned.verify_tbs(&tbs).unwrap();
    assert_eq!(verified.tbs_anchor().digest(), w.tbs_digest);
    assert!(verified.tbs_anchor().depth() >= 1);

    // → Offered → Broadcast: the device signs its own anchoring transaction.
    let Requested::Offered(offered) = verified.request(&tbs).unwrap() else {
        panic!("a new device gets an offer")
    };
    let broadcast = offered.sign_and_send(&tbs).unwrap();
    let txid = broadcast.txid().unwrap();

    // Not confirmed yet: the device is told so and stays at Broadcast.
    let Poll::NotYet(broadcast, pending) = broadcast.poll(&tbs).unwrap() else {
        panic!("instructions before the anchor confirmed")
    };
    assert_eq!(pending.status, "broadcast");

    // → Enrolled once the test mines the anchor while the device waits.
    let mut enrolled = confirm(&w, &tbs, broadcast);
    let stored = enrolled.instructions().clone();
    assert_eq!(stored.sequence, first);
    let got = &stored.instructions;
    assert_eq!((got.tenant.as_str(), got.group.as_str()), ("acme", "eu"));
    assert_eq!(got.dtas.len(), 1);
    assert_eq!(got.dtas[0].birth_certificate, dta1.digest());
    assert_eq!(got.idp.as_ref().unwrap().birth_certificate, idp.digest());
    assert_eq!((stored.device_anchor.txid, got.device.txid()), (txid, txid));
    assert!(stored.device_anchor.depth >= 1);
    assert_eq!(stored.service_anchors.len(), 2);

    // The state is private, and reloading it gives the same enrolled device.
    assert_eq!(mode(&dir), 0o700);
    for file in [
        "device.key",
        "instruction.key",
        "device-bc.json",
        "state.json",
    ] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    let Stage::Enrolled(reloaded) = open(&dir).unwrap() else {
        panic!("an enrolled device reloads enrolled")
    };
    assert_eq!(reloaded.device().public_key(), device_key);
    assert_eq!(reloaded.instructions(), &stored);

    // Nothing changed: refresh says so. An operator adds a D-TA: refresh stores it.
    assert_eq!(
        enrolled.refresh(&tbs).unwrap(),
        Refreshed::Unchanged { sequence: first }
    );
    let second = w.put_group("eu", &[&dta1, &dta2], &idp);
    assert_eq!(
        enrolled.refresh(&tbs).unwrap(),
        Refreshed::Updated {
            previous: first,
            sequence: second
        }
    );
    assert_eq!(enrolled.instructions().instructions.dtas.len(), 2);
    let Stage::Enrolled(reloaded) = open(&dir).unwrap() else {
        panic!("still enrolled")
    };
    assert_eq!(reloaded.instructions().sequence, second);
    assert_eq!(
        w.requests("/v1/enrolments", "POST", 200),
        1,
        "enrolled once, refreshed without enrolling again"
    );
}

/// Issue 13, attack 8: an operator deletes a device's group and creates one of the same
/// name. Revisions restarting at 1 would leave the device refusing every new instruction
/// ("sequence 1 is below the stored N") and pointing at the old services forever.
#[test]
fn a_group_deleted_and_created_again_still_reaches_its_devices() {
    let w = EnrolmentWorld::start();
    let old_dta = w.anchored(Role::Dta, "old D-TA");
    let new_dta = w.anchored(Role::Dta, "new D-TA");
    let idp = w.anchored(Role::Idp, "IdP");
    w.put_group("eu", &[&old_dta], &idp);
    w.put_group("eu", &[&old_dta], &idp);
    let held = w.put_group("eu", &[&old_dta], &idp);
    let home = tempfile::tempdir().unwrap();
    let mut enrolled = enrolled(&w, &home.path().join("pat"), "eu");
    assert_eq!(enrolled.instructions().sequence, held);

    let (status, body) = w.api.call(
        "DELETE",
        "/v1/tenants/acme/groups/eu",
        Some(&w.tenant_token),
        None,
    );
    assert_eq!(status, 204, "{body}");
    let recreated = w.put_group("eu", &[&new_dta], &idp);
    assert!(recreated > held, "revision {recreated} after {held}");

    let tbs = ServiceClient::new(&w.url()).unwrap();
    assert_eq!(
        enrolled.refresh(&tbs).unwrap(),
        Refreshed::Updated {
            previous: held,
            sequence: recreated
        }
    );
    let dtas = &enrolled.instructions().instructions.dtas;
    assert_eq!(dtas.len(), 1);
    assert_eq!(dtas[0].birth_certificate, new_dta.digest());
}

#[test]
fn a_device_refuses_a_tbs_it_was_not_provisioned_for_and_instructions_older_than_its_own() {
    let w = EnrolmentWorld::start();
    let dta = w.anchored(Role::Dta, "D-TA");
    let idp = w.anchored(Role::Idp, "IdP");
    w.put_group("eu", &[&dta], &idp);
    let home = tempfile::tempdir().unwrap();
    let tbs = ServiceClient::new(&w.url()).unwrap();

    // A TBS whose certificate is not the provisioned one is refused before anything is sent.
    let wrong = Provisioning {
        tbs_digest: Digest::sha256(b"another TBS"),
        ..provisioning(&w, "eu")
    };
    let Stage::Provisioned(device) = w.provision(&home.path().join("wrong"), wrong, None) else {
        panic!("provisioned")
    };
    let error = device.verify_tbs(&tbs).unwrap_err();
    assert!(matches!(error, Error::TbsDigest { .. }), "{error}");
    assert!(error.to_string().contains("provisioned with"), "{error}");
    assert_eq!(w.requests("/v1/enrolments", "POST", 200), 0);

    // A group the tenant does not have: the TBS's error code and message are in the error.
    let Stage::Provisioned(lost) =
        w.provision(&home.path().join("lost"), provisioning(&w, "nowhere"), None)
    else {
        panic!("provisioned")
    };
    let error = lost.verify_tbs(&tbs).unwrap().request(&tbs).unwrap_err();
    assert!(
        matches!(&error, Error::Server { status: 404, code: Some(code), .. } if code == "not_found"),
        "{error}"
    );
    let said = format!(
        "requesting enrolment: {}/v1/enrolments answered 404 not_found: ",
        tbs.base_url()
    );
    assert!(error.to_string().starts_with(&said), "{error}");

    // A device that stored sequence 1000 refuses the TBS's lower one, and keeps its own.
    let dir = home.path().join("pat");
    drop(enrolled(&w, &dir, "eu"));
    let state = dir.join("state.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    json["instructions"]["sequence"] = 1000.into();
    json["instructions"]["instructions"]["revision"] = 1000.into();
    std::fs::write(&state, serde_json::to_vec(&json).unwrap()).unwrap();
    let Stage::Enrolled(mut crafted) = open(&dir).unwrap() else {
        panic!("the crafted state loads")
    };
    let newer = w.put_group("eu", &[&dta], &idp);
    let error = crafted.refresh(&tbs).unwrap_err();
    assert!(
        matches!(error, Error::StaleInstructions { offered, stored: 1000 } if offered == newer),
        "{error}"
    );
    let Stage::Enrolled(kept) = open(&dir).unwrap() else {
        panic!("still enrolled")
    };
    assert_eq!(kept.instructions().sequence, 1000);
}

#[test]
fn a_restarted_device_resumes_waiting_for_instructions_without_a_second_request() {
    let w = EnrolmentWorld::start();
    let dta = w.anchored(Role::Dta, "D-TA");
    let idp = w.anchored(Role::Idp, "IdP");
    w.put_group("eu", &[&dta], &idp);
    let home = tempfile::tempdir().unwrap();
    let tbs = ServiceClient::new(&w.url()).unwrap();
    let offer = |dir: &Path| {
        let Stage::Provisioned(device) = w.provision(dir, provisioning(&w, "eu"), None) else {
            panic!("provisioned")
        };
        match device.verify_tbs(&tbs).unwrap().request(&tbs).unwrap() {
            Requested::Offered(offered) => offered,
            other => panic!("expected an offer, got {other:?}"),
        }
    };

    // Device A stops right after the TBS broadcast its anchor.
    let (a, b) = (home.path().join("a"), home.path().join("b"));
    let txid_a = offer(&a).sign_and_send(&tbs).unwrap().txid();
    // Device B stores its signed anchor, then loses the TBS before the TBS gets it.
    let unreachable = ServiceClient::with_timeout("http://127.0.0.1:1", POLL).unwrap();
    let error = offer(&b).sign_and_send(&unreachable).unwrap_err();
    assert!(matches!(error, Error::Http { .. }), "{error}");
    assert_eq!(w.requests("/v1/enrolments", "POST", 200), 2);
    assert_eq!(w.requests("/v1/enrolments/signed", "POST", 202), 1);

    // Both processes restart: each resumes at Waiting, with its anchor stored.
    let resume = |dir: &Path| match open(dir).unwrap() {
        Stage::Waiting(broadcast) => broadcast,
        other => panic!("expected to resume at broadcast, got {}", other.name()),
    };
    let (resumed_a, resumed_b) = (resume(&a), resume(&b));
    assert_eq!(resumed_a.txid(), txid_a);
    let txid_b = resumed_b.txid();
    let enrolled_a = confirm(&w, &tbs, resumed_a);
    // B's first poll finds the TBS still holding only the offer and sends the signature.
    let wait = WaitOptions {
        timeout: WAIT,
        interval: POLL,
    };
    let tbs_b = tbs.clone();
    let waiting =
        std::thread::spawn(move || enrol(Stage::Waiting(resumed_b), &tbs_b, &wait, |_| {}));
    w.mine_while_waiting("device B to be enrolled", || {
        waiting.is_finished().then_some(())
    });
    let enrolled_b = waiting.join().unwrap().unwrap();

    assert_eq!(Some(enrolled_a.instructions().device_anchor.txid), txid_a);
    assert_eq!(Some(enrolled_b.instructions().device_anchor.txid), txid_b);
    assert_eq!(
        w.requests("/v1/enrolments", "POST", 200),
        2,
        "no device asked to enrol a second time"
    );
    assert_eq!(w.requests("/v1/enrolments/signed", "POST", 202), 2);
}
