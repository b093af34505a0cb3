//! The scan is the full decode, only faster: same candidates and coinbase txid on every
//! block, a typed error (never a panic) on bytes that are not one.

use std::sync::LazyLock;

use bitcoin::absolute::LockTime;
use bitcoin::block::Version;
use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::script::PushBytesBuf;
use bitcoin::transaction::Version as TxVersion;
use bitcoin::{
    Amount, CompactTarget, FeeRate, OutPoint, ScriptBuf, Sequence, TxIn, TxMerkleNode, TxOut,
    Witness,
};
use milagro_anchor::anchor_tx::{build_anchor_tx, p2wpkh_script, FundingUtxo};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::SecretKey;
use milagro_anchor::payload::{Payload, RecordKind};
use proptest::prelude::*;

use super::*;

fn outpoint(label: &str) -> OutPoint {
    OutPoint::new(
        Txid::from_byte_array(Digest::sha256(label.as_bytes()).to_bytes()),
        1,
    )
}

fn record(signer: u8, label: &str) -> Transaction {
    let key = SecretKey::from_bytes(&[signer; 32]).unwrap();
    let funding = FundingUtxo {
        outpoint: outpoint(label),
        value: Amount::from_sat(10_000),
    };
    let payload = Payload::new(RecordKind::BatchRoot, Digest::sha256(label.as_bytes()));
    build_anchor_tx(
        &key,
        &funding,
        &payload,
        FeeRate::from_sat_per_vb_u32(1),
        None,
    )
    .unwrap()
    .tx
}

fn op_return(data: &[u8]) -> ScriptBuf {
    ScriptBuf::new_op_return(PushBytesBuf::try_from(data.to_vec()).unwrap())
}

/// A record whose `OP_RETURN` is replaced by `script`.
fn record_with_script(label: &str, script: ScriptBuf) -> Transaction {
    let mut tx = record(1, label);
    tx.output[0].script_pubkey = script;
    tx
}

/// A legacy (non-segwit) payment: a script_sig, no witness.
fn legacy(label: &str, outputs: Vec<ScriptBuf>) -> Transaction {
    Transaction {
        version: TxVersion::ONE,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: outpoint(label),
            script_sig: ScriptBuf::from_bytes(vec![0x47; 72]),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: outputs
            .into_iter()
            .map(|script_pubkey| TxOut {
                value: Amount::from_sat(5_000),
                script_pubkey,
            })
            .collect(),
    }
}

/// A segwit payment with two inputs, one of them with an empty witness.
fn segwit(label: &str) -> Transaction {
    let key = SecretKey::from_bytes(&[9; 32]).unwrap().public_key();
    let mut tx = legacy(label, vec![p2wpkh_script(&key), p2wpkh_script(&key)]);
    tx.input[0].script_sig = ScriptBuf::new();
    tx.input[0].witness = Witness::from_slice(&[vec![0x30; 71], vec![0x02; 33]]);
    tx.input.push(TxIn {
        previous_output: outpoint(&format!("{label} 2")),
        ..Default::default()
    });
    tx
}

fn coinbase(salt: u32, segwit: bool) -> Transaction {
    Transaction {
        version: TxVersion::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(salt.to_le_bytes().to_vec()),
            sequence: Sequence::MAX,
            witness: if segwit {
                Witness::from_slice(&[[0u8; 32]])
            } else {
                Witness::new()
            },
        }],
        output: vec![TxOut {
            value: Amount::from_sat(50),
            script_pubkey: op_return(b"\xaa\x21\xa9\xedcommitment"),
        }],
    }
}

/// Every kind of transaction a block may hold next to records, and records themselves.
static POOL: LazyLock<Vec<Transaction>> = LazyLock::new(|| {
    let payload = Payload::new(RecordKind::BirthCertificate, Digest::sha256(b"p")).to_bytes();
    let mut two_payloads = record(2, "two payloads");
    two_payloads.output.push(two_payloads.output[0].clone());
    let mut legacy_record = record(3, "signed by script_sig");
    legacy_record.input[0].script_sig = ScriptBuf::from_bytes(vec![1, 2]);
    legacy_record.input[0].witness = Witness::new();
    let mut magic_mid_push = payload.to_vec();
    magic_mid_push.insert(0, 0);
    vec![
        record(1, "a"),
        record(2, "b"),
        record(1, "c"),
        legacy(
            "plain",
            vec![ScriptBuf::new_p2sh(&bitcoin::ScriptHash::all_zeros())],
        ),
        segwit("segwit"),
        // Near misses: OP_RETURNs that are not (quite) Milagro payloads.
        record_with_script("foreign", op_return(b"omni protocol data")),
        record_with_script("short", op_return(&payload[..20])),
        record_with_script("magic inside", op_return(&magic_mid_push)),
        record_with_script("no op_return", ScriptBuf::from_bytes(payload.to_vec())),
        legacy(
            "legacy payload",
            vec![Payload::from_bytes(&payload).unwrap().to_script()],
        ),
        legacy_record,
        two_payloads,
        record_with_script("bad version", {
            let mut bad = payload;
            bad[4] = 9;
            op_return(&bad)
        }),
    ]
});

fn block(salt: u32, segwit_coinbase: bool, picks: &[usize]) -> Block {
    let mut txdata = vec![coinbase(salt, segwit_coinbase)];
    txdata.extend(picks.iter().map(|i| POOL[i % POOL.len()].clone()));
    let mut block = Block {
        header: Header {
            version: Version::TWO,
            prev_blockhash: BlockHash::all_zeros(),
            merkle_root: TxMerkleNode::all_zeros(),
            time: salt,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: salt,
        },
        txdata,
    };
    block.header.merkle_root = block.compute_merkle_root().unwrap();
    block
}

#[test]
fn a_mixed_block_yields_exactly_its_records() {
    let block = block(7, true, &(0..POOL.len()).collect::<Vec<_>>());
    let scanned = BlockCandidates::scan(&serialize(&block)).unwrap();
    assert_eq!(scanned, BlockCandidates::from_block(&block));
    let found: Vec<Txid> = scanned.candidates.iter().map(|c| c.txid()).collect();
    let expected: Vec<Txid> = POOL[..3].iter().map(Transaction::compute_txid).collect();
    assert_eq!(found, expected, "the three records and nothing else");
    assert_eq!(scanned.coinbase_txid, block.txdata[0].compute_txid());
    assert_eq!(scanned.block_hash(), block.block_hash());
}

#[test]
fn a_block_of_ordinary_transactions_has_no_candidates() {
    let block = block(1, false, &[3, 4, 3, 4, 5]);
    let scanned = BlockCandidates::scan(&serialize(&block)).unwrap();
    assert!(scanned.candidates.is_empty());
    assert_eq!(scanned, BlockCandidates::from_block(&block));
}

#[test]
fn bad_bytes_are_typed_errors() {
    let bytes = serialize(&block(2, true, &[0, 3]));
    assert!(matches!(
        BlockCandidates::scan(&bytes[..bytes.len() - 1]),
        Err(ScanError::Truncated { .. })
    ));
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        BlockCandidates::scan(&trailing),
        Err(ScanError::TrailingBytes { count: 1 })
    ));
    let mut non_minimal = bytes[..80].to_vec();
    non_minimal.extend([0xfd, 0x02, 0x00]);
    non_minimal.extend(&bytes[81..]);
    assert!(matches!(
        BlockCandidates::scan(&non_minimal),
        Err(ScanError::NonMinimalCompactSize { offset: 80 })
    ));
    assert!(matches!(
        BlockCandidates::scan(&[0; 10]),
        Err(ScanError::Truncated { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_scan_equals_the_full_decode(
        picks in prop::collection::vec(0..64usize, 0..24),
        salt in any::<u32>(),
        segwit_coinbase in any::<bool>(),
    ) {
        let block = block(salt, segwit_coinbase, &picks);
        let scanned = BlockCandidates::scan(&serialize(&block)).unwrap();
        prop_assert_eq!(scanned, BlockCandidates::from_block(&block));
    }

    #[test]
    fn a_damaged_block_scans_as_it_decodes(
        picks in prop::collection::vec(0..64usize, 0..8),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let mut bytes = serialize(&block(3, true, &picks));
        let at = at.index(bytes.len());
        if cut {
            bytes.truncate(at);
        } else {
            bytes[at] = byte;
        }
        match deserialize::<Block>(&bytes) {
            Ok(block) => prop_assert_eq!(
                BlockCandidates::scan(&bytes).unwrap(),
                BlockCandidates::from_block(&block)
            ),
            Err(_) => prop_assert!(BlockCandidates::scan(&bytes).is_err()),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = BlockCandidates::scan(&bytes);
    }
}
