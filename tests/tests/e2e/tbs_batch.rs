//! Batch-mode enrolment against a real TBS over HTTP on a real regtest node, with the real
//! device client: devices of a batch-mode group are queued, anchored together under one
//! batch root signed by the TBS key, and each verifies its membership and the root's
//! anchor by SPV; the audit log holds their batch registrations; a reorg that drops the
//! batch's anchor makes the TBS send it again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use milagro_regtest::RegtestControls as _;
use std::path::Path;
use std::time::Duration;

use bitcoin::{absolute::LockTime, transaction::Version, OutPoint, Transaction, TxIn, TxOut};
use milagro_anchor::audit_log::{InclusionProof, TreeHead, TreeSize};
use milagro_anchor::birth_certificate::Role;
use milagro_anchor::digest::Digest;
use milagro_anchor::enrolment::SignedAnchor;
use milagro_anchor::envelope::{InstructionKey, SealedInstructions};
use milagro_anchor::instructions::{DeviceAnchor, Instructions};
use milagro_pat_client::{Enrolled, Provisioning, Requested, ServiceClient, Stage, Waiting};
use milagro_registry::chain::ChainSource as _;
use milagro_tbs::audit::batch_registration_entry;
use milagro_tbs::tenants::model::{GroupId, TenantId};
use milagro_tests::enrolment_world::{EnrolmentWorld, WorldOptions};
use milagro_tests::{spv_headers, wait_until};
use milagro_wire::tbs::tenants::EnrolmentMode;
use rand_core::OsRng;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);

fn world(interval_secs: u32, restartable: bool) -> EnrolmentWorld {
    EnrolmentWorld::start_with(&WorldOptions {
        extra_config: format!(
            "[anchoring]\nbatch_interval_secs = {interval_secs}\n\n[audit]\ncheckpoint_interval_secs = 1\n"
        ),
        restartable,
        http: None,
    })
}

/// Group `fleet` of `acme` in batch mode, with one D-TA and an IdP.
fn batch_group(w: &EnrolmentWorld) {
    let dta = w.anchored(Role::Dta, "D-TA 1");
    let idp = w.anchored(Role::Idp, "IdP");
    w.put_group_in_mode("fleet", EnrolmentMode::Batch, &[&dta], &idp);
}

/// A device provisioned for `fleet` that verified the TBS, then asked to enrol.
fn queued(w: &EnrolmentWorld, dir: &Path) -> Waiting {
    let provisioning = Provisioning {
        tbs_url: w.url(),
        tbs_digest: w.tbs_digest,
        tenant: "acme".into(),
        group: "fleet".into(),
        network: bitcoin::Network::Regtest,
        sources: Default::default(),
    };
    let Stage::Provisioned(device) = w.provision(dir, provisioning, None) else {
        panic!("a new device starts provisioned")
    };
    let tbs = ServiceClient::new(&w.url()).unwrap();
    match device.verify_tbs(&tbs).unwrap().request(&tbs).unwrap() {
        Requested::Queued(waiting) => waiting,
        other => panic!("a batch-mode device is queued, not {other:?}"),
    }
}

/// Waits for every device's instructions while the test mines what the TBS broadcasts.
fn confirm_all(w: &EnrolmentWorld, waiting: Vec<Waiting>) -> Vec<Enrolled> {
    let threads: Vec<_> = waiting
        .into_iter()
        .map(|device| {
            let tbs = ServiceClient::new(&w.url()).unwrap();
            std::thread::spawn(move || device.wait(&tbs, WAIT, POLL, |_| {}))
        })
        .collect();
    w.mine_while_waiting("the devices to get their instructions", || {
        threads.iter().all(|t| t.is_finished()).then_some(())
    });
    threads
        .into_iter()
        .map(|t| {
            t.join()
                .unwrap()
                .expect("a batch member verifies its instructions")
        })
        .collect()
}

fn batch_anchor(enrolled: &Enrolled) -> (bitcoin::Txid, Digest, u64, u64) {
    match &enrolled.instructions().instructions.device {
        DeviceAnchor::Batch {
            txid,
            root,
            membership,
            ..
        } => (
            *txid,
            *root,
            membership.index().get(),
            membership.size().get(),
        ),
        direct => panic!("a batch member is anchored in a batch, not {direct:?}"),
    }
}

#[test]
fn batch_members_are_anchored_under_one_root_and_verify_it_by_spv() {
    let w = world(4, false);
    batch_group(&w);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let waiting: Vec<Waiting> = dirs.iter().map(|d| queued(&w, d.path())).collect();
    for device in &waiting {
        assert!(device.device().is_batched());
        let status = w
            .api
            .ok(&format!("/v1/enrolments/{}", device.device().public_key()));
        assert!(
            ["queued", "batched"].contains(&status["status"].as_str().unwrap()),
            "{status}"
        );
    }

    // A queued device has nothing to sign: a signed transaction is refused, and changes
    // nothing.
    let member = waiting[0].device().public_key();
    let stray = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            ..TxIn::default()
        }],
        output: vec![TxOut::minimal_non_dust(bitcoin::ScriptBuf::new())],
    };
    let signed = SignedAnchor {
        device: member,
        tx: stray,
    };
    let envelope_key = w.tbs.state().identity.envelope_key().public_key();
    let (status, body) = w.api.call(
        "POST",
        "/v1/enrolments/signed",
        None,
        Some(json!({ "envelope": signed.seal(&mut OsRng, &envelope_key).unwrap() })),
    );
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict");

    let enrolled = confirm_all(&w, waiting);
    let anchors: Vec<_> = enrolled.iter().map(batch_anchor).collect();
    let (txid, root, _, size) = anchors[0];
    assert_eq!(
        size, 3,
        "the three devices queued within the interval share one batch"
    );
    let mut indices: Vec<u64> = anchors
        .iter()
        .map(|&(t, r, index, s)| {
            assert_eq!((t, r, s), (txid, root, size));
            index
        })
        .collect();
    indices.sort_unstable();
    assert_eq!(indices, vec![0, 1, 2]);
    for device in &enrolled {
        assert_eq!(device.instructions().device_anchor.txid, txid);
        assert_eq!(device.device().anchor_txid(), Some(txid));
        assert_eq!(device.instructions().service_anchors.len(), 2);
    }

    // On chain: one batch-root record, signed by the TBS key.
    let records = w.api.ok(&format!("/v1/records?txid={txid}"));
    assert_eq!(records["records"][0]["kind"], "batch_root");
    assert_eq!(records["records"][0]["digest"], root.to_string());
    assert_eq!(
        records["records"][0]["signer"],
        w.tbs.state().identity.public_key().to_string()
    );
    assert_eq!(records["records"].as_array().unwrap().len(), 1);

    // The device's progress and a repeated request both report the batch; no second one.
    let device = enrolled[1].device().public_key();
    let status = w.api.ok(&format!("/v1/enrolments/{device}"));
    assert_eq!(status["status"], "confirmed");
    assert_eq!(status["root"], root.to_string());

    // The audit log holds each member's batch registration, provable against an anchored
    // checkpoint.
    let proof: Value = w.mine_while_waiting("a checkpoint covering the registrations", || {
        let (status, body) = w
            .api
            .get(&format!("/v1/audit/registrations/{device}/proof"));
        (status == 200).then_some(body)
    });
    let entry = batch_registration_entry(
        &device,
        &TenantId::new("acme").unwrap(),
        &GroupId::new("fleet").unwrap(),
        &root,
    );
    assert_eq!(proof["entry"], entry.to_string());
    let inclusion: InclusionProof =
        serde_json::from_value(proof["inclusion_proof"].clone()).unwrap();
    let head = TreeHead {
        size: TreeSize::new(proof["tree_size"].as_u64().unwrap()),
        root: proof["root"].as_str().unwrap().parse().unwrap(),
    };
    inclusion.verify(entry.as_bytes(), &head).unwrap();
}

#[test]
fn a_batch_anchor_a_reorg_drops_is_sent_again_and_its_members_follow_it() {
    let mut w = world(1, true);
    batch_group(&w);
    let dir = tempfile::tempdir().unwrap();
    let waiting = queued(&w, dir.path());
    let device = waiting.device().public_key();
    let first = confirm_all(&w, vec![waiting]).pop().unwrap();
    let (txid, root, ..) = batch_anchor(&first);
    let before = w.api.ok(&format!("/v1/enrolments/{device}"));
    let height = before["height"].as_u64().unwrap() as u32;

    // The anchor's block is invalidated and the node restarts without a mempool and
    // without wallet rebroadcasts: only the TBS can bring the batch's transactions back.
    let block = w.node().rpc.block_hash(height).unwrap().unwrap();
    w.node().rpc.invalidate_block(&block).unwrap();
    w.restart_node(&["-persistmempool=0", "-walletbroadcast=0"]);
    for _ in 0..2 {
        w.node().rpc.generate_block(&w.node().miner, &[]).unwrap();
    }
    wait_until("the batch anchor to be sent again", WAIT, || {
        let mempool: Vec<String> = w.node().rpc.call("getrawmempool", &[]).unwrap();
        mempool.contains(&txid.to_string()).then_some(())
    });
    w.mine(1);
    let after = w.mine_while_waiting("the batch to confirm again", || {
        let status = w.api.ok(&format!("/v1/enrolments/{device}"));
        (status["status"] == "confirmed").then_some(status)
    });
    assert!(after["height"].as_u64().unwrap() > u64::from(height));
    assert_eq!(after["root"], root.to_string());

    // The member's instructions now prove the batch at its new height, by SPV.
    let (status, body) = w.api.get(&format!("/v1/enrolments/{device}/instructions"));
    assert_eq!(status, 200, "{body}");
    let sealed: SealedInstructions = serde_json::from_value(body["instructions"].clone()).unwrap();
    let key = std::fs::read_to_string(dir.path().join("instruction.key")).unwrap();
    let key = InstructionKey::from_hex(key.trim()).unwrap();
    let tbs_key = w.tbs.state().identity.public_key();
    let verified = Instructions::open(&key, &tbs_key, &device, &sealed)
        .unwrap()
        .verify(
            first.device().birth_certificate(),
            &tbs_key,
            &spv_headers(&w.api),
        )
        .unwrap();
    assert_eq!(verified.device_anchor().txid(), txid);
    assert_eq!(
        u64::from(verified.device_anchor().height()),
        after["height"].as_u64().unwrap()
    );
}
