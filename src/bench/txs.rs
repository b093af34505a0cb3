//! Hand-built transactions for the benchmark chain: the funder's split outputs, foreign
//! `OP_RETURN`s and ordinary payments, each spending one P2WPKH output and signed with our
//! own key.
//!
//! Built by hand because the wallet cannot do it: `sendmany` and `send` refuse a repeated
//! address, so with `K` signer keys they make at most `K` outputs per transaction. These
//! are mined with `generateblock`, which checks consensus rules only, so the funding chain
//! may be deeper than the mempool's ancestor limits would allow.

use anyhow::{Context, Result};
use bitcoin::absolute::LockTime;
use bitcoin::script::PushBytesBuf;
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, FeeRate, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Weight, Witness,
};
use milagro_anchor::anchor_tx::{p2wpkh_script, p2wpkh_sighash, p2wpkh_witness, FundingUtxo};
use milagro_anchor::keys::{PublicKey, SecretKey};
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_regtest::RegtestControls as _;
use rand_core::{OsRng, RngCore};

/// Outputs per funding transaction (about 31 kvB: standard size, though nothing relays it).
pub const OUTPUTS_PER_FUNDING_TX: usize = 1_000;
/// What each funding output holds: an anchor fee at 1 sat/vB plus change above dust.
const FUNDING_VALUE: Amount = Amount::from_sat(2_000);

/// Has the wallet pay a fresh funder key (mined at once), then splits that output into one
/// [`FUNDING_VALUE`] output per owner, in order; returns the transactions and the outputs.
pub fn fund(
    node: &BitcoindRpc,
    miner: &str,
    owners: &[PublicKey],
) -> Result<(Vec<Transaction>, Vec<FundingUtxo>)> {
    let funder = SecretKey::generate(&mut OsRng);
    let funder_script = p2wpkh_script(&funder.public_key());
    let count = u64::try_from(owners.len())?;
    // Outputs plus a generous fee budget (about 31 vB per output at 1 sat/vB).
    let total = FUNDING_VALUE
        .checked_mul(count)
        .and_then(|v| v.checked_add(Amount::from_sat(100 * count + 100_000)))
        .context("funding amount overflows")?;
    let (outpoint, value) = node
        .wallet_pay_to(&funder_script, total)
        .context("the node wallet cannot fund the benchmark (try fewer --records)")?;
    node.generate_to_address(1, miner)?;
    let mut previous = FundingUtxo { outpoint, value };
    let fee_rate = FeeRate::from_sat_per_vb_u32(1);
    let mut txs = Vec::new();
    let mut utxos = Vec::with_capacity(owners.len());
    for chunk in owners.chunks(OUTPUTS_PER_FUNDING_TX) {
        let mut output: Vec<TxOut> = chunk
            .iter()
            .map(|owner| TxOut {
                value: FUNDING_VALUE,
                script_pubkey: p2wpkh_script(owner),
            })
            .collect();
        output.push(TxOut {
            value: Amount::ZERO,
            script_pubkey: funder_script.clone(),
        });
        let mut tx = spend(previous.outpoint, output);
        // The weight without a witness, plus a worst-case P2WPKH witness (110 WU).
        let fee = fee_rate
            .fee_wu(tx.weight() + Weight::from_wu(110))
            .context("fee overflows")?;
        let paid = FUNDING_VALUE
            .checked_mul(u64::try_from(chunk.len())?)
            .and_then(|v| v.checked_add(fee))
            .context("funding amount overflows")?;
        let change = previous
            .value
            .checked_sub(paid)
            .context("the funder ran out of coins")?;
        if let Some(last) = tx.output.last_mut() {
            last.value = change;
        }
        sign_p2wpkh(&mut tx, &funder, previous.value)?;
        let txid = tx.compute_txid();
        for vout in 0..chunk.len() {
            utxos.push(FundingUtxo {
                outpoint: OutPoint::new(txid, u32::try_from(vout)?),
                value: FUNDING_VALUE,
            });
        }
        previous = FundingUtxo {
            outpoint: OutPoint::new(txid, u32::try_from(chunk.len())?),
            value: change,
        };
        txs.push(tx);
    }
    Ok((txs, utxos))
}

/// A transaction with an `OP_RETURN` that is not a Milagro payload (40 random bytes).
pub fn foreign_op_return(key: &SecretKey, utxo: &FundingUtxo) -> Result<Transaction> {
    let mut data = [0u8; 40];
    OsRng.fill_bytes(&mut data);
    data[..4].copy_from_slice(b"FRGN");
    let push = PushBytesBuf::try_from(data.to_vec())?;
    let change = utxo
        .value
        .checked_sub(Amount::from_sat(300))
        .context("funding output too small")?;
    let mut tx = spend(
        utxo.outpoint,
        vec![
            TxOut {
                value: Amount::ZERO,
                script_pubkey: ScriptBuf::new_op_return(push),
            },
            TxOut {
                value: change,
                script_pubkey: p2wpkh_script(&key.public_key()),
            },
        ],
    );
    sign_p2wpkh(&mut tx, key, utxo.value)?;
    Ok(tx)
}

/// An ordinary payment: one P2WPKH input, two P2WPKH outputs (pay and change), about
/// 222 bytes like most of a busy chain's transactions. Not a record: no `OP_RETURN`.
pub fn ordinary_payment(
    key: &SecretKey,
    payee: &ScriptBuf,
    utxo: &FundingUtxo,
) -> Result<Transaction> {
    // At 1 sat/vB a 141 vB payment; both outputs stay above the 294-sat dust limit.
    let fee = Amount::from_sat(200);
    let rest = utxo
        .value
        .checked_sub(fee)
        .context("funding output too small")?;
    let pay = Amount::from_sat(rest.to_sat() / 2);
    let mut tx = spend(
        utxo.outpoint,
        vec![
            TxOut {
                value: pay,
                script_pubkey: payee.clone(),
            },
            TxOut {
                value: rest.checked_sub(pay).context("change underflows")?,
                script_pubkey: p2wpkh_script(&key.public_key()),
            },
        ],
    );
    sign_p2wpkh(&mut tx, key, utxo.value)?;
    Ok(tx)
}

fn spend(previous_output: OutPoint, output: Vec<TxOut>) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: Witness::new(),
        }],
        output,
    }
}

fn sign_p2wpkh(tx: &mut Transaction, key: &SecretKey, value: Amount) -> Result<()> {
    let public = key.public_key();
    let sighash = p2wpkh_sighash(tx, 0, &public, value)?;
    let witness = p2wpkh_witness(&key.sign_prehash(&sighash), &public);
    let input = tx.input.first_mut().context("no input to sign")?;
    input.witness = witness;
    Ok(())
}
