//! The document every service serves at `/.well-known/milagro/birth-certificate`: its
//! Birth Certificate with the proof of its anchor, once anchored deep enough.

use milagro_registry::redb_store::RedbStore;
use milagro_registry::store::{RecordStore, StoreError};
use milagro_wire::service::{AnchorStatus, AnchoredBirthCertificate, PartyStatus};

use crate::identity::PartyIdentity;
use crate::own_anchor::{AnchorState, OwnAnchor};

/// Why the document cannot be served now.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotServed {
    /// Not anchored, not deep enough, or its block left the chain: retry later.
    #[error("{0}")]
    NotAnchored(String),
    /// The index failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The certificate does not serialise (a bug).
    #[error("birth certificate JSON: {0}")]
    Json(String),
}

/// The certificate, its digest, key and anchor (txid, height, depth, self-contained
/// proof), if the anchor is confirmed and `min_depth` deep in `index`.
///
/// The anchor was verified by SPV when the keeper found it; here it is served only if
/// its block is still in the index, with the depth of the index's current tip.
pub fn birth_certificate_document(
    identity: &PartyIdentity,
    own_anchor: &OwnAnchor,
    index: &RedbStore,
    min_depth: u32,
) -> Result<AnchoredBirthCertificate, NotServed> {
    let role = identity.role();
    let served = match own_anchor.get() {
        AnchorState::Confirmed(served) => served,
        AnchorState::Pending { txid } => {
            return Err(NotServed::NotAnchored(format!(
                "the {role} birth certificate is being anchored by transaction {txid}, \
                 not yet confirmed; retry after the next block"
            )))
        }
        AnchorState::None => {
            return Err(NotServed::NotAnchored(format!(
                "the {role} birth certificate is not anchored yet (waiting for the node)"
            )))
        }
    };
    let anchor = served.verified;
    let still_there = index.block_hash_at(anchor.height())?;
    let depth = match index.tip()? {
        Some(tip) if still_there == Some(anchor.block_hash()) => {
            tip.height.saturating_sub(anchor.height()) + 1
        }
        _ => {
            return Err(NotServed::NotAnchored(format!(
                "block {} of the {role} anchor left the chain (a reorg); re-anchoring",
                anchor.block_hash()
            )))
        }
    };
    if depth < min_depth {
        return Err(NotServed::NotAnchored(format!(
            "the {role} anchor has {depth} confirmation(s), {min_depth} required; retry later"
        )));
    }
    let bc = identity.bc();
    let document = serde_json::from_slice(&bc.to_canonical_json())
        .map_err(|e| NotServed::Json(e.to_string()))?;
    Ok(AnchoredBirthCertificate {
        birth_certificate: document,
        digest: bc.digest(),
        public_key: bc.public_key().to_string(),
        txid: anchor.txid().to_string(),
        vout: anchor.vout(),
        height: anchor.height(),
        block_hash: anchor.block_hash().to_string(),
        depth,
        anchor_proof: served.proof,
    })
}

/// The `anchor` member of a service's `/v1/status`: none, pending with its transaction,
/// or confirmed with its transaction and block.
pub fn anchor_status(own_anchor: &OwnAnchor) -> AnchorStatus {
    match own_anchor.get() {
        AnchorState::None => AnchorStatus::None,
        AnchorState::Pending { txid } => AnchorStatus::Pending {
            txid: txid.to_string(),
        },
        AnchorState::Confirmed(served) => AnchorStatus::Confirmed {
            txid: served.verified.txid().to_string(),
            height: served.verified.height(),
            block_hash: served.verified.block_hash().to_string(),
        },
    }
}

/// The members every service's `/v1/status` begins with, read from what its chain loop
/// works on (its identity, own anchor, index and audit log). Reads the index's tip: call
/// it off the async workers.
pub fn party_status(parts: &crate::runtime::ChainParts) -> Result<PartyStatus, StoreError> {
    let tip = parts.index.tip()?;
    Ok(PartyStatus {
        role: parts.identity.role(),
        digest: parts.identity.digest(),
        public_key: parts.identity.public_key().to_string(),
        anchor: anchor_status(&parts.own_anchor),
        index_height: tip.map(|t| t.height),
        index_hash: tip.map(|t| t.hash.to_string()),
        audit_size: parts.audit.tree_head().size.get(),
    })
}
