//! Self-contained anchor proofs and their verification against a header chain.
//!
//! An [`AnchorProof`] is the raw anchoring transaction plus a `MerkleBlock` (the block header
//! and the partial Merkle path to the transaction: exactly what `bitcoind`'s
//! `gettxoutproof` returns). It is verifiable with block headers alone, like an
//! OpenTimestamps upgraded proof: nobody who serves it needs to be trusted.
//!
//! [`AnchorProof::verify`] is the only way to obtain a [`VerifiedAnchor`], so code that
//! takes a `VerifiedAnchor` cannot be handed an unchecked one. It checks, in order:
//! the transaction's record (kind, digest, signer), that the Merkle path commits the
//! transaction to the header, and that the header is in the caller's [`HeaderChain`]. The
//! verdict reports the depth; whether that depth is enough is the caller's policy
//! ([`VerifiedAnchor::is_final`] applies the usual six blocks).

use bitcoin::consensus::encode;
use bitcoin::merkle_tree::MerkleBlock;
use bitcoin::{BlockHash, Transaction, Txid};
use serde::{Deserialize, Serialize};

use crate::birth_certificate::BirthCertificate;
use crate::digest::Digest;
use crate::keys::PublicKey;
use crate::nonce::NoncePoint;
use crate::payload::RecordKind;
use crate::record::{NotARecord, TxRecord};

pub use crate::header_chain::{HeaderChain, HeaderChainError, Headers};

/// Depth at which an anchor is conventionally final.
pub const FINAL_DEPTH: u32 = 6;

/// A transaction and the Merkle path placing it in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorProof {
    tx: Transaction,
    merkle_block: MerkleBlock,
}

/// The JSON form: consensus encodings in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorProofJson {
    /// The raw transaction.
    pub tx: String,
    /// The `MerkleBlock` (header and partial Merkle tree), as from `gettxoutproof`.
    pub txoutproof: String,
}

/// What the verifier expects the anchor to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// The record kind.
    pub kind: RecordKind,
    /// The digest.
    pub digest: Digest,
    /// The key that must have signed the first input, if known.
    pub signer: Option<PublicKey>,
}

impl Expected {
    /// A Birth Certificate anchored by its own key.
    pub fn birth_certificate(bc: &BirthCertificate) -> Self {
        Self {
            kind: RecordKind::BirthCertificate,
            digest: bc.digest(),
            signer: Some(*bc.public_key()),
        }
    }
}

/// An anchor that passed [`AnchorProof::verify`]. Only that function makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VerifiedAnchor {
    kind: RecordKind,
    digest: Digest,
    txid: Txid,
    vout: u32,
    block_hash: BlockHash,
    height: u32,
    depth: u32,
    signer: PublicKey,
    #[serde(skip)]
    nonce_point: NoncePoint,
}

/// Why an anchor proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The hex or consensus encoding is broken.
    #[error("malformed anchor proof: {0}")]
    Malformed(String),
    /// The transaction carries no Milagro record.
    #[error("the transaction carries no milagro record: {0}")]
    NotARecord(#[from] NotARecord),
    /// The record is of another kind.
    #[error("record kind is {found}, expected {expected}")]
    WrongKind {
        /// What the verifier wanted.
        expected: RecordKind,
        /// What the transaction says.
        found: RecordKind,
    },
    /// The record anchors another digest.
    #[error("record anchors digest {found}, expected {expected}")]
    WrongDigest {
        /// What the verifier wanted.
        expected: Digest,
        /// What the transaction says.
        found: Digest,
    },
    /// The first input was signed by another key.
    #[error("record signed by {found}, expected {expected}")]
    WrongSigner {
        /// What the verifier wanted.
        expected: Box<PublicKey>,
        /// Who signed.
        found: Box<PublicKey>,
    },
    /// The Merkle path does not lead from the transaction to the header's root.
    #[error("transaction {0} is not committed to by the block header")]
    NotInBlock(Txid),
    /// The header is not part of the verifier's chain.
    #[error("block {0} is not in the header chain")]
    HeaderNotInChain(BlockHash),
}

impl AnchorProof {
    /// Pairs a transaction with its Merkle path. Structure only; [`Self::verify`] checks.
    pub fn new(tx: Transaction, merkle_block: MerkleBlock) -> Self {
        Self { tx, merkle_block }
    }

    /// Reads the JSON form.
    pub fn from_json(json: &AnchorProofJson) -> Result<Self, ProofError> {
        let decode = |what: &str, text: &str| {
            hex::decode(text).map_err(|e| ProofError::Malformed(format!("{what}: {e}")))
        };
        let tx = encode::deserialize(&decode("tx", &json.tx)?)
            .map_err(|e| ProofError::Malformed(format!("tx: {e}")))?;
        let merkle_block = encode::deserialize(&decode("txoutproof", &json.txoutproof)?)
            .map_err(|e| ProofError::Malformed(format!("txoutproof: {e}")))?;
        Ok(Self { tx, merkle_block })
    }

    /// The JSON form.
    pub fn to_json(&self) -> AnchorProofJson {
        AnchorProofJson {
            tx: encode::serialize_hex(&self.tx),
            txoutproof: encode::serialize_hex(&self.merkle_block),
        }
    }

    /// The anchoring transaction.
    pub fn tx(&self) -> &Transaction {
        &self.tx
    }

    /// The block hash the proof claims.
    pub fn block_hash(&self) -> BlockHash {
        self.merkle_block.header.block_hash()
    }

    /// Checks the proof against what the verifier expects and its header chain.
    pub fn verify(
        &self,
        expected: &Expected,
        chain: &impl HeaderChain,
    ) -> Result<VerifiedAnchor, ProofError> {
        let record = TxRecord::from_tx(&self.tx)?;
        if record.kind != expected.kind {
            return Err(ProofError::WrongKind {
                expected: expected.kind,
                found: record.kind,
            });
        }
        if record.digest != expected.digest {
            return Err(ProofError::WrongDigest {
                expected: expected.digest,
                found: record.digest,
            });
        }
        if let Some(signer) = expected.signer {
            if record.signer != signer {
                return Err(ProofError::WrongSigner {
                    expected: Box::new(signer),
                    found: Box::new(record.signer),
                });
            }
        }
        self.check_merkle_path(record.txid)?;
        let block_hash = self.block_hash();
        let height = chain
            .height_of(&block_hash)
            .ok_or(ProofError::HeaderNotInChain(block_hash))?;
        let depth = chain.tip_height().saturating_sub(height) + 1;
        let nonce_point = record
            .nonce_point()
            .map_err(|_| NotARecord::NotP2wpkh("r is not a curve point"))?;
        Ok(VerifiedAnchor {
            kind: record.kind,
            digest: record.digest,
            txid: record.txid,
            vout: record.vout,
            block_hash,
            height,
            depth,
            signer: record.signer,
            nonce_point,
        })
    }

    fn check_merkle_path(&self, txid: Txid) -> Result<(), ProofError> {
        // A 64-byte transaction can pose as an inner Merkle node (CVE-2017-12842); a record
        // transaction is always larger, so refuse that size outright.
        if encode::serialize(&self.tx).len() == 64 || self.tx.base_size() == 64 {
            return Err(ProofError::NotInBlock(txid));
        }
        let mut matches = Vec::new();
        let mut indexes = Vec::new();
        self.merkle_block
            .extract_matches(&mut matches, &mut indexes)
            .map_err(|_| ProofError::NotInBlock(txid))?;
        if matches.contains(&txid) {
            Ok(())
        } else {
            Err(ProofError::NotInBlock(txid))
        }
    }
}

impl BirthCertificate {
    /// Verifies that `proof` anchors this certificate, signed by its own key.
    pub fn verify_anchor(
        &self,
        proof: &AnchorProof,
        chain: &impl HeaderChain,
    ) -> Result<VerifiedAnchor, ProofError> {
        proof.verify(&Expected::birth_certificate(self), chain)
    }
}

impl VerifiedAnchor {
    /// The record kind.
    pub fn kind(&self) -> RecordKind {
        self.kind
    }
    /// The anchored digest.
    pub fn digest(&self) -> Digest {
        self.digest
    }
    /// The anchoring transaction.
    pub fn txid(&self) -> Txid {
        self.txid
    }
    /// The `OP_RETURN` output index.
    pub fn vout(&self) -> u32 {
        self.vout
    }
    /// The block that holds it.
    pub fn block_hash(&self) -> BlockHash {
        self.block_hash
    }
    /// That block's height.
    pub fn height(&self) -> u32 {
        self.height
    }
    /// Confirmations: 1 when the block is the tip.
    pub fn depth(&self) -> u32 {
        self.depth
    }
    /// The key that signed the anchoring transaction.
    pub fn signer(&self) -> PublicKey {
        self.signer
    }
    /// The nonce point of that signature.
    pub fn nonce_point(&self) -> NoncePoint {
        self.nonce_point
    }
    /// Whether the anchor is at least [`FINAL_DEPTH`] deep.
    pub fn is_final(&self) -> bool {
        self.depth >= FINAL_DEPTH
    }
}

#[cfg(test)]
#[path = "proof_tests.rs"]
pub(crate) mod tests;
