//! The TBS's status and its public, read-only registry: records, anchor proofs, headers
//! (`GET /v1/status`, `/v1/records`, `/v1/proofs/{txid}`, `/v1/headers`).

use milagro_anchor::digest::Digest;
use milagro_anchor::payload::RecordKind;
use milagro_anchor::proof::AnchorProofJson;
use serde::{Deserialize, Serialize};

use crate::service::AnchorStatus;

/// `GET /v1/status`: the index, the node as last seen, and the TBS's own anchor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The TBS's name (its certificate's).
    pub name: String,
    /// The URL it serves at.
    pub public_url: String,
    /// The chain (`main`, `test`, `testnet4`, `signet`, `regtest`: bitcoind's names).
    pub network: String,
    /// Its Birth Certificate digest.
    pub digest: Digest,
    /// Its anchored key, compressed SEC1 hex.
    pub public_key: String,
    /// Whether its own anchor is in the index and verified.
    pub anchored: bool,
    /// Where its own anchor stands.
    pub anchor: AnchorStatus,
    /// The height of the index's tip (none before the first block is indexed).
    pub index_height: Option<u32>,
    /// The hash of the index's tip.
    pub index_hash: Option<String>,
    /// How many records the index holds.
    pub records: u64,
    /// Whether the last call to the node succeeded.
    pub node_reachable: bool,
    /// The node's tip height as last seen.
    pub node_height: Option<u32>,
    /// Whether the index has reached the node's tip.
    pub caught_up: bool,
    /// The last error of the chain follower, if it is failing.
    pub last_error: Option<String>,
    /// The last error of anchoring the TBS's own certificate, if any.
    pub anchor_error: Option<String>,
    /// Failed sync rounds since the start.
    pub sync_errors: u64,
    /// The funding pool of direct-mode device payments.
    pub funding_pool: FundingPool,
}

/// The funding pool as `/v1/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundingPool {
    /// Coins per refill (0: the pool is disabled).
    pub size: u64,
    /// Coins free to pay an offer.
    pub free: u64,
    /// The fan-out transaction being confirmed, if a refill is under way.
    pub refilling: Option<String>,
}

/// One indexed record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// What the record anchors.
    pub kind: RecordKind,
    /// The anchored digest.
    pub digest: Digest,
    /// The anchoring transaction.
    pub txid: String,
    /// The index of its `OP_RETURN` output.
    pub vout: u32,
    /// The height of its block.
    pub height: u32,
    /// Its block's hash.
    pub block_hash: String,
    /// The compressed key that signed the transaction's first input.
    pub signer: String,
    /// The nonce point `R` of that signature (compressed, even y), for ECDH and YAK over
    /// Bitcoin; none if the signature has no valid one.
    pub nonce_point: Option<String>,
}

/// `GET /v1/records?digest=|txid=|signer=`: the records, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Records {
    /// The records found (empty if none).
    pub records: Vec<Record>,
}

/// `GET /v1/proofs/{txid}`: a record's self-contained anchor proof and where it sits
/// (checked by the TBS before it is served; a client verifies it itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// The anchoring transaction.
    pub txid: String,
    /// The index of its `OP_RETURN` output.
    pub vout: u32,
    /// What the record anchors.
    pub kind: RecordKind,
    /// The anchored digest.
    pub digest: Digest,
    /// The compressed key that signed it.
    pub signer: String,
    /// The height of its block.
    pub height: u32,
    /// Its block's hash.
    pub block_hash: String,
    /// Confirmations at the index's tip.
    pub depth: u32,
    /// The proof.
    pub anchor_proof: AnchorProofJson,
}

/// `GET /v1/headers?from=H&count=N`: consecutive headers of the node's active chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headers {
    /// The height of the first header.
    pub from: u32,
    /// The node's tip height.
    pub tip_height: u32,
    /// The node's tip hash.
    pub tip_hash: String,
    /// The 80-byte headers, consensus-encoded hex (empty above the tip).
    pub headers: Vec<String>,
}
