//! Finding the Milagro record in a transaction, and who signed it.
//!
//! A transaction carries a Milagro record when it has exactly one `OP_RETURN` output, that
//! output is a valid [`Payload`], and its **first input** spends the P2WPKH output of the
//! signer's key with a `SIGHASH_ALL` signature. Reading the witness alone is not enough:
//! a witness `[signature, key]` has the same shape in a P2WSH or Taproot script-path spend,
//! where consensus checks nothing about that "key" (a Taproot leaf of an unknown version
//! is spendable by anyone). So attribution takes two steps:
//!
//! 1. [`RecordCandidate::from_tx`] reads the shape: payload, the claimed key (as bytes, a
//!    [`CompressedKey`]) and signature, and the outpoint the first input spends. No I/O,
//!    no signature check: an indexer runs it over every transaction and keeps the few that
//!    look like records.
//! 2. [`RecordCandidate::attribute`] takes the output that input spends (from the node, or
//!    from the funding transaction an anchor proof carries: [`TxRecord::from_tx`]) and
//!    checks that it is the P2WPKH output of the claimed key and that the signature
//!    verifies against the BIP 143 `SIGHASH_ALL` digest with that output's value. Only then
//!    is the record a [`TxRecord`] whose `signer` may be believed.
//!
//! An indexer reading blocks its own node validated proves the signer with the spent
//! output alone ([`RecordCandidate::attribute_in_validated_block`], which makes a
//! [`NodeRecord`]): the node already checked the signature.
//!
//! ```
//! # use milagro_anchor::record::{NotARecord, RecordCandidate};
//! # fn check(tx: &bitcoin::Transaction, funding_tx: &bitcoin::Transaction) -> Result<(), NotARecord> {
//! let candidate = RecordCandidate::from_tx(tx)?;
//! assert_eq!(candidate.funding().txid, funding_tx.compute_txid());
//! let record = candidate.attribute(tx, &funding_tx.output[candidate.funding().vout as usize])?;
//! println!("{} signed {}", record.signer, record.digest);
//! # Ok(()) }
//! ```

use bitcoin::hashes::Hash as _;
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{Amount, OutPoint, Transaction, TxOut, Txid};

use crate::digest::Digest;
use crate::keys::{CompressedKey, PublicKey, Signature};
use crate::nonce::{NonceError, NoncePoint};
use crate::payload::{Payload, PayloadError, RecordKind};

/// A Milagro record whose signer is proven: the first input spends that key's P2WPKH
/// output with a valid `SIGHASH_ALL` signature. Only [`RecordCandidate::attribute`] (and
/// the constructors built on it) make one.
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

/// A Milagro record in a block that a fully validating node connected, its signer proven
/// by the output its first input spends and the node's own script check
/// ([`RecordCandidate::attribute_in_validated_block`]). What an index of that node's
/// chain stores: the key stays as the witness carried it, never decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeRecord {
    /// The transaction.
    pub txid: Txid,
    /// Index of the `OP_RETURN` output.
    pub vout: u32,
    /// What the digest commits to.
    pub kind: RecordKind,
    /// The anchored digest.
    pub digest: Digest,
    /// The key that signed the first input.
    pub signer: CompressedKey,
    /// The signature itself (low-S form).
    pub signature: Signature,
}

/// A transaction shaped like a Milagro record, its signer not yet proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordCandidate {
    txid: Txid,
    vout: u32,
    payload: Payload,
    claimed_signer: CompressedKey,
    signature: Signature,
    funding: OutPoint,
}

/// Why a transaction carries no Milagro record (or none attributable to a key).
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
    /// The funding transaction given is not the one the first input spends.
    #[error("transaction {given} is not the one the first input spends ({spent})")]
    WrongFundingTx {
        /// The outpoint the first input spends.
        spent: OutPoint,
        /// The transaction given as its funding.
        given: Txid,
    },
    /// The first input spends something other than the claimed key's P2WPKH output (a
    /// script or Taproot spend whose witness merely looks like `[signature, key]`).
    #[error("the first input spends {script}, not the p2wpkh output of key {key}")]
    NotTheKeysOutput {
        /// The key the witness names.
        key: Box<CompressedKey>,
        /// The spent output's script (hex).
        script: String,
    },
    /// The signature commits to less than the whole transaction.
    #[error("the first input is signed with sighash type {0:#04x}, a record needs SIGHASH_ALL")]
    NotSighashAll(u8),
    /// The signature does not verify against the BIP 143 digest of the spent output.
    #[error("the first input's signature does not verify for key {0}")]
    BadSignature(Box<PublicKey>),
}

impl RecordCandidate {
    /// Reads a record's shape from `tx`, or says why it has none. Checks no signature.
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
        let (signature, claimed_signer, funding) = p2wpkh_witness(tx)?;
        Ok(Self {
            txid: tx.compute_txid(),
            vout: u32::try_from(vout)
                .map_err(|_| NotARecord::NotP2wpkh("output index overflow"))?,
            payload,
            claimed_signer,
            signature,
            funding,
        })
    }

    /// The outpoint the first input spends: whose output [`Self::attribute`] needs.
    pub fn funding(&self) -> OutPoint {
        self.funding
    }

    /// The transaction.
    pub fn txid(&self) -> Txid {
        self.txid
    }

    /// The payload.
    pub fn payload(&self) -> Payload {
        self.payload
    }

    /// The key the witness names (not proven: see [`Self::attribute`]; not even known to
    /// be a point).
    pub fn claimed_signer(&self) -> CompressedKey {
        self.claimed_signer
    }

    /// Proves the signer: `spent` must be the output at [`Self::funding`] (the caller
    /// looked it up by that outpoint), the claimed key's P2WPKH output, and the signature
    /// must verify against `tx`'s BIP 143 `SIGHASH_ALL` digest with `spent`'s value.
    /// `tx` must be the transaction this candidate was read from.
    pub fn attribute(self, tx: &Transaction, spent: &TxOut) -> Result<TxRecord, NotARecord> {
        let script_code = self.check_spent_output(spent)?;
        let key = self
            .claimed_signer
            .to_public_key()
            .map_err(|_| NotARecord::NotP2wpkh("bad public key"))?;
        let bad_signature = || NotARecord::BadSignature(Box::new(key));
        let sighash = SighashCache::new(tx)
            .p2wpkh_signature_hash(0, &script_code, spent.value, EcdsaSighashType::All)
            .map_err(|_| bad_signature())?;
        key.verify_prehash(&sighash.to_byte_array(), &self.signature)
            .map_err(|_| bad_signature())?;
        Ok(TxRecord {
            txid: self.txid,
            vout: self.vout,
            kind: self.payload.kind,
            digest: self.payload.digest,
            signer: key,
            signature: self.signature,
        })
    }
}

impl RecordCandidate {
    /// Proves the signer of a transaction that **a fully validating node has connected to
    /// its active chain**, without checking the signature again (nor decompressing the
    /// key): `spent` (the output at [`Self::funding`], looked up from that node) must be the
    /// claimed key's P2WPKH output.
    ///
    /// Why that is enough, and only there: to connect the block the node ran the spent
    /// output's script. For a P2WPKH output that script is fixed by consensus: the
    /// witness key must hash to the output's program (it does: the program *is*
    /// `hash160(key)`, compared here) and the witness signature must verify against that
    /// key and the BIP 143 digest with the output's value, under the sighash type its last
    /// byte names, which [`Self::from_tx`] already required to be `SIGHASH_ALL`. That is
    /// exactly what [`Self::attribute`] would check, and it includes that the key is a
    /// point (`OP_CHECKSIG` fails on one that is not). A P2WSH or Taproot output with the
    /// same witness shape fails the script comparison (the attack of ADR 0003).
    ///
    /// Whoever did not validate the block (a device, a verifier of an anchor proof, a
    /// store fed by anything but its own node) must call [`Self::attribute`]. A node that
    /// skips script checks below its `-assumevalid` block trusts that block's ancestors as
    /// the released software does; ADR 0009 says what that means for the index.
    pub fn attribute_in_validated_block(self, spent: &TxOut) -> Result<NodeRecord, NotARecord> {
        self.check_spent_output(spent)?;
        Ok(NodeRecord {
            txid: self.txid,
            vout: self.vout,
            kind: self.payload.kind,
            digest: self.payload.digest,
            signer: self.claimed_signer,
            signature: self.signature,
        })
    }

    fn check_spent_output(&self, spent: &TxOut) -> Result<bitcoin::ScriptBuf, NotARecord> {
        let script_code = crate::anchor_tx::p2wpkh_script(self.claimed_signer);
        if spent.script_pubkey != script_code {
            return Err(NotARecord::NotTheKeysOutput {
                key: Box::new(self.claimed_signer),
                script: hex::encode(spent.script_pubkey.as_bytes()),
            });
        }
        Ok(script_code)
    }
}

impl TxRecord {
    /// The record of `tx`, attributed with `funding_tx`, the transaction whose output its
    /// first input spends (its txid is checked, so whoever served it need not be trusted).
    pub fn from_tx(tx: &Transaction, funding_tx: &Transaction) -> Result<Self, NotARecord> {
        let candidate = RecordCandidate::from_tx(tx)?;
        let spent = candidate.funding;
        let given = funding_tx.compute_txid();
        let output = (given == spent.txid)
            .then(|| funding_tx.output.get(usize::try_from(spent.vout).ok()?))
            .flatten()
            .ok_or(NotARecord::WrongFundingTx { spent, given })?;
        candidate.attribute(tx, output)
    }

    /// The record of a transaction the caller signed itself, spending `funding_value` from
    /// its own key's P2WPKH output (so the spent script is known; the signature is still
    /// checked).
    pub fn from_own_tx(tx: &Transaction, funding_value: Amount) -> Result<Self, NotARecord> {
        let candidate = RecordCandidate::from_tx(tx)?;
        let spent = TxOut {
            value: funding_value,
            script_pubkey: crate::anchor_tx::p2wpkh_script(candidate.claimed_signer),
        };
        candidate.attribute(tx, &spent)
    }

    /// The nonce point `R` (even y) of the signer's signature, for ECDH/YAK over Bitcoin.
    ///
    /// Computed on demand (a square root): indexing thousands of records need not pay it.
    /// A valid signature always has one.
    pub fn nonce_point(&self) -> Result<NoncePoint, NonceError> {
        NoncePoint::from_signature(&self.signature)
    }

    /// The payload this record carries.
    pub fn payload(&self) -> Payload {
        Payload::new(self.kind, self.digest)
    }
}

/// Reads `[DER signature ‖ SIGHASH_ALL, compressed public key]` from the first input, and
/// the outpoint it spends.
fn p2wpkh_witness(tx: &Transaction) -> Result<(Signature, CompressedKey, OutPoint), NotARecord> {
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
    let (&sighash_type, der) = sig_bytes
        .split_last()
        .ok_or(NotARecord::NotP2wpkh("empty signature"))?;
    if sighash_type != EcdsaSighashType::All as u8 {
        return Err(NotARecord::NotSighashAll(sighash_type));
    }
    let signature =
        Signature::from_der(der).map_err(|_| NotARecord::NotP2wpkh("bad DER signature"))?;
    let signer = CompressedKey::from_slice(key_bytes)
        .map_err(|_| NotARecord::NotP2wpkh("bad public key"))?;
    Ok((signature, signer, input.previous_output))
}

#[cfg(test)]
mod tests;
