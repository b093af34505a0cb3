//! Building and signing anchoring transactions.
//!
//! An anchoring transaction spends one P2WPKH output of the party's own key to exactly two
//! outputs: the `OP_RETURN` payload and a change output back to the same key. The change
//! output is never omitted: Bitcoin Knots rejects "bare datacarrier" transactions, and the
//! change funds the party's next anchor (a BC update or key-rotation notice).
//!
//! The first (and only) input is the party's, so the record's signer and nonce point are
//! read from its witness (see [`crate::record`]). The signature uses an RFC 6979 nonce, so
//! [`anchor_nonce`] re-derives it later from the key and the transaction alone.

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash as _;
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{Amount, FeeRate, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

use crate::keys::{CompressedKey, PublicKey, SecretKey, Signature};
use crate::nonce::{NonceError, NonceSecret};
use crate::payload::Payload;

/// The smallest change a P2WPKH output may carry and still be relayed (dust limit).
pub const P2WPKH_DUST: Amount = Amount::from_sat(294);

/// An upper bound of an anchoring transaction's weight: one P2WPKH input (largest
/// signature), the `OP_RETURN`, and one change output of any standard type.
pub const ANCHOR_WEIGHT_BOUND: bitcoin::Weight = bitcoin::Weight::from_wu(700);

/// The change an exactly-paid anchoring transaction keeps: above every standard output
/// type's dust limit (546 sat for P2PKH, the largest), so any change address will do.
pub const ANCHOR_CHANGE: Amount = Amount::from_sat(546);

/// What one payment must carry to fund exactly one anchoring transaction at `fee_rate`
/// ([`ANCHOR_WEIGHT_BOUND`] worth of fee plus [`ANCHOR_CHANGE`]); `None` on overflow.
pub fn single_anchor_funding(fee_rate: FeeRate) -> Option<Amount> {
    fee_rate
        .fee_wu(ANCHOR_WEIGHT_BOUND)?
        .checked_add(ANCHOR_CHANGE)
}

/// An unspent P2WPKH output of the party's key, used to pay for an anchor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FundingUtxo {
    /// Where the coins are.
    pub outpoint: OutPoint,
    /// How many.
    pub value: Amount,
}

/// A signed anchoring transaction ready to broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorTx {
    /// The transaction.
    pub tx: Transaction,
    /// The fee it pays.
    pub fee: Amount,
}

/// Why an anchoring transaction could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnchorTxError {
    /// The funding output cannot pay the fee and leave change above the dust limit.
    #[error("funding output of {value} cannot pay a fee of {fee} and keep {P2WPKH_DUST} change")]
    InsufficientFunds {
        /// The funding output's value.
        value: Amount,
        /// The fee at the requested rate.
        fee: Amount,
    },
    /// The fee computation overflowed (absurd fee rate).
    #[error("fee rate {0} overflows")]
    FeeOverflow(FeeRate),
    /// The input's sighash could not be computed (input index out of range).
    #[error("cannot compute the signature hash: {0}")]
    Sighash(String),
    /// The transaction's first input is not a P2WPKH spend by this key.
    #[error("the first input is not signed by this key: {0}")]
    NotOurInput(&'static str),
    /// The unsigned transaction could not be wrapped in a PSBT.
    #[error("cannot make a psbt: {0}")]
    Psbt(String),
    /// The nonce could not be re-derived.
    #[error(transparent)]
    Nonce(#[from] NonceError),
}

/// The P2WPKH output script of a key (a [`PublicKey`] or the [`CompressedKey`] a witness
/// carries): `OP_0 <hash160(compressed key)>`, hashed straight from the SEC1 bytes (no
/// round trip through libsecp256k1's point parsing, which an indexer would pay once per
/// record).
pub fn p2wpkh_script(key: impl Into<CompressedKey>) -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::hash(key.into().as_bytes()))
}

/// Builds and signs the anchoring transaction for `payload`.
///
/// `change_to` defaults to the party's own P2WPKH script.
pub fn build_anchor_tx(
    key: &SecretKey,
    funding: &FundingUtxo,
    payload: &Payload,
    fee_rate: FeeRate,
    change_to: Option<ScriptBuf>,
) -> Result<AnchorTx, AnchorTxError> {
    let public = key.public_key();
    let (mut tx, fee) = build_unsigned_anchor_tx(&public, funding, payload, fee_rate, change_to)?;
    let sighash = p2wpkh_sighash(&tx, 0, &public, funding.value)?;
    tx.input[0].witness = p2wpkh_witness(&key.sign_prehash(&sighash), &public);
    Ok(AnchorTx { tx, fee })
}

/// Builds the anchoring transaction for `payload` without signing it: for a signer that is
/// elsewhere (a device signing the PSBT a TBS offers it). The fee is sized for the largest
/// possible signature, so the signed transaction pays at least `fee_rate`.
pub fn build_unsigned_anchor_tx(
    signer: &PublicKey,
    funding: &FundingUtxo,
    payload: &Payload,
    fee_rate: FeeRate,
    change_to: Option<ScriptBuf>,
) -> Result<(Transaction, Amount), AnchorTxError> {
    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: funding.outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
            witness: worst_case_witness(),
        }],
        output: vec![
            TxOut {
                value: Amount::ZERO,
                script_pubkey: payload.to_script(),
            },
            TxOut {
                value: Amount::ZERO,
                script_pubkey: change_to.unwrap_or_else(|| p2wpkh_script(signer)),
            },
        ],
    };
    let fee = fee_rate
        .fee_wu(tx.weight())
        .ok_or(AnchorTxError::FeeOverflow(fee_rate))?;
    let change = funding
        .value
        .checked_sub(fee)
        .filter(|change| *change >= P2WPKH_DUST)
        .ok_or(AnchorTxError::InsufficientFunds {
            value: funding.value,
            fee,
        })?;
    tx.output[1].value = change;
    tx.input[0].witness = Witness::new();
    Ok((tx, fee))
}

/// The BIP 143 `SIGHASH_ALL` digest of input `index` spending `value` from `key`'s P2WPKH.
pub fn p2wpkh_sighash(
    tx: &Transaction,
    index: usize,
    key: &PublicKey,
    value: Amount,
) -> Result<[u8; 32], AnchorTxError> {
    SighashCache::new(tx)
        .p2wpkh_signature_hash(index, &p2wpkh_script(key), value, EcdsaSighashType::All)
        .map(|hash| hash.to_byte_array())
        .map_err(|e| AnchorTxError::Sighash(e.to_string()))
}

/// The P2WPKH witness `[DER ‖ SIGHASH_ALL, compressed key]`.
pub fn p2wpkh_witness(signature: &Signature, key: &PublicKey) -> Witness {
    let mut sig = signature.to_der();
    sig.push(EcdsaSighashType::All as u8);
    let mut witness = Witness::new();
    witness.push(sig);
    witness.push(key.to_sec1());
    witness
}

/// Re-derives the secret nonce of our signature on the first input of `tx`.
///
/// `funding_value` is the value of the output that input spends (BIP 143 signs it). Fails
/// unless `key` made that signature with its RFC 6979 nonce.
pub fn anchor_nonce(
    key: &SecretKey,
    tx: &Transaction,
    funding_value: Amount,
) -> Result<NonceSecret, AnchorTxError> {
    let candidate = crate::record::RecordCandidate::from_tx(tx)
        .map_err(|_| AnchorTxError::NotOurInput("not a milagro record"))?;
    if candidate.claimed_signer() != key.public_key() {
        return Err(AnchorTxError::NotOurInput("signed by another key"));
    }
    let record = crate::record::TxRecord::from_own_tx(tx, funding_value)
        .map_err(|_| AnchorTxError::NotOurInput("not signed for this funding value"))?;
    let sighash = p2wpkh_sighash(tx, 0, &record.signer, funding_value)?;
    Ok(NonceSecret::recompute(key, &sighash, &record.signature)?)
}

/// A witness as large as the real one can be (72-byte DER + sighash byte), for fee sizing.
fn worst_case_witness() -> Witness {
    let mut witness = Witness::new();
    witness.push([0u8; 73]);
    witness.push([0u8; 33]);
    witness
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::nonce::NoncePoint;
    use crate::payload::RecordKind;
    use crate::record::TxRecord;
    use bitcoin::Txid;

    fn key() -> SecretKey {
        SecretKey::from_bytes(&[0x42; 32]).unwrap()
    }

    #[test]
    fn the_p2wpkh_script_is_the_one_bitcoin_derives_from_the_compressed_key() {
        for byte in [1u8, 0x42, 0x7f, 0xfe] {
            let public = SecretKey::from_bytes(&[byte; 32]).unwrap().public_key();
            let expected = ScriptBuf::new_p2wpkh(&public.to_bitcoin().wpubkey_hash());
            assert_eq!(p2wpkh_script(&public), expected);
        }
    }

    #[test]
    fn a_single_anchor_funding_pays_the_fee_and_keeps_the_change_to_any_script() {
        for rate in [1, 2, 25, 1_000] {
            let rate = FeeRate::from_sat_per_vb_u32(rate);
            let funding = FundingUtxo {
                outpoint: OutPoint::new(Txid::from_byte_array([3; 32]), 1),
                value: single_anchor_funding(rate).unwrap(),
            };
            // The largest standard change script: P2TR, 34 bytes.
            let change_to = ScriptBuf::new_p2tr_tweaked(
                bitcoin::key::TweakedPublicKey::dangerous_assume_tweaked(
                    key().public_key().to_bitcoin().0.x_only_public_key().0,
                ),
            );
            let payload = Payload::new(RecordKind::BatchRoot, Digest::sha256(b"root"));
            let anchor =
                build_anchor_tx(&key(), &funding, &payload, rate, Some(change_to)).unwrap();
            assert!(anchor.tx.weight() <= ANCHOR_WEIGHT_BOUND);
            assert!(anchor.tx.output[1].value >= ANCHOR_CHANGE);
        }
        assert!(single_anchor_funding(FeeRate::MAX).is_none());
    }

    fn funding(sats: u64) -> FundingUtxo {
        FundingUtxo {
            outpoint: OutPoint::new(Txid::from_byte_array([7; 32]), 1),
            value: Amount::from_sat(sats),
        }
    }

    fn payload() -> Payload {
        Payload::new(RecordKind::BirthCertificate, Digest::sha256(b"bc"))
    }

    #[test]
    fn builds_a_standard_two_output_transaction_whose_record_names_the_signer() {
        let rate = FeeRate::from_sat_per_vb_u32(2);
        let anchor = build_anchor_tx(&key(), &funding(10_000), &payload(), rate, None).unwrap();
        let tx = &anchor.tx;
        assert_eq!(tx.output.len(), 2);
        assert_eq!(
            tx.output[1].script_pubkey,
            p2wpkh_script(&key().public_key())
        );
        assert_eq!(tx.output[1].value + anchor.fee, Amount::from_sat(10_000));
        // The fee was sized for the worst-case signature, so the real rate is never lower.
        assert!(anchor.fee >= rate.fee_wu(tx.weight()).unwrap());
        assert!(tx.vsize() <= 160, "vsize {}", tx.vsize());
        let record = TxRecord::from_own_tx(tx, Amount::from_sat(10_000)).unwrap();
        assert_eq!(record.payload(), payload());
        assert_eq!(record.signer, key().public_key());
        assert_eq!(record.vout, 0);
    }

    #[test]
    fn the_signature_verifies_under_libsecp256k1() {
        let anchor = build_anchor_tx(
            &key(),
            &funding(5_000),
            &payload(),
            FeeRate::from_sat_per_vb_u32(1),
            None,
        )
        .unwrap();
        let sighash =
            p2wpkh_sighash(&anchor.tx, 0, &key().public_key(), Amount::from_sat(5_000)).unwrap();
        let witness = &anchor.tx.input[0].witness;
        let sig = bitcoin::ecdsa::Signature::from_slice(witness.nth(0).unwrap()).unwrap();
        let secp = bitcoin::secp256k1::Secp256k1::verification_only();
        let msg = bitcoin::secp256k1::Message::from_digest(sighash);
        secp.verify_ecdsa(&msg, &sig.signature, &key().public_key().to_bitcoin().0)
            .unwrap();
    }

    #[test]
    fn the_nonce_is_recoverable_from_the_key_and_the_transaction() {
        let anchor = build_anchor_tx(
            &key(),
            &funding(5_000),
            &payload(),
            FeeRate::from_sat_per_vb_u32(1),
            None,
        )
        .unwrap();
        let nonce = anchor_nonce(&key(), &anchor.tx, Amount::from_sat(5_000)).unwrap();
        let record = TxRecord::from_own_tx(&anchor.tx, Amount::from_sat(5_000)).unwrap();
        assert_eq!(nonce.public(), record.nonce_point().unwrap());
        assert_eq!(
            NoncePoint::from_signature(&record.signature).unwrap(),
            record.nonce_point().unwrap()
        );
        let other = SecretKey::from_bytes(&[0x43; 32]).unwrap();
        assert!(matches!(
            anchor_nonce(&other, &anchor.tx, Amount::from_sat(5_000)),
            Err(AnchorTxError::NotOurInput(_))
        ));
        // A wrong funding value changes the sighash, so the signature is not "ours" for it.
        assert!(anchor_nonce(&key(), &anchor.tx, Amount::from_sat(5_001)).is_err());
    }

    #[test]
    fn too_small_funding_is_refused_with_the_numbers() {
        let err = build_anchor_tx(
            &key(),
            &funding(400),
            &payload(),
            FeeRate::from_sat_per_vb_u32(1),
            None,
        )
        .unwrap_err();
        assert!(
            matches!(err, AnchorTxError::InsufficientFunds { .. }),
            "{err}"
        );
    }
}
