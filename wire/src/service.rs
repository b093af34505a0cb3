//! What every service (TBS, IdP, D-TA, authentication server) serves alike: its anchored
//! Birth Certificate (`GET /.well-known/milagro/birth-certificate`, component
//! `AnchoredBirthCertificate` of each document), where its own anchor stands (the
//! `anchor` member of each `/v1/status`), and the signed checkpoints of its audit log.

use milagro_anchor::birth_certificate::Role;
use milagro_anchor::digest::Digest;
use milagro_anchor::proof::AnchorProofJson;
use serde::{Deserialize, Serialize};

/// `GET /.well-known/milagro/birth-certificate`: the service's Birth Certificate with the
/// proof of its anchor. A reader trusts none of it: it parses the certificate
/// (`milagro_anchor::birth_certificate::BirthCertificate::parse` of this member's JSON),
/// checks its digest against the one it was given, and verifies the proof by SPV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnchoredBirthCertificate {
    /// The signed certificate, as its JSON object (its digest is SHA-256 of its RFC 8785
    /// canonical form).
    pub birth_certificate: serde_json::Value,
    /// The certificate's digest.
    pub digest: Digest,
    /// Its anchored key, compressed SEC1 hex.
    pub public_key: String,
    /// The anchoring transaction.
    pub txid: String,
    /// The index of its `OP_RETURN` output.
    pub vout: u32,
    /// The height of the block holding it.
    pub height: u32,
    /// That block's hash.
    pub block_hash: String,
    /// Confirmations at the service's index tip.
    pub depth: u32,
    /// The self-contained proof of the anchor.
    pub anchor_proof: AnchorProofJson,
}

/// The members every anchored service's `/v1/status` begins with (the D-TA's and the
/// authentication server's flatten it into theirs): who it is, where its anchor stands,
/// where its index is, how long its audit log is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyStatus {
    /// Its role.
    pub role: Role,
    /// Its Birth Certificate digest.
    pub digest: Digest,
    /// Its anchored key, compressed SEC1 hex.
    pub public_key: String,
    /// Where its own anchor stands.
    pub anchor: AnchorStatus,
    /// The height of its index's tip.
    pub index_height: Option<u32>,
    /// The hash of its index's tip.
    pub index_hash: Option<String>,
    /// How many entries its audit log holds.
    pub audit_size: u64,
}

/// Where a service's own anchor stands (`{"state": "none" | "pending" | "confirmed", …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AnchorStatus {
    /// Not anchored yet (waiting for the node or for funds).
    None,
    /// Broadcast, not yet confirmed.
    Pending {
        /// The anchoring transaction.
        txid: String,
    },
    /// In a block of the index, verified by SPV.
    Confirmed {
        /// The anchoring transaction.
        txid: String,
        /// The height of its block.
        height: u32,
        /// Its block's hash.
        block_hash: String,
    },
}

/// A signed checkpoint of a service's audit log, as the TBS and the IdP show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    /// Its place in the anchored history, from 0.
    pub sequence: u64,
    /// The C2SP signed note.
    pub note: String,
    /// The tree size it states.
    pub size: u64,
    /// The root it states.
    pub root: Digest,
    /// SHA-256 of the note's body: the anchored digest.
    pub digest: Digest,
    /// Its anchoring transaction.
    pub txid: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_anchor_status_is_tagged_by_its_state() {
        let none = serde_json::to_string(&AnchorStatus::None).unwrap();
        assert_eq!(none, r#"{"state":"none"}"#);
        let pending = AnchorStatus::Pending { txid: "ab".into() };
        let text = serde_json::to_string(&pending).unwrap();
        assert_eq!(text, r#"{"state":"pending","txid":"ab"}"#);
        assert_eq!(
            serde_json::from_str::<AnchorStatus>(&text).unwrap(),
            pending
        );
        assert!(serde_json::from_str::<AnchorStatus>(r#"{"state":"lost"}"#).is_err());
    }
}
