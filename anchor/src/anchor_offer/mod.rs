//! The anchoring transaction a TBS offers a device, and the checks on both sides.
//!
//! A device (PAT) has a key but no coins. The TBS pays a small output to the device's
//! P2WPKH key (the *funding* transaction, from the TBS wallet) and offers, as a PSBT, the
//! anchoring transaction that spends it: input 0 is the funding output, output 0 the
//! device's Birth Certificate payload, output 1 change back to the TBS. The device checks
//! the offer ([`AnchorOffer::check`]: its own key, its own digest, a bounded fee) and signs
//! input 0 with its RFC 6979 nonce, so the device's own signature lands on chain (ECDH over
//! Bitcoin needs exactly that). The TBS then checks that the signed transaction is the one
//! it offered and that the signature is valid ([`AnchorOffer::accept`]) before it
//! broadcasts the funding and the anchor together.
//!
//! The offer travels to the device sealed under its instruction key ([`OfferTerms`],
//! [`SealedOffer`](crate::envelope::SealedOffer)), with the funding outpoint and the change
//! script the TBS meant and the offer's expiry: nobody else can read it, and the device
//! signs only a transaction that spends exactly that outpoint and pays exactly that change
//! ([`OfferTerms::check`]).

use bitcoin::psbt::Psbt;
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxOut};

use crate::anchor_tx::{
    build_unsigned_anchor_tx, p2wpkh_script, p2wpkh_sighash, p2wpkh_witness, AnchorTxError,
    FundingUtxo, P2WPKH_DUST,
};
use crate::birth_certificate::BirthCertificate;
use crate::envelope::EnvelopeError;
use crate::keys::{PublicKey, SecretKey};
use crate::payload::{Payload, RecordKind};
use crate::record::TxRecord;

mod terms;

pub use terms::OfferTerms;

/// The largest fee a device accepts to sign for (the TBS pays it, but a device must not
/// sign away a large funding output: that would make it an accomplice to fee burning).
pub const MAX_OFFER_FEE: Amount = Amount::from_sat(20_000);

/// Largest PSBT accepted from the network.
pub const MAX_PSBT_BYTES: usize = 4096;

/// Why an offer or a signed anchor was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OfferError {
    /// The sealed offer does not open under the device's instruction key and these
    /// parties: altered in transit, sealed by someone else, or not an offer.
    #[error("the sealed offer does not open: {0}")]
    Sealed(#[source] EnvelopeError),
    /// The sealed offer opened, but its plaintext is not offer terms.
    #[error("malformed offer terms: {0}")]
    Terms(String),
    /// The offer's input 0 does not spend the funding outpoint its terms name.
    #[error("the offer spends {psbt}, its sealed terms name the funding outpoint {sealed}")]
    FundingMismatch {
        /// The outpoint in the sealed terms.
        sealed: OutPoint,
        /// The outpoint the PSBT's input 0 spends.
        psbt: OutPoint,
    },
    /// The offer's output 1 does not pay the change script its terms name.
    #[error("the offer pays its change to {psbt}, its sealed terms name {sealed}")]
    ChangeMismatch {
        /// The change script in the sealed terms.
        sealed: ScriptBuf,
        /// The script the PSBT's output 1 pays.
        psbt: ScriptBuf,
    },
    /// The offer lapsed: the TBS will not broadcast a signature of it.
    #[error("the offer lapsed at {expires_at} (now {now})")]
    Lapsed {
        /// When it lapsed (Unix seconds).
        expires_at: u64,
        /// The time of the check.
        now: u64,
    },
    /// The PSBT does not decode.
    #[error("malformed psbt: {0}")]
    Malformed(String),
    /// The transaction is not one input (the device's funding) and two outputs.
    #[error("unexpected anchoring transaction shape: {0}")]
    Shape(&'static str),
    /// Output 0 does not anchor this device's Birth Certificate.
    #[error("the offer does not anchor this device's birth certificate")]
    WrongPayload,
    /// Input 0 does not spend an output of this device's key.
    #[error("the offer does not spend an output of this device's key")]
    WrongInput,
    /// The fee is above [`MAX_OFFER_FEE`], or the outputs exceed the input.
    #[error("offer fee {fee} is not between 0 and {MAX_OFFER_FEE}")]
    Fee {
        /// The fee the transaction would pay (zero if the outputs exceed the input).
        fee: Amount,
    },
    /// The signed transaction differs from the offer.
    #[error("the signed transaction is not the one offered")]
    NotTheOffer,
    /// The device's signature does not verify.
    #[error("the device's signature does not verify")]
    BadSignature,
}

/// An anchoring transaction offered to a device, as the TBS built it or as the device
/// checked it.
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorOffer {
    psbt: Psbt,
    device: PublicKey,
    funding_value: Amount,
}

impl AnchorOffer {
    /// TBS side: the offer to anchor `bc` from `funding` (an output paying the device's
    /// P2WPKH), with change to `change_to` at `fee_rate`.
    pub fn build(
        bc: &BirthCertificate,
        funding: &FundingUtxo,
        change_to: ScriptBuf,
        fee_rate: bitcoin::FeeRate,
    ) -> Result<Self, AnchorTxError> {
        let device = *bc.public_key();
        let payload = Payload::new(RecordKind::BirthCertificate, bc.digest());
        let (tx, _fee) =
            build_unsigned_anchor_tx(&device, funding, &payload, fee_rate, Some(change_to))?;
        // `from_unsigned_tx` only fails on a transaction with script sigs or witnesses.
        let mut psbt =
            Psbt::from_unsigned_tx(tx).map_err(|e| AnchorTxError::Psbt(e.to_string()))?;
        psbt.inputs[0].witness_utxo = Some(TxOut {
            value: funding.value,
            script_pubkey: p2wpkh_script(&device),
        });
        Ok(Self {
            psbt,
            device,
            funding_value: funding.value,
        })
    }

    /// The value of the output the anchoring transaction spends (its signature commits to
    /// it, so recomputing the signature's nonce needs it).
    pub fn funding_value(&self) -> Amount {
        self.funding_value
    }

    /// The PSBT to send to the device.
    pub fn to_psbt_bytes(&self) -> Vec<u8> {
        self.psbt.serialize()
    }

    /// Device side: reads an offer and checks it anchors `bc` from the device's own key for
    /// a bounded fee.
    pub fn check(psbt_bytes: &[u8], bc: &BirthCertificate) -> Result<Self, OfferError> {
        if psbt_bytes.len() > MAX_PSBT_BYTES {
            return Err(OfferError::Malformed(format!("{} bytes", psbt_bytes.len())));
        }
        let psbt =
            Psbt::deserialize(psbt_bytes).map_err(|e| OfferError::Malformed(e.to_string()))?;
        let device = *bc.public_key();
        let tx = &psbt.unsigned_tx;
        if tx.input.len() != 1 || psbt.inputs.len() != 1 {
            return Err(OfferError::Shape("exactly one input"));
        }
        if tx.output.len() != 2 {
            return Err(OfferError::Shape("exactly two outputs"));
        }
        let expected = Payload::new(RecordKind::BirthCertificate, bc.digest()).to_script();
        if tx.output[0].script_pubkey != expected || tx.output[0].value != Amount::ZERO {
            return Err(OfferError::WrongPayload);
        }
        if tx.output[1].script_pubkey.is_op_return() || tx.output[1].value < P2WPKH_DUST {
            return Err(OfferError::Shape(
                "output 1 must be change above the dust limit",
            ));
        }
        let funding = psbt.inputs[0]
            .witness_utxo
            .as_ref()
            .ok_or(OfferError::WrongInput)?;
        if funding.script_pubkey != p2wpkh_script(&device) {
            return Err(OfferError::WrongInput);
        }
        let spent: Amount = tx.output.iter().map(|o| o.value).sum();
        let fee = funding
            .value
            .checked_sub(spent)
            .ok_or(OfferError::Fee { fee: Amount::ZERO })?;
        if fee > MAX_OFFER_FEE {
            return Err(OfferError::Fee { fee });
        }
        let funding_value = funding.value;
        Ok(Self {
            psbt,
            device,
            funding_value,
        })
    }

    /// Device side: signs input 0 with the device key (RFC 6979 nonce) and returns the
    /// complete transaction.
    pub fn sign(&self, key: &SecretKey) -> Result<Transaction, OfferError> {
        if key.public_key() != self.device {
            return Err(OfferError::WrongInput);
        }
        let mut tx = self.psbt.unsigned_tx.clone();
        let sighash = p2wpkh_sighash(&tx, 0, &self.device, self.funding_value)
            .map_err(|_| OfferError::Shape("no input 0"))?;
        tx.input[0].witness = p2wpkh_witness(&key.sign_prehash(&sighash), &self.device);
        Ok(tx)
    }

    /// TBS side: checks that `signed` is this offer, signed by the device, and returns it
    /// ready to broadcast.
    pub fn accept(&self, signed: Transaction) -> Result<Transaction, OfferError> {
        let mut unsigned = signed.clone();
        for input in &mut unsigned.input {
            input.witness.clear();
        }
        if unsigned != self.psbt.unsigned_tx {
            return Err(OfferError::NotTheOffer);
        }
        // The offer spends the device key's P2WPKH output of `funding_value`: attributing
        // the record checks the device's signature over exactly that.
        let record = TxRecord::from_own_tx(&signed, self.funding_value)
            .map_err(|_| OfferError::BadSignature)?;
        if record.signer != self.device {
            return Err(OfferError::BadSignature);
        }
        Ok(signed)
    }

    /// The device key this offer is for.
    pub fn device(&self) -> &PublicKey {
        &self.device
    }

    /// The unsigned anchoring transaction.
    pub fn unsigned_tx(&self) -> &Transaction {
        &self.psbt.unsigned_tx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::birth_certificate::{BcFields, Role, Status, VERSION};
    use crate::purpose_keys::PurposeKeys;
    use bitcoin::hashes::Hash;
    use bitcoin::{FeeRate, OutPoint, Txid};
    use proptest::prelude::*;

    fn device(byte: u8) -> (SecretKey, BirthCertificate) {
        let key = SecretKey::from_bytes(&[byte; 32]).unwrap();
        let fields = BcFields {
            version: VERSION,
            role: Role::Pat,
            name: format!("thermostat {byte}"),
            endpoints: vec![],
            created: 1_750_000_000,
            public_key: key.public_key(),
            status: Status::Active,
            previous: None,
            keys: PurposeKeys::none(),
        };
        let bc = BirthCertificate::sign(fields, &key).unwrap();
        (key, bc)
    }

    fn funding(sats: u64) -> FundingUtxo {
        FundingUtxo {
            outpoint: OutPoint::new(Txid::from_byte_array([9; 32]), 0),
            value: Amount::from_sat(sats),
        }
    }

    fn tbs_change() -> ScriptBuf {
        p2wpkh_script(&SecretKey::from_bytes(&[0x77; 32]).unwrap().public_key())
    }

    fn offer(bc: &BirthCertificate, sats: u64) -> AnchorOffer {
        AnchorOffer::build(
            bc,
            &funding(sats),
            tbs_change(),
            FeeRate::from_sat_per_vb_u32(2),
        )
        .unwrap()
    }

    #[test]
    fn the_device_checks_signs_and_the_tbs_accepts_its_own_offer() {
        let (key, bc) = device(1);
        let built = offer(&bc, 1_000);
        let checked = AnchorOffer::check(&built.to_psbt_bytes(), &bc).unwrap();
        assert_eq!(checked, built);
        let signed = checked.sign(&key).unwrap();
        let accepted = built.accept(signed.clone()).unwrap();
        let record = TxRecord::from_own_tx(&accepted, Amount::from_sat(1_000)).unwrap();
        assert_eq!(
            (record.signer, record.digest),
            (key.public_key(), bc.digest())
        );
        assert_eq!(accepted.output[1].script_pubkey, tbs_change());
        // The nonce of the device's on-chain signature is recoverable by the device.
        let nonce =
            crate::anchor_tx::anchor_nonce(&key, &accepted, Amount::from_sat(1_000)).unwrap();
        assert_eq!(nonce.public(), record.nonce_point().unwrap());
    }

    #[test]
    fn a_device_refuses_an_offer_for_another_certificate_or_key() {
        let (_, bc) = device(1);
        let (_, other) = device(2);
        let bytes = offer(&other, 1_000).to_psbt_bytes();
        // Same shape, but it anchors the other device's digest from the other device's key.
        assert!(matches!(
            AnchorOffer::check(&bytes, &bc),
            Err(OfferError::WrongPayload)
        ));
        let mut psbt = Psbt::deserialize(&offer(&bc, 1_000).to_psbt_bytes()).unwrap();
        psbt.inputs[0].witness_utxo.as_mut().unwrap().script_pubkey = tbs_change();
        assert!(matches!(
            AnchorOffer::check(&psbt.serialize(), &bc),
            Err(OfferError::WrongInput)
        ));
    }

    #[test]
    fn a_device_refuses_to_sign_away_a_large_fee() {
        let (_, bc) = device(1);
        let mut psbt = Psbt::deserialize(&offer(&bc, 1_000).to_psbt_bytes()).unwrap();
        psbt.inputs[0].witness_utxo.as_mut().unwrap().value = Amount::from_sat(1_000_000);
        assert!(matches!(
            AnchorOffer::check(&psbt.serialize(), &bc),
            Err(OfferError::Fee { .. })
        ));
        psbt.inputs[0].witness_utxo.as_mut().unwrap().value = Amount::from_sat(10);
        assert!(matches!(
            AnchorOffer::check(&psbt.serialize(), &bc),
            Err(OfferError::Fee { .. })
        ));
    }

    #[test]
    fn extra_inputs_or_outputs_are_refused() {
        let (_, bc) = device(1);
        let mut psbt = Psbt::deserialize(&offer(&bc, 1_000).to_psbt_bytes()).unwrap();
        let extra = psbt.unsigned_tx.output[1].clone();
        psbt.unsigned_tx.output.push(extra);
        psbt.outputs.push(Default::default());
        assert!(matches!(
            AnchorOffer::check(&psbt.serialize(), &bc),
            Err(OfferError::Shape(_))
        ));
    }

    #[test]
    fn the_tbs_refuses_a_changed_transaction_or_a_foreign_signature() {
        let (key, bc) = device(1);
        let built = offer(&bc, 1_000);
        let mut redirected = built.sign(&key).unwrap();
        redirected.output[1].script_pubkey = p2wpkh_script(&key.public_key());
        assert_eq!(built.accept(redirected), Err(OfferError::NotTheOffer));

        let (mallory, _) = device(3);
        let mut forged = built.unsigned_tx().clone();
        let sighash =
            p2wpkh_sighash(&forged, 0, &key.public_key(), Amount::from_sat(1_000)).unwrap();
        forged.input[0].witness =
            p2wpkh_witness(&mallory.sign_prehash(&sighash), &key.public_key());
        assert_eq!(built.accept(forged), Err(OfferError::BadSignature));
        assert_eq!(built.sign(&mallory), Err(OfferError::WrongInput));
    }

    #[test]
    fn too_little_funding_cannot_be_offered() {
        let (_, bc) = device(1);
        assert!(AnchorOffer::build(
            &bc,
            &funding(300),
            tbs_change(),
            FeeRate::from_sat_per_vb_u32(2)
        )
        .is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_psbt_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let (_, bc) = device(1);
            let _ = AnchorOffer::check(&bytes, &bc);
        }

        #[test]
        fn mutated_offers_never_panic(position in 0usize..400, byte in any::<u8>()) {
            let (_, bc) = device(1);
            let mut bytes = offer(&bc, 1_000).to_psbt_bytes();
            let index = position % bytes.len();
            bytes[index] = byte;
            let _ = AnchorOffer::check(&bytes, &bc);
        }
    }
}
