//! Verifying a Birth Certificate's anchor the way any relying party would.
//!
//! The registry finds the candidate records for the BC's digest; for each, the node serves
//! the raw transaction, its Merkle path and the headers up to the tip, and
//! [`milagro_anchor`] checks them (signer = the BC's key, digest, block in the header
//! chain). The earliest record that verifies wins.

use anyhow::Result;
use bitcoin::Txid;
use milagro_anchor::birth_certificate::BirthCertificate;
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::PublicKey;
use milagro_anchor::proof::VerifiedAnchor;
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::proofs::{anchor_proof, headers_from};
use milagro_registry::store::{IndexedRecord, RecordStore};
use serde::Serialize;

/// The JSON verdict of `milagro bc verify`.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Whether a valid anchor at least `min_depth` deep was found.
    pub anchored: bool,
    /// The BC digest.
    pub digest: Digest,
    /// The anchoring transaction, if one verified.
    pub txid: Option<Txid>,
    /// Its block height.
    pub height: Option<u32>,
    /// Its confirmations.
    pub depth: Option<u32>,
    /// The key that signed it.
    pub signer: Option<PublicKey>,
    /// Whether it is at least six blocks deep.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// The depth that was required.
    pub min_depth: u32,
    /// Why it is not anchored, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Verdict {
    fn from_anchor(anchor: &VerifiedAnchor, min_depth: u32) -> Self {
        let deep_enough = anchor.depth() >= min_depth;
        Self {
            anchored: deep_enough,
            digest: anchor.digest(),
            txid: Some(anchor.txid()),
            height: Some(anchor.height()),
            depth: Some(anchor.depth()),
            signer: Some(anchor.signer()),
            is_final: anchor.is_final(),
            min_depth,
            reason: (!deep_enough).then(|| {
                format!(
                    "only {} confirmations, {min_depth} required",
                    anchor.depth()
                )
            }),
        }
    }

    fn not_anchored(digest: Digest, min_depth: u32, reason: String) -> Self {
        Self {
            anchored: false,
            digest,
            txid: None,
            height: None,
            depth: None,
            signer: None,
            is_final: false,
            min_depth,
            reason: Some(reason),
        }
    }
}

/// Checks every indexed record of `bc`'s digest and returns the verdict for the earliest valid one.
pub fn verify_bc(
    node: &BitcoindRpc,
    store: &impl RecordStore,
    bc: &BirthCertificate,
    min_depth: u32,
) -> Result<Verdict> {
    let mut candidates: Vec<IndexedRecord> = store.by_digest(&bc.digest())?;
    candidates.sort_by_key(|r| r.height);
    if candidates.is_empty() {
        return Ok(Verdict::not_anchored(
            bc.digest(),
            min_depth,
            "no record of this digest on chain".into(),
        ));
    }
    let network = node.network()?;
    let mut last_error = String::new();
    for record in candidates {
        let proof = anchor_proof(node, &record)?;
        let headers = headers_from(node, network, record.height)?;
        match bc.verify_anchor(&proof, &headers) {
            Ok(anchor) => return Ok(Verdict::from_anchor(&anchor, min_depth)),
            Err(error) => last_error = format!("record {}: {error}", record.txid),
        }
    }
    Ok(Verdict::not_anchored(bc.digest(), min_depth, last_error))
}
