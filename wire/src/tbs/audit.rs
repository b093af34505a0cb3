//! The TBS's audit log of device registrations (`GET /v1/audit/checkpoint`,
//! `/v1/audit/checkpoints`, `/v1/audit/registrations/{device}/proof`).
//!
//! A verifier trusts none of it: it checks each checkpoint note's signature with the
//! `checkpoint` key of the TBS's anchored certificate, each anchor by SPV, the consistency
//! proofs between the checkpoints it holds, and an inclusion proof of the entry it
//! recomputes itself. The proofs are `milagro_anchor::audit_log`'s, whose JSON form (and
//! its shape check: a path of the length the sizes call for) is defined there.

use milagro_anchor::audit_log::{ConsistencyProof, InclusionProof};
use milagro_anchor::digest::Digest;
use milagro_anchor::proof::AnchorProofJson;
use serde::{Deserialize, Serialize};

use crate::service::SignedCheckpoint;

/// Who signs the log's checkpoints, as a verifier of the notes needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSigner {
    /// The log's origin (the first line of each note).
    pub origin: String,
    /// The signature line's key name (the origin).
    pub key_name: String,
    /// The C2SP key id of the signing key, 8 hex digits.
    pub key_id: String,
    /// The key that signs the notes: the certificate's `checkpoint` purpose key, not its
    /// anchored key (ADR 0013), compressed SEC1 hex.
    pub public_key: String,
}

/// A signed checkpoint of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The checkpoint.
    #[serde(flatten)]
    pub signed: SignedCheckpoint,
    /// Where its anchor stands (in lists and registration proofs; the newest checkpoint's
    /// is beside it, in [`AuditCheckpoint::anchor`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<CheckpointAnchor>,
}

/// Where a checkpoint's anchor stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CheckpointAnchor {
    /// Broadcast, not in the index yet.
    Pending {
        /// The anchoring transaction.
        txid: String,
    },
    /// In the index.
    Confirmed(ConfirmedCheckpoint),
}

/// A checkpoint anchor in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmedCheckpoint {
    /// The anchoring transaction.
    pub txid: String,
    /// The index of its `OP_RETURN` output.
    pub vout: u32,
    /// The height of its block.
    pub height: u32,
    /// Its block's hash.
    pub block_hash: String,
    /// Confirmations at the index's tip.
    pub depth: u32,
    /// Its proof, checked by the TBS before it is served (the newest checkpoint's only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor_proof: Option<AnchorProofJson>,
}

/// `GET /v1/audit/checkpoint`: the newest checkpoint and where its anchor stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheckpoint {
    /// Who signs the notes.
    #[serde(flatten)]
    pub signer: LogSigner,
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Where its anchor stands, with its proof once confirmed.
    pub anchor: CheckpointAnchor,
    /// The log's size now (entries after the checkpoint are not covered by it yet).
    pub log_size: u64,
}

/// `GET /v1/audit/checkpoints?from=S&count=N`: a page of the anchored history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditCheckpoints {
    /// Who signs the notes.
    #[serde(flatten)]
    pub signer: LogSigner,
    /// The checkpoints from sequence S, oldest first.
    pub checkpoints: Vec<ListedCheckpoint>,
    /// The `from` of the next page; none on the last.
    pub next: Option<u64>,
}

/// A checkpoint of a page, with the proof that it extends the one before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedCheckpoint {
    /// The checkpoint, with its anchor's state.
    #[serde(flatten)]
    pub checkpoint: Checkpoint,
    /// That its tree extends the previous checkpoint's; none for the first checkpoint.
    pub consistency_proof: Option<ConsistencyProof>,
}

/// `GET /v1/audit/registrations/{device}/proof?size=N`: a device's registration entry and
/// its inclusion proof in the tree of N entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationProof {
    /// The device key, compressed SEC1 hex.
    pub device: String,
    /// The entry's leaf hash (the verifier recomputes it from the registration).
    pub entry: Digest,
    /// Its position in the log.
    pub leaf_index: u64,
    /// The size of the tree the proof is for.
    pub tree_size: u64,
    /// That tree's root.
    pub root: Digest,
    /// The entry's inclusion proof in that tree.
    pub inclusion_proof: InclusionProof,
    /// The checkpoint of exactly `tree_size` entries, if there is one.
    pub checkpoint: Option<Checkpoint>,
}
