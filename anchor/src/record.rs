//! Finding the Milagro record in a transaction.
//!
//! A transaction carries a Milagro record when it has exactly one `OP_RETURN` output, that
//! output is a valid [`Payload`], and its **first input** spends a P2WPKH output: the witness
//! `[signature, public key]` of that input names the signer. The signer's key and the nonce
//! point `R` of its signature come straight from the witness, so anyone holding the raw
//! transaction can attribute the record without trusting whoever served it (consensus has
//! already checked that signature when the transaction entered a block).

use bitcoin::{Transaction, Txid};

use crate::digest::Digest;
use crate::keys::{PublicKey, Signature};
use crate::nonce::{NonceError, NoncePoint};
use crate::payload::{Payload, PayloadError, RecordKind};

/// A Milagro record as found in a transaction (not yet placed in a block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxRecord {
    /// The transaction.
    pub txid: Txid,
    /// Index of the `OP_RETURN` output.
    pub vout: u32,
    /// What the digest commits to.
    pub kind: RecordKind,
    /// The anchored digest.
    pub digest: Digest,
    /// The key that signed the first input.
    pub signer: PublicKey,
    /// The signature itself (low-S form).
    pub signature: Signature,
}

/// Why a transaction carries no Milagro record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotARecord {
    /// No `OP_RETURN` output.
    #[error("no op_return output")]
    NoOpReturn,
    /// More than one `OP_RETURN` output (not relayed by the policy this protocol targets).
    #[error("{0} op_return outputs, a record has exactly one")]
    SeveralOpReturns(usize),
    /// The `OP_RETURN` is not a Milagro payload.
    #[error("op_return output: {0}")]
    Payload(#[from] PayloadError),
    /// The first input's witness is not `[DER signature + sighash byte, compressed key]`.
    #[error("the first input is not a p2wpkh spend: {0}")]
    NotP2wpkh(&'static str),
}

impl TxRecord {
    /// Extracts the record, or says why there is none.
    pub fn from_tx(tx: &Transaction) -> Result<Self, NotARecord> {
        let mut op_returns = tx
            .output
            .iter()
            .enumerate()
            .filter(|(_, out)| out.script_pubkey.is_op_return());
        let (vout, output) = op_returns.next().ok_or(NotARecord::NoOpReturn)?;
        let extra = op_returns.count();
        if extra > 0 {
            return Err(NotARecord::SeveralOpReturns(extra + 1));
        }
        let payload = Payload::from_script(&output.script_pubkey)?;
        let (signature, signer) = p2wpkh_witness(tx)?;
        Ok(Self {
            txid: tx.compute_txid(),
            vout: u32::try_from(vout)
                .map_err(|_| NotARecord::NotP2wpkh("output index overflow"))?,
            kind: payload.kind,
            digest: payload.digest,
            signer,
            signature,
        })
    }

    /// The nonce point `R` (even y) of the signer's signature, for ECDH/YAK over Bitcoin.
    ///
    /// Computed on demand (a square root): indexing thousands of records need not pay it.
    /// A signature that consensus accepted always has one.
    pub fn nonce_point(&self) -> Result<NoncePoint, NonceError> {
        NoncePoint::from_signature(&self.signature)
    }

    /// The payload this record carries.
    pub fn payload(&self) -> Payload {
        Payload::new(self.kind, self.digest)
    }
}

/// Reads `[DER signature ‖ sighash byte, compressed public key]` from the first input.
fn p2wpkh_witness(tx: &Transaction) -> Result<(Signature, PublicKey), NotARecord> {
    let input = tx.input.first().ok_or(NotARecord::NotP2wpkh("no inputs"))?;
    if !input.script_sig.is_empty() {
        return Err(NotARecord::NotP2wpkh("script_sig is not empty"));
    }
    let witness = &input.witness;
    if witness.len() != 2 {
        return Err(NotARecord::NotP2wpkh("witness does not have two elements"));
    }
    let (sig_bytes, key_bytes) = match (witness.nth(0), witness.nth(1)) {
        (Some(sig), Some(key)) => (sig, key),
        _ => return Err(NotARecord::NotP2wpkh("witness does not have two elements")),
    };
    let (_, der) = sig_bytes
        .split_last()
        .ok_or(NotARecord::NotP2wpkh("empty signature"))?;
    let signature =
        Signature::from_der(der).map_err(|_| NotARecord::NotP2wpkh("bad DER signature"))?;
    let signer =
        PublicKey::from_sec1(key_bytes).map_err(|_| NotARecord::NotP2wpkh("bad public key"))?;
    Ok((signature, signer))
}
