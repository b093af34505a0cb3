//! Self-contained anchor proofs and their verification against a header chain.
//!
//! An [`AnchorProof`] (format version 2) carries everything an SPV verifier needs to reach
//! the same verdict as a full node's index, with block headers alone:
//!
//! - the raw anchoring transaction;
//! - its **funding transaction**, whose output the anchor's first input spends: its txid
//!   is checked against that input, and the output must be the signer's P2WPKH output with
//!   a `SIGHASH_ALL` signature that verifies over it ([`crate::record`]). Without it, a
//!   Taproot or P2WSH spend whose witness merely looks like `[signature, key]` could name
//!   any key as its signer;
//! - the block's **coinbase transaction**;
//! - a `MerkleBlock` (header and partial Merkle tree, as from `bitcoind`'s `gettxoutproof`
//!   for both txids) that places the coinbase at position 0 and the anchor in the same
//!   tree. A header does not commit to its transaction count, so without the coinbase a
//!   prover could claim one more tree level and hang a made-up leaf under a mined 64-byte
//!   transaction (CVE-2017-12842); a real coinbase at position 0 pins the depth of every
//!   leaf (`docs/adr/0007-anchor-proof-v2.md` says why this method).
//!
//! [`AnchorProof::verify`] is the only way to obtain a [`VerifiedAnchor`], so code that
//! takes a `VerifiedAnchor` cannot be handed an unchecked one. It checks, in order: the
//! transaction's record (kind, digest, signer proven by its funding output), that the
//! Merkle path commits the transaction to the header at the coinbase's depth, and that the
//! header is in the caller's [`HeaderChain`]. The verdict reports the depth; whether that
//! depth is enough is the caller's policy ([`VerifiedAnchor::is_final`] applies the usual
//! six blocks).

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

/// The anchor proof format this crate reads and writes.
pub const PROOF_VERSION: u32 = 2;

pub use crate::header_chain::{Checkpoint, HeaderChain, HeaderChainError, Headers};

/// Depth at which an anchor is conventionally final.
pub const FINAL_DEPTH: u32 = 6;

/// A transaction and the Merkle path placing it in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchorProof {
    tx: Transaction,
    funding_tx: Transaction,
    coinbase_tx: Transaction,
    merkle_block: MerkleBlock,
}

/// The JSON form: consensus encodings in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorProofJson {
    /// The format version, [`PROOF_VERSION`]. Absent in version 1 proofs, which carried
    /// neither the funding nor the coinbase transaction and are refused.
    #[serde(default = "version_one")]
    pub version: u32,
    /// The raw anchoring transaction.
    pub tx: String,
    /// The raw transaction whose output the anchoring transaction's first input spends.
    #[serde(default)]
    pub funding_tx: String,
    /// The raw coinbase transaction of the block.
    #[serde(default)]
    pub coinbase_tx: String,
    /// The `MerkleBlock` (header and partial Merkle tree matching the coinbase and the
    /// anchoring transaction), as from `gettxoutproof`.
    pub txoutproof: String,
}

fn version_one() -> u32 {
    1
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
    /// The proof is in a format this verifier does not accept.
    #[error(
        "anchor proof version {0} is not accepted: version {PROOF_VERSION} (with the funding \
         and coinbase transactions) is required"
    )]
    UnsupportedVersion(u32),
    /// The coinbase part of the proof does not pin the Merkle tree's depth: the coinbase
    /// transaction is not a coinbase, or is not the tree's first leaf.
    #[error("the proof does not pin the merkle tree's depth: {0}")]
    DepthNotPinned(&'static str),
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
    /// Assembles a proof from its parts: the anchoring transaction, the transaction its
    /// first input spends, the block's coinbase, and the Merkle block matching the coinbase
    /// and the anchoring transaction. Structure only; [`Self::verify`] checks.
    pub fn new(
        tx: Transaction,
        funding_tx: Transaction,
        coinbase_tx: Transaction,
        merkle_block: MerkleBlock,
    ) -> Self {
        Self {
            tx,
            funding_tx,
            coinbase_tx,
            merkle_block,
        }
    }

    /// Reads the JSON form; the version is checked first.
    pub fn from_json(json: &AnchorProofJson) -> Result<Self, ProofError> {
        if json.version != PROOF_VERSION {
            return Err(ProofError::UnsupportedVersion(json.version));
        }
        fn decode<T: encode::Decodable>(what: &str, text: &str) -> Result<T, ProofError> {
            let bytes =
                hex::decode(text).map_err(|e| ProofError::Malformed(format!("{what}: {e}")))?;
            encode::deserialize(&bytes).map_err(|e| ProofError::Malformed(format!("{what}: {e}")))
        }
        Ok(Self {
            tx: decode("tx", &json.tx)?,
            funding_tx: decode("funding_tx", &json.funding_tx)?,
            coinbase_tx: decode("coinbase_tx", &json.coinbase_tx)?,
            merkle_block: decode("txoutproof", &json.txoutproof)?,
        })
    }

    /// The JSON form.
    pub fn to_json(&self) -> AnchorProofJson {
        AnchorProofJson {
            version: PROOF_VERSION,
            tx: encode::serialize_hex(&self.tx),
            funding_tx: encode::serialize_hex(&self.funding_tx),
            coinbase_tx: encode::serialize_hex(&self.coinbase_tx),
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
        let record = TxRecord::from_tx(&self.tx, &self.funding_tx)?;
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

    /// Checks that the header's Merkle root commits to `txid` at the depth of the tree
    /// whose first leaf is the coinbase.
    ///
    /// A partial Merkle tree places all its leaves at one depth, derived from the claimed
    /// transaction count, which the header does not commit to. Inflating that count by one
    /// level would turn a mined 64-byte transaction into an inner node with a made-up leaf
    /// below it. Requiring a real coinbase (one input spending the null outpoint) as leaf 0
    /// of the same tree closes that: at an inflated depth, leaf 0's parent would be the real
    /// first leaf, which would have to be a 64-byte coinbase whose first half is the txid
    /// of another coinbase, and a coinbase's first 32 bytes (version, input count, a null
    /// outpoint's leading zeros) are no feasible hash output.
    fn check_merkle_path(&self, txid: Txid) -> Result<(), ProofError> {
        if !self.coinbase_tx.is_coinbase() {
            return Err(ProofError::DepthNotPinned(
                "the coinbase transaction is not a coinbase",
            ));
        }
        let mut matches = Vec::new();
        let mut indexes = Vec::new();
        self.merkle_block
            .extract_matches(&mut matches, &mut indexes)
            .map_err(|_| ProofError::NotInBlock(txid))?;
        let coinbase = self.coinbase_tx.compute_txid();
        let first_leaf = matches
            .iter()
            .zip(&indexes)
            .find_map(|(m, &index)| (index == 0).then_some(*m));
        if first_leaf != Some(coinbase) {
            return Err(ProofError::DepthNotPinned(
                "the coinbase is not the merkle tree's first leaf",
            ));
        }
        if txid != coinbase && matches.contains(&txid) {
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
pub(crate) mod tests;
