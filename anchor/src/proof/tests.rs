use super::*;
use crate::anchor_tx::{build_anchor_tx, FundingUtxo};
use crate::birth_certificate::{BcFields, Role, Status, VERSION};
use crate::keys::SecretKey;
use crate::payload::Payload;
use crate::purpose_keys::PurposeKeys;
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
        keys: PurposeKeys::derive(Role::Idp, key).unwrap(),
    };
    BirthCertificate::sign(fields, key).unwrap()
}

/// A transaction paying 50,000 sat to `key`'s P2WPKH (its input is made up: only its txid
/// and output matter to a verifier).
pub(crate) fn funding_tx(key: &SecretKey, salt: u8) -> Transaction {
    Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![bitcoin::TxIn {
            previous_output: OutPoint::new(Txid::from_byte_array([salt; 32]), 0),
            ..Default::default()
        }],
        output: vec![bitcoin::TxOut {
            value: Amount::from_sat(50_000),
            script_pubkey: crate::anchor_tx::p2wpkh_script(&key.public_key()),
        }],
    }
}

/// A coinbase transaction (one input spending the null outpoint).
pub(crate) fn coinbase_tx(salt: u8) -> Transaction {
    Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![bitcoin::TxIn {
            previous_output: OutPoint::null(),
            script_sig: bitcoin::ScriptBuf::from_bytes(vec![0x01, salt, 0x51]),
            ..Default::default()
        }],
        output: vec![bitcoin::TxOut {
            value: Amount::from_sat(5_000_000_000),
            script_pubkey: bitcoin::ScriptBuf::new_op_return([salt]),
        }],
    }
}

/// An anchoring transaction signed by `key`, and the funding transaction it spends.
pub(crate) fn anchor_tx(key: &SecretKey, payload: Payload, salt: u8) -> (Transaction, Transaction) {
    let funding_tx = funding_tx(key, salt);
    let funding = FundingUtxo {
        outpoint: OutPoint::new(funding_tx.compute_txid(), 0),
        value: funding_tx.output[0].value,
    };
    let tx = build_anchor_tx(
        key,
        &funding,
        &payload,
        FeeRate::from_sat_per_vb_u32(1),
        None,
    )
    .unwrap()
    .tx;
    (tx, funding_tx)
}

/// Mines a regtest header over `txids` (grinding the nonce; regtest's target is trivial).
pub(crate) fn mine(prev: BlockHash, txids: &[Txid]) -> Header {
    let root = bitcoin::merkle_tree::calculate_root(txids.iter().map(|t| t.to_raw_hash())).unwrap();
    mine_root(prev, TxMerkleNode::from_raw_hash(root))
}

/// Mines a regtest header committing to `merkle_root`, each a second after the last
/// (so every chain of them passes the median-time-past rule).
pub(crate) fn mine_root(prev: BlockHash, merkle_root: TxMerkleNode) -> Header {
    static CLOCK: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1_700_000_000);
    let mut header = Header {
        version: Version::TWO,
        prev_blockhash: prev,
        merkle_root,
        time: CLOCK.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        bits: CompactTarget::from_consensus(0x207f_ffff),
        nonce: 0,
    };
    while header.validate_pow(header.target()).is_err() {
        header.nonce += 1;
    }
    header
}

/// A proof of `tx` in a block of `txids`, whose first is `coinbase`'s.
pub(crate) fn proof_in(
    header: &Header,
    txids: &[Txid],
    coinbase: Transaction,
    tx: Transaction,
    funding_tx: Transaction,
) -> AnchorProof {
    let wanted = [coinbase.compute_txid(), tx.compute_txid()];
    let merkle_block =
        MerkleBlock::from_header_txids_with_predicate(header, txids, |t| wanted.contains(t));
    AnchorProof::new(tx, funding_tx, coinbase, merkle_block)
}

struct World {
    chain: Headers,
    proof: AnchorProof,
    bc: BirthCertificate,
}

/// A chain genesis → block 1 (coinbase, the BC anchor, another tx) → `extra` blocks.
fn world(extra: u32) -> World {
    let k = key(1);
    let bc = bc(&k, "IdP");
    let (tx, funding) = anchor_tx(
        &k,
        Payload::new(RecordKind::BirthCertificate, bc.digest()),
        1,
    );
    let (filler, _) = anchor_tx(
        &key(2),
        Payload::new(RecordKind::BatchRoot, Digest::sha256(b"x")),
        2,
    );
    let coinbase = coinbase_tx(1);
    let genesis = bitcoin::constants::genesis_block(Network::Regtest).header;
    let txids = [
        coinbase.compute_txid(),
        tx.compute_txid(),
        filler.compute_txid(),
    ];
    let block1 = mine(genesis.block_hash(), &txids);
    let mut chain = Headers::new(Network::Regtest, 0, genesis).unwrap();
    chain.push(block1).unwrap();
    for _ in 0..extra {
        let next = mine(chain.tip_hash(), &[filler.compute_txid()]);
        chain.push(next).unwrap();
    }
    World {
        chain,
        proof: proof_in(&block1, &txids, coinbase, tx, funding),
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
    let (forged, funding) = anchor_tx(
        &k,
        Payload::new(RecordKind::BirthCertificate, w.bc.digest()),
        77,
    );
    let proof = AnchorProof::new(
        forged,
        funding,
        w.proof.coinbase_tx.clone(),
        w.proof.merkle_block.clone(),
    );
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

/// The victim's key named as signer of an input that spends something else (here a
/// Taproot output: a script-path spend with an unknown leaf version is valid for any
/// witness, so a miner can put `[fake signature, victim key]` there).
#[test]
fn a_record_whose_input_spends_another_output_than_the_signers_is_refused() {
    let w = world(0);
    let victim = key(1);
    let (mut tx, mut funding) = anchor_tx(
        &victim,
        Payload::new(RecordKind::BirthCertificate, w.bc.digest()),
        5,
    );
    let someone = key(8).public_key().to_bitcoin().0.x_only_public_key().0;
    funding.output[0].script_pubkey = bitcoin::ScriptBuf::new_p2tr_tweaked(
        bitcoin::key::TweakedPublicKey::dangerous_assume_tweaked(someone),
    );
    tx.input[0].previous_output = OutPoint::new(funding.compute_txid(), 0);
    assert!(matches!(
        crate::record::TxRecord::from_tx(&tx, &funding),
        Err(NotARecord::NotTheKeysOutput { .. })
    ));
    // The same witness over the right output but another value: the signature fails.
    let (tx, mut funding) = anchor_tx(
        &victim,
        Payload::new(RecordKind::BirthCertificate, w.bc.digest()),
        6,
    );
    funding.output[0].value = Amount::from_sat(50_001);
    let mut tx = tx;
    tx.input[0].previous_output = OutPoint::new(funding.compute_txid(), 0);
    assert!(matches!(
        crate::record::TxRecord::from_tx(&tx, &funding),
        Err(NotARecord::BadSignature(_))
    ));
}

#[test]
fn a_funding_transaction_that_is_not_the_spent_one_is_refused() {
    let w = world(0);
    let proof = AnchorProof::new(
        w.proof.tx.clone(),
        funding_tx(&key(1), 99),
        w.proof.coinbase_tx.clone(),
        w.proof.merkle_block.clone(),
    );
    assert!(matches!(
        w.bc.verify_anchor(&proof, &w.chain),
        Err(ProofError::NotARecord(NotARecord::WrongFundingTx { .. }))
    ));
}

#[test]
fn version_one_proofs_are_refused_with_the_version() {
    let w = world(0);
    let v1 = serde_json::json!({
        "tx": w.proof.to_json().tx,
        "txoutproof": w.proof.to_json().txoutproof,
    });
    let json: AnchorProofJson = serde_json::from_value(v1).unwrap();
    assert_eq!(
        AnchorProof::from_json(&json),
        Err(ProofError::UnsupportedVersion(1))
    );
}

#[test]
fn a_proof_without_the_coinbase_as_first_leaf_is_refused() {
    let w = world(0);
    let not_a_coinbase = AnchorProof::new(
        w.proof.tx.clone(),
        w.proof.funding_tx.clone(),
        w.proof.funding_tx.clone(),
        w.proof.merkle_block.clone(),
    );
    assert!(matches!(
        w.bc.verify_anchor(&not_a_coinbase, &w.chain),
        Err(ProofError::DepthNotPinned(_))
    ));
    let another_coinbase = AnchorProof::new(
        w.proof.tx.clone(),
        w.proof.funding_tx.clone(),
        coinbase_tx(9),
        w.proof.merkle_block.clone(),
    );
    assert!(matches!(
        w.bc.verify_anchor(&another_coinbase, &w.chain),
        Err(ProofError::DepthNotPinned(_))
    ));
}

/// CVE-2017-12842: a block whose second transaction is 64 bytes, `fake txid ‖ other`, has
/// the same Merkle root as a tree one level deeper in which the fake record is a leaf. A
/// header does not commit to the transaction count, so the inflated partial tree verifies
/// against it; only the coinbase pinned at leaf 0 tells the depths apart.
#[test]
fn a_fake_leaf_under_a_mined_64_byte_transaction_is_refused() {
    use bitcoin::hashes::sha256d;
    let victim = key(1);
    let bc = bc(&victim, "IdP");
    let (fake, funding) = anchor_tx(
        &victim,
        Payload::new(RecordKind::BirthCertificate, bc.digest()),
        3,
    );
    let other = [0x5a; 32];
    // The txid of the mined 64-byte transaction is the inner node over (fake, other).
    let mut sixty_four = fake.compute_txid().to_byte_array().to_vec();
    sixty_four.extend_from_slice(&other);
    let mined_64 = Txid::from_raw_hash(sha256d::Hash::hash(&sixty_four));
    let coinbase = coinbase_tx(4);
    let genesis = bitcoin::constants::genesis_block(Network::Regtest).header;
    let block = mine(genesis.block_hash(), &[coinbase.compute_txid(), mined_64]);
    let chain = Headers::from_headers(Network::Regtest, 0, [genesis, block]).unwrap();

    // The inflated tree: 4 "transactions", the left half given as the coinbase's hash.
    let inflated = |match_coinbase: bool| -> MerkleBlock {
        let mut pmt = 4u32.to_le_bytes().to_vec();
        // Pre-order flags, least significant bit first.
        let (hashes, bits): (Vec<[u8; 32]>, u8) = if match_coinbase {
            // root 1, node(1,0) 1, leaf 0 1 (the coinbase), leaf 1 0, node(1,1) 1,
            // leaf 2 1 (the fake), leaf 3 0.
            let cb = coinbase.compute_txid().to_byte_array();
            let hashes = vec![cb, [0x11; 32], fake.compute_txid().to_byte_array(), other];
            (hashes, 0b0011_0111)
        } else {
            // root 1, node(1,0) 0 (given: the coinbase's hash), node(1,1) 1, leaf 2 1
            // (the fake), leaf 3 0.
            let cb = coinbase.compute_txid().to_byte_array();
            (
                vec![cb, fake.compute_txid().to_byte_array(), other],
                0b0000_1101,
            )
        };
        pmt.push(u8::try_from(hashes.len()).unwrap());
        for hash in &hashes {
            pmt.extend_from_slice(hash);
        }
        pmt.extend([1u8, bits]);
        let mut bytes = bitcoin::consensus::encode::serialize(&block);
        bytes.extend(pmt);
        bitcoin::consensus::encode::deserialize(&bytes).unwrap()
    };

    // The attack works on the tree alone: the fake leaf "is in" the header's block.
    let mut matches = Vec::new();
    let mut indexes = Vec::new();
    inflated(false)
        .extract_matches(&mut matches, &mut indexes)
        .unwrap();
    assert_eq!(matches, vec![fake.compute_txid()]);
    // The verifier refuses it: no coinbase at leaf 0 of that tree ...
    let proof = AnchorProof::new(
        fake.clone(),
        funding.clone(),
        coinbase.clone(),
        inflated(false),
    );
    assert!(matches!(
        bc.verify_anchor(&proof, &chain),
        Err(ProofError::DepthNotPinned(_))
    ));
    // ... and a tree that claims the coinbase at leaf 0 no longer reaches the root.
    let proof = AnchorProof::new(fake.clone(), funding, coinbase.clone(), inflated(true));
    assert!(matches!(
        bc.verify_anchor(&proof, &chain),
        Err(ProofError::NotInBlock(_))
    ));
}

/// Which field of a proof's wire form a mutation hits.
fn field(json: &mut AnchorProofJson, which: u8) -> &mut String {
    match which % 4 {
        0 => &mut json.tx,
        1 => &mut json.funding_tx,
        2 => &mut json.coinbase_tx,
        _ => &mut json.txoutproof,
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Any byte of any part of a valid proof changed (in its hex), or any part cut short:
    /// parsing and verifying never panic, and the proof never verifies for the same
    /// certificate unless the change left it meaning the same (decoding normalises the
    /// partial tree's padding bits, so a flipped padding bit is no change).
    #[test]
    fn a_mutated_proof_is_a_typed_error_never_a_panic(
        which in 0u8..4,
        at in proptest::prelude::any::<proptest::sample::Index>(),
        nibble in 0u8..16,
        cut in proptest::prelude::any::<bool>(),
    ) {
        let w = world(0);
        let original = w.proof.to_json();
        let mut json = original.clone();
        let text = field(&mut json, which);
        let i = at.index(text.len());
        if cut {
            text.truncate(i);
        } else {
            let digit = char::from_digit(u32::from(nibble), 16).unwrap();
            text.replace_range(i..=i, &digit.to_string());
        }
        if let Ok(proof) = AnchorProof::from_json(&json) {
            if let Ok(anchor) = w.bc.verify_anchor(&proof, &w.chain) {
                // Verified: the change must have left the meaning intact.
                proptest::prop_assert_eq!(anchor.txid(), w.proof.tx().compute_txid());
                proptest::prop_assert_eq!(proof.tx(), w.proof.tx());
                proptest::prop_assert_eq!(proof.merkle_block.header, w.proof.merkle_block.header);
            }
        }
    }

    /// Arbitrary bytes as any part of a proof: a typed error, never a panic.
    #[test]
    fn arbitrary_hex_in_a_proof_is_a_typed_error(
        which in 0u8..4,
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
    ) {
        let w = world(0);
        let mut json = w.proof.to_json();
        *field(&mut json, which) = hex::encode(&bytes);
        if let Ok(proof) = AnchorProof::from_json(&json) {
            proptest::prop_assert!(w.bc.verify_anchor(&proof, &w.chain).is_err());
        }
    }
}
