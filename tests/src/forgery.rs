//! Attacks on record attribution, built as a miner would build them.
//!
//! [`mine_record_by_shape`] mines a transaction whose first input's witness is
//! `[fake signature, victim key]` and whose `OP_RETURN` carries any Milagro payload: it
//! spends a Taproot output by its script path with a leaf of an unknown version (valid by
//! consensus for any witness, so nobody's signature is needed). The Taproot output's
//! internal key is the victim's x coordinate, and the leaf script is chosen so that the
//! control block (`leaf version | output key parity ‖ internal key`) equals the victim's
//! compressed key byte for byte. A verifier that reads the signer from the witness shape
//! attributes the record to the victim.

use bitcoin::key::Secp256k1;
use bitcoin::secp256k1::XOnlyPublicKey;
use bitcoin::taproot::{LeafVersion, TaprootBuilder};
use bitcoin::transaction::Version;
use bitcoin::{absolute::LockTime, Amount, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
use bitcoin::{BlockHash, Txid};
use milagro_anchor::anchor_tx::p2wpkh_script;
use milagro_anchor::keys::{PublicKey, SecretKey};
use milagro_anchor::payload::Payload;
use milagro_registry::chain::ChainSource as _;
use milagro_regtest::RegtestControls as _;

use crate::TestNode;

/// Mines (with `generateblock`, so no mempool policy applies) a transaction carrying
/// `payload` whose witness names `victim` as its signer, without the victim's key.
/// Returns the transaction's id and its block.
pub fn mine_record_by_shape(
    node: &TestNode,
    victim: &PublicKey,
    payload: Payload,
) -> (Txid, BlockHash) {
    let secp = Secp256k1::new();
    let victim_bytes = victim.to_sec1();
    let parity = victim_bytes[0] & 1;
    let internal = XOnlyPublicKey::from_slice(&victim_bytes[1..]).expect("an x coordinate");
    // The leaf version's low bit is the output key's parity: leaf version 0x02 turns the
    // control block's first byte into 0x02 or 0x03, the victim's key prefix. Grind the
    // leaf (a "signature": DER + SIGHASH_ALL) until the output key's parity matches.
    let version = LeafVersion::from_consensus(0x02).expect("an even, unknown leaf version");
    let attacker = SecretKey::from_bytes(&[0x66; 32]).expect("a key");
    let (script, spend_info) = (0u8..=255)
        .find_map(|salt| {
            let mut fake_signature = attacker.sign_prehash(&[salt; 32]).to_der();
            fake_signature.push(0x01);
            let script = ScriptBuf::from_bytes(fake_signature);
            let info = TaprootBuilder::new()
                .add_leaf_with_ver(0, script.clone(), version)
                .ok()?
                .finalize(&secp, internal)
                .ok()?;
            (info.output_key_parity().to_u8() == parity).then_some((script, info))
        })
        .expect("half of all leaves have the right parity");
    let control = spend_info
        .control_block(&(script.clone(), version))
        .expect("the leaf is in the tree")
        .serialize();
    assert_eq!(
        control, victim_bytes,
        "the control block reads as the victim's key"
    );

    let taproot = ScriptBuf::new_p2tr_tweaked(spend_info.output_key());
    let (outpoint, value) = node
        .rpc
        .wallet_pay_to(&taproot, Amount::from_sat(20_000))
        .expect("the wallet funds the taproot output");
    node.mine(1);
    let change = p2wpkh_script(&attacker.public_key());
    let forged = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::from_slice(&[script.to_bytes(), control]),
        }],
        output: vec![
            TxOut {
                value: Amount::ZERO,
                script_pubkey: payload.to_script(),
            },
            TxOut {
                value: value - Amount::from_sat(1_000),
                script_pubkey: change,
            },
        ],
    };
    let block = node
        .rpc
        .generate_block(&node.miner, std::slice::from_ref(&forged))
        .expect("consensus accepts the script-path spend");
    let txid = forged.compute_txid();
    let mined = node
        .rpc
        .transaction(&txid, &block)
        .expect("the forged tx is in the block");
    assert_eq!(mined.compute_txid(), txid);
    (txid, block)
}
