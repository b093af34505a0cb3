//! Anchoring end to end on a real regtest `bitcoind`: anchor → mine → sync → verify.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bitcoin::Network;
use milagro_anchor::birth_certificate::Role;
use milagro_anchor::digest::Digest;
use milagro_anchor::payload::{Payload, RecordKind};
use milagro_anchor::proof::ProofError;
use milagro_registry::follower::Follower;
use milagro_registry::proofs::{anchor_proof, headers_from};
use milagro_registry::redb_store::RedbStore;
use milagro_registry::store::RecordStore;
use milagro_regtest::RegtestControls as _;
use milagro_tests::{party, TestNode};

#[test]
fn an_anchored_birth_certificate_is_indexed_and_verifies_by_spv() {
    let node = TestNode::start();
    let (key, bc) = party(Role::Idp, "IdP");
    let txid = node.anchor_bc(&key, &bc);
    node.mine(3);

    let db = tempfile::tempdir().unwrap();
    let follower = Follower::new(&node.rpc, RedbStore::open(db.path()).unwrap(), 0);
    follower.sync(100, |_| {}).unwrap();
    let records = follower.store().by_digest(&bc.digest()).unwrap();
    assert_eq!(records.len(), 1);
    let record = records[0];
    assert_eq!(record.txid, txid);
    assert_eq!(record.signer, key.public_key());
    assert_eq!(record.height, 102);
    assert_eq!(follower.store().by_txid(&txid).unwrap(), records);
    assert_eq!(
        follower
            .store()
            .by_signer(&key.public_key().compressed())
            .unwrap(),
        records
    );

    let proof = anchor_proof(&node.rpc, &record).unwrap();
    let headers = headers_from(&node.rpc, Network::Regtest, record.height).unwrap();
    let verified = bc.verify_anchor(&proof, &headers).unwrap();
    assert_eq!((verified.height(), verified.depth()), (102, 3));
    assert_eq!(verified.txid(), txid);
    assert_eq!(Some(verified.nonce_point()), record.nonce_point());

    // The proof is self-contained: its JSON form verifies the same way.
    let again = milagro_anchor::proof::AnchorProof::from_json(&proof.to_json()).unwrap();
    assert_eq!(bc.verify_anchor(&again, &headers).unwrap(), verified);
}

#[test]
fn verification_refuses_a_tampered_certificate_a_wrong_signer_and_another_kind() {
    let node = TestNode::start();
    let (key, bc) = party(Role::Dta, "D-TA 1");
    let (mallory, _) = party(Role::Pat, "Mallory");
    // Mallory anchors the D-TA's digest with her own key, and the D-TA anchors its digest
    // once as a certificate and once under another record kind.
    node.anchor(
        &mallory,
        Payload::new(RecordKind::BirthCertificate, bc.digest()),
    );
    node.anchor(&key, Payload::new(RecordKind::AuditLogRoot, bc.digest()));
    node.anchor_bc(&key, &bc);
    node.mine(1);

    let db = tempfile::tempdir().unwrap();
    let follower = Follower::new(&node.rpc, RedbStore::open(db.path()).unwrap(), 0);
    follower.sync(100, |_| {}).unwrap();
    let records = follower.store().by_digest(&bc.digest()).unwrap();
    assert_eq!(records.len(), 3);
    let headers = headers_from(&node.rpc, Network::Regtest, 102).unwrap();
    let mut outcomes = Vec::new();
    for record in &records {
        let proof = anchor_proof(&node.rpc, record).unwrap();
        outcomes.push(bc.verify_anchor(&proof, &headers).map(|v| v.signer()));
    }
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Ok(key.public_key()))
            .count(),
        1
    );
    assert!(outcomes
        .iter()
        .any(|o| matches!(o, Err(ProofError::WrongSigner { .. }))));
    assert!(outcomes
        .iter()
        .any(|o| matches!(o, Err(ProofError::WrongKind { .. }))));

    // A certificate with one field changed no longer matches the genuine anchor.
    let genuine = records
        .iter()
        .find(|r| r.signer == key.public_key() && r.kind == RecordKind::BirthCertificate)
        .unwrap();
    let proof = anchor_proof(&node.rpc, genuine).unwrap();
    let mut fields = bc.fields().clone();
    fields.name = "D-TA 1 (evil twin)".into();
    let tampered = milagro_anchor::birth_certificate::BirthCertificate::sign(fields, &key).unwrap();
    assert!(matches!(
        tampered.verify_anchor(&proof, &headers),
        Err(ProofError::WrongDigest { .. })
    ));
}

#[test]
fn a_reorg_removes_the_record_and_re_mining_restores_it() {
    let node = TestNode::start();
    let (key, bc) = party(Role::Tbs, "TBS");
    node.anchor_bc(&key, &bc);
    let anchored_in = node.mine(2)[0];

    let db = tempfile::tempdir().unwrap();
    let follower = Follower::new(&node.rpc, RedbStore::open(db.path()).unwrap(), 0);
    follower.sync(100, |_| {}).unwrap();
    assert_eq!(follower.store().by_digest(&bc.digest()).unwrap().len(), 1);

    // 101 - 102x - 103   becomes   101 - 102' - 103' - 104'  (x back in the mempool)
    node.rpc.invalidate_block(&anchored_in).unwrap();
    for _ in 0..3 {
        node.rpc.generate_block(&node.miner, &[]).unwrap();
    }
    let report = follower.sync(100, |_| {}).unwrap();
    assert_eq!(report.rolled_back_from, Some(102));
    assert!(follower.store().by_digest(&bc.digest()).unwrap().is_empty());
    assert_eq!(follower.store().record_count().unwrap(), 0);

    node.mine(1);
    follower.sync(100, |_| {}).unwrap();
    let records = follower.store().by_digest(&bc.digest()).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].height, 105);
    let proof = anchor_proof(&node.rpc, &records[0]).unwrap();
    let headers = headers_from(&node.rpc, Network::Regtest, 105).unwrap();
    assert!(bc.verify_anchor(&proof, &headers).is_ok());
}

#[test]
fn a_registry_restarted_mid_sync_loses_nothing_and_duplicates_nothing() {
    let node = TestNode::start();
    let mut digests = Vec::new();
    for i in 0..30 {
        let (key, bc) = party(Role::Pat, &format!("device {i}"));
        node.anchor_bc(&key, &bc);
        node.mine(1);
        digests.push(bc.digest());
    }
    let db = tempfile::tempdir().unwrap();
    {
        let follower = Follower::new(&node.rpc, RedbStore::open(db.path()).unwrap(), 0);
        follower.step(115).unwrap();
        let partial = follower.store().record_count().unwrap();
        assert!(partial > 0 && partial < 30, "{partial}");
    }
    let follower = Follower::new(&node.rpc, RedbStore::open(db.path()).unwrap(), 0);
    follower.sync(7, |_| {}).unwrap();
    assert_eq!(follower.store().record_count().unwrap(), 30);
    for digest in &digests {
        assert_eq!(follower.store().by_digest(digest).unwrap().len(), 1);
    }
}

#[test]
fn foreign_op_returns_are_ignored() {
    let node = TestNode::start();
    let foreign: [&[u8]; 5] = [
        b"omni\0\0\0\0\0\0\0\x1f",
        &[0x42; 32],
        b"MLGR\x01\x01too short",
        b"MLGR\x09\x01aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        b"\x6a\x6a\x6a",
    ];
    for data in foreign {
        let raw: String = node
            .rpc
            .call(
                "createrawtransaction",
                &[
                    serde_json::json!([]),
                    serde_json::json!([{ "data": hex(data) }]),
                ],
            )
            .unwrap();
        let funded: serde_json::Value = node
            .rpc
            .call("fundrawtransaction", &[serde_json::json!(raw)])
            .unwrap();
        let signed: serde_json::Value = node
            .rpc
            .call("signrawtransactionwithwallet", &[funded["hex"].clone()])
            .unwrap();
        let _: String = node
            .rpc
            .call("sendrawtransaction", &[signed["hex"].clone()])
            .unwrap();
    }
    let (key, bc) = party(Role::Idp, "IdP");
    node.anchor_bc(&key, &bc);
    node.mine(1);

    let db = tempfile::tempdir().unwrap();
    let follower = Follower::new(&node.rpc, RedbStore::open(db.path()).unwrap(), 0);
    follower.sync(100, |_| {}).unwrap();
    assert_eq!(follower.store().record_count().unwrap(), 1);
    assert_eq!(follower.store().by_digest(&bc.digest()).unwrap().len(), 1);
    assert!(follower
        .store()
        .by_digest(&Digest::from_bytes([0x42; 32]))
        .unwrap()
        .is_empty());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
