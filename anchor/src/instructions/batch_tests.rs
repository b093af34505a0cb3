//! A device anchored as a batch member: its proof chain (membership, then the TBS-signed
//! root's anchor) and everything that must break it.

use bitcoin::Network;

use super::*;
use crate::audit_log::LeafIndex;
use crate::batch::Batch;
use crate::birth_certificate::{BcFields, Role, Status, VERSION};
use crate::keys::SecretKey;
use crate::payload::Payload;
use crate::proof::tests::{anchor_tx, coinbase_tx, mine, proof_in};
use crate::proof::Headers;
use crate::purpose_keys::PurposeKeys;

fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes(&[byte; 32]).unwrap()
}

fn device_bc(key: &SecretKey) -> BirthCertificate {
    let fields = BcFields {
        version: VERSION,
        role: Role::Pat,
        name: format!("PAT {}", key.public_key()),
        endpoints: vec![],
        created: 1_700_000_000,
        public_key: key.public_key(),
        status: Status::Active,
        previous: None,
        keys: PurposeKeys::none(),
    };
    BirthCertificate::sign(fields, key).unwrap()
}

struct World {
    devices: Vec<BirthCertificate>,
    batch: Batch,
    headers: Headers,
    anchor: DeviceAnchor,
}

/// Five devices in one batch whose root `signer` anchored in block 1.
fn world(signer: &SecretKey, member: usize) -> World {
    let devices: Vec<_> = (10..15).map(|b| device_bc(&key(b))).collect();
    let digests: Vec<_> = devices.iter().map(BirthCertificate::digest).collect();
    let batch = Batch::build(&digests).unwrap();
    let (tx, funding) = anchor_tx(signer, Payload::new(RecordKind::BatchRoot, batch.root()), 7);
    let coinbase = coinbase_tx(7);
    let txids = [coinbase.compute_txid(), tx.compute_txid()];
    let genesis = bitcoin::constants::genesis_block(Network::Regtest).header;
    let block = mine(genesis.block_hash(), &txids);
    let mut headers = Headers::new(Network::Regtest, 0, genesis).unwrap();
    headers.push(block).unwrap();
    let anchor = DeviceAnchor::Batch {
        txid: tx.compute_txid(),
        root: batch.root(),
        membership: batch.proof_for(LeafIndex::new(member as u64)).unwrap(),
        anchor_proof: proof_in(&block, &txids, coinbase, tx, funding).to_json(),
    };
    World {
        devices,
        batch,
        headers,
        anchor,
    }
}

#[test]
fn a_batch_member_verifies_through_its_membership_and_the_tbs_signed_root() {
    let tbs = key(1);
    let w = world(&tbs, 3);
    let verified = w
        .anchor
        .verify(&w.devices[3], &tbs.public_key(), &w.headers)
        .unwrap();
    assert_eq!(verified.digest(), w.batch.root());
    assert_eq!(verified.signer(), tbs.public_key());
    assert_eq!(verified.height(), 1);
    assert_eq!(verified.txid(), w.anchor.txid());
    assert!(w.anchor.is_batched());
}

#[test]
fn another_member_s_proof_or_another_device_is_refused() {
    let tbs = key(1);
    let w = world(&tbs, 3);
    for other in [0, 2, 4] {
        assert!(matches!(
            w.anchor
                .verify(&w.devices[other], &tbs.public_key(), &w.headers),
            Err(InstructionsError::Membership(_))
        ));
    }
    let stranger = device_bc(&key(99));
    assert!(matches!(
        w.anchor.verify(&stranger, &tbs.public_key(), &w.headers),
        Err(InstructionsError::Membership(_))
    ));
}

#[test]
fn a_root_anchored_by_another_key_than_the_tbs_is_refused() {
    let w = world(&key(2), 1);
    assert!(matches!(
        w.anchor
            .verify(&w.devices[1], &key(1).public_key(), &w.headers),
        Err(InstructionsError::Anchor { .. })
    ));
}

#[test]
fn a_forged_root_is_refused_even_with_a_consistent_membership_proof() {
    let tbs = key(1);
    let w = world(&tbs, 0);
    // A batch the TBS never anchored, with a proof that is right for *its* root.
    let digests: Vec<_> = w
        .devices
        .iter()
        .rev()
        .map(BirthCertificate::digest)
        .collect();
    let forged = Batch::build(&digests).unwrap();
    let DeviceAnchor::Batch {
        txid, anchor_proof, ..
    } = w.anchor.clone()
    else {
        unreachable!()
    };
    let anchor = DeviceAnchor::Batch {
        txid,
        root: forged.root(),
        membership: forged.proof_for(LeafIndex::new(4)).unwrap(),
        anchor_proof,
    };
    assert!(matches!(
        anchor.verify(&w.devices[0], &tbs.public_key(), &w.headers),
        Err(InstructionsError::Anchor { .. })
    ));
}

#[test]
fn the_wire_form_is_tagged_by_mode_and_strict() {
    let tbs = key(1);
    let w = world(&tbs, 2);
    let json = serde_json::to_value(&w.anchor).unwrap();
    assert_eq!(json["mode"], "batch");
    assert_eq!(json["membership"]["leaf_index"], 2);
    let back: DeviceAnchor = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, w.anchor);
    let mut extra = json.clone();
    extra["surprise"] = serde_json::json!(1);
    assert!(serde_json::from_value::<DeviceAnchor>(extra).is_err());
    let mut unknown = json;
    unknown["mode"] = serde_json::json!("carrier-pigeon");
    assert!(serde_json::from_value::<DeviceAnchor>(unknown).is_err());
    let direct = serde_json::json!({
        "mode": "direct",
        "txid": w.anchor.txid(),
        "anchor_proof": w.anchor.anchor_proof(),
    });
    assert!(!serde_json::from_value::<DeviceAnchor>(direct)
        .unwrap()
        .is_batched());
}
