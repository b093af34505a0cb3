use super::*;
use crate::anchor_tx::{build_anchor_tx, FundingUtxo};
use crate::birth_certificate::{BcFields, Role, Status, VERSION};
use crate::keys::SecretKey;
use crate::payload::Payload;
use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::{Amount, CompactTarget, FeeRate, Network, OutPoint, TxMerkleNode};

fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes(&[byte; 32]).unwrap()
}

fn bc(key: &SecretKey, name: &str) -> BirthCertificate {
    let fields = BcFields {
        version: VERSION,
        role: Role::Idp,
        name: name.into(),
        endpoints: vec!["https://idp.example".into()],
        created: 1_700_000_000,
        public_key: key.public_key(),
        status: Status::Active,
        previous: None,
    };
    BirthCertificate::sign(fields, key).unwrap()
}

fn anchor_tx(key: &SecretKey, payload: Payload, salt: u8) -> Transaction {
    let funding = FundingUtxo {
        outpoint: OutPoint::new(Txid::from_byte_array([salt; 32]), 0),
        value: Amount::from_sat(50_000),
    };
    build_anchor_tx(
        key,
        &funding,
        &payload,
        FeeRate::from_sat_per_vb_u32(1),
        None,
    )
    .unwrap()
    .tx
}

/// Mines a regtest header over `txids` (grinding the nonce; regtest's target is trivial).
pub(crate) fn mine(prev: BlockHash, txids: &[Txid]) -> Header {
    let root = bitcoin::merkle_tree::calculate_root(txids.iter().map(|t| t.to_raw_hash())).unwrap();
    let mut header = Header {
        version: Version::TWO,
        prev_blockhash: prev,
        merkle_root: TxMerkleNode::from_raw_hash(root),
        time: 1_700_000_000,
        bits: CompactTarget::from_consensus(0x207f_ffff),
        nonce: 0,
    };
    while header.validate_pow(header.target()).is_err() {
        header.nonce += 1;
    }
    header
}

struct World {
    chain: Headers,
    proof: AnchorProof,
    bc: BirthCertificate,
}

/// A chain genesis → block 1 (holding the BC anchor among other txs) → `extra` blocks.
fn world(extra: u32) -> World {
    let k = key(1);
    let bc = bc(&k, "IdP");
    let tx = anchor_tx(
        &k,
        Payload::new(RecordKind::BirthCertificate, bc.digest()),
        1,
    );
    let filler = anchor_tx(
        &key(2),
        Payload::new(RecordKind::BatchRoot, Digest::sha256(b"x")),
        2,
    );
    let genesis = bitcoin::constants::genesis_block(Network::Regtest).header;
    let txids = [
        filler.compute_txid(),
        tx.compute_txid(),
        filler.compute_txid(),
    ];
    let block1 = mine(genesis.block_hash(), &txids[..2]);
    let merkle_block = MerkleBlock::from_header_txids_with_predicate(&block1, &txids[..2], |t| {
        *t == tx.compute_txid()
    });
    let mut chain = Headers::new(Network::Regtest, 0, genesis).unwrap();
    chain.push(block1).unwrap();
    for _ in 0..extra {
        let next = mine(chain.tip_hash(), &[filler.compute_txid()]);
        chain.push(next).unwrap();
    }
    World {
        chain,
        proof: AnchorProof::new(tx, merkle_block),
        bc,
    }
}

#[test]
fn a_valid_anchor_verifies_and_reports_its_depth() {
    let w = world(6);
    let verified = w.bc.verify_anchor(&w.proof, &w.chain).unwrap();
    assert_eq!(verified.height(), 1);
    assert_eq!(verified.depth(), 7);
    assert!(verified.is_final());
    assert_eq!(verified.signer(), *w.bc.public_key());
    assert_eq!(verified.digest(), w.bc.digest());
    let shallow = world(0);
    let verified = shallow
        .bc
        .verify_anchor(&shallow.proof, &shallow.chain)
        .unwrap();
    assert_eq!(verified.depth(), 1);
    assert!(!verified.is_final());
}

#[test]
fn a_tampered_certificate_does_not_match_the_anchor() {
    let w = world(0);
    let other = bc(&key(1), "Mallory's IdP");
    assert!(matches!(
        other.verify_anchor(&w.proof, &w.chain),
        Err(ProofError::WrongDigest { .. })
    ));
}

#[test]
fn an_anchor_by_another_key_is_refused() {
    let w = world(0);
    let expected = Expected {
        signer: Some(key(9).public_key()),
        ..Expected::birth_certificate(&w.bc)
    };
    assert!(matches!(
        w.proof.verify(&expected, &w.chain),
        Err(ProofError::WrongSigner { .. })
    ));
}

#[test]
fn a_payload_of_another_kind_is_refused() {
    let w = world(0);
    let expected = Expected {
        kind: RecordKind::AuditLogRoot,
        ..Expected::birth_certificate(&w.bc)
    };
    assert!(matches!(
        w.proof.verify(&expected, &w.chain),
        Err(ProofError::WrongKind { .. })
    ));
}

#[test]
fn a_transaction_not_in_the_block_is_refused() {
    let w = world(0);
    let k = key(1);
    let forged = anchor_tx(
        &k,
        Payload::new(RecordKind::BirthCertificate, w.bc.digest()),
        77,
    );
    let proof = AnchorProof::new(forged, w.proof.merkle_block.clone());
    assert!(matches!(
        w.bc.verify_anchor(&proof, &w.chain),
        Err(ProofError::NotInBlock(_))
    ));
}

#[test]
fn a_header_outside_the_chain_is_refused() {
    let w = world(0);
    let genesis = bitcoin::constants::genesis_block(Network::Regtest).header;
    let other_chain = Headers::new(Network::Regtest, 0, genesis).unwrap();
    assert!(matches!(
        w.bc.verify_anchor(&w.proof, &other_chain),
        Err(ProofError::HeaderNotInChain(_))
    ));
}

#[test]
fn header_chains_refuse_gaps_and_bad_work() {
    let genesis = bitcoin::constants::genesis_block(Network::Regtest).header;
    let mut chain = Headers::new(Network::Regtest, 0, genesis).unwrap();
    let orphan = mine(
        BlockHash::from_byte_array([3; 32]),
        &[Txid::from_byte_array([1; 32])],
    );
    assert!(matches!(
        chain.push(orphan),
        Err(HeaderChainError::Disconnected { height: 1, .. })
    ));
    let mut lazy = mine(genesis.block_hash(), &[Txid::from_byte_array([1; 32])]);
    while lazy.validate_pow(lazy.target()).is_ok() {
        lazy.nonce += 1;
    }
    assert!(matches!(
        chain.push(lazy),
        Err(HeaderChainError::BadProofOfWork(_))
    ));
    // Regtest's easy target is far above mainnet's limit.
    let easy = mine(genesis.block_hash(), &[Txid::from_byte_array([1; 32])]);
    assert!(Headers::new(Network::Bitcoin, 0, easy).is_err());
}

#[test]
fn json_round_trips_and_garbage_is_a_typed_error() {
    let w = world(0);
    let json = w.proof.to_json();
    // Compared in wire form: decoding pads the partial tree's flag bits to whole bytes.
    assert_eq!(AnchorProof::from_json(&json).unwrap().to_json(), json);
    let broken = AnchorProofJson {
        tx: "zz".into(),
        ..json.clone()
    };
    assert!(matches!(
        AnchorProof::from_json(&broken),
        Err(ProofError::Malformed(_))
    ));
    let truncated = AnchorProofJson {
        txoutproof: json.txoutproof[..100].into(),
        ..json
    };
    assert!(matches!(
        AnchorProof::from_json(&truncated),
        Err(ProofError::Malformed(_))
    ));
}
