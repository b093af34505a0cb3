//! Batch roots: many member digests under one RFC 6962 root, for IoT-scale anchoring.
//!
//! One transaction per device cannot scale (Bitcoin carries a few transactions per second in
//! total), so a party anchors one [`Batch::root`] in one OP_RETURN and gives each member a
//! [`BatchMembershipProof`]; with the anchor proof of the root's transaction, a member can
//! show that its digest was anchored.
//!
//! The tree is the audit log's RFC 6962 tree (same hashing, same proof format): member `i`
//! is leaf `i`, whose data is the member's 32 digest bytes, so its leaf hash is
//! `SHA-256(0x00 ‖ digest)`. Even a one-member batch's root is that leaf hash, never the
//! member digest itself. Building a batch costs about two hashes per member; a proof is
//! `O(log n)` stored hashes.
//!
//! This module does not anchor anything, deduplicate or sort members (a member listed twice
//! simply has two indices), or limit the batch size beyond what memory allows (about 64
//! bytes per member).
//!
//! ```
//! # use milagro_anchor::{batch::Batch, digest::Digest, audit_log::LeafIndex};
//! let members: Vec<Digest> = (0u32..1000).map(|i| Digest::sha256(&i.to_be_bytes())).collect();
//! let batch = Batch::build(&members)?;
//! let proof = batch.proof_for(LeafIndex::new(7))?;
//! proof.verify(&members[7], &batch.root())?;
//! # Ok::<(), milagro_anchor::batch::BatchError>(())
//! ```

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::audit_log::tree::{self, Tree};
use crate::audit_log::{AuditLogError, InclusionProof, LeafIndex, TreeHead, TreeSize};
use crate::digest::Digest;

/// Why a batch could not be built, or a membership proof could not be made or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// A batch needs at least one member.
    #[error("a batch needs at least one member")]
    Empty,
    /// The index is not inside the batch (misuse, or a malformed proof).
    #[error("member index {index} is not below batch size {size}")]
    IndexOutOfRange {
        /// The index asked for or claimed.
        index: LeafIndex,
        /// The batch size.
        size: TreeSize,
    },
    /// The proof is malformed, or does not lead from the member to the root.
    #[error("invalid batch membership proof")]
    InvalidProof(#[source] AuditLogError),
}

/// Member digests under one RFC 6962 root, keeping what it takes to prove each membership.
#[derive(Clone)]
pub struct Batch {
    tree: Tree,
}

impl Batch {
    /// Builds the tree over `members`, in order; refuses an empty batch.
    pub fn build(members: &[Digest]) -> Result<Self, BatchError> {
        if members.is_empty() {
            return Err(BatchError::Empty);
        }
        let leaves = members
            .iter()
            .map(|member| tree::leaf_hash(member.as_bytes()))
            .collect();
        Ok(Self {
            tree: Tree::from_leaf_hashes(leaves),
        })
    }

    /// The root to anchor.
    pub fn root(&self) -> Digest {
        self.tree.root(self.tree.len())
    }

    /// The number of members (at least one).
    pub fn size(&self) -> TreeSize {
        TreeSize::new(self.tree.len())
    }

    /// The membership proof of member `index`.
    pub fn proof_for(&self, index: LeafIndex) -> Result<BatchMembershipProof, BatchError> {
        let size = self.size();
        if index.get() >= size.get() {
            return Err(BatchError::IndexOutOfRange { index, size });
        }
        BatchMembershipProof::new(
            index,
            size,
            self.tree.inclusion_path(index.get(), size.get()),
        )
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("size", &self.tree.len())
            .field("root", &self.root())
            .finish()
    }
}

/// A proof that a digest is member `index` of a batch of `size` members.
///
/// It *is* an RFC 6962 [`InclusionProof`] whose leaf data is the member's 32 digest bytes,
/// and its JSON is the same (`leaf_index`, `tree_size`, hex `path`). Well-formed by
/// construction: the index is inside the batch and the path has exactly the length the two
/// call for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BatchMembershipProof(InclusionProof);

impl BatchMembershipProof {
    /// Reads a proof received from elsewhere; refuses an index outside the batch and a path
    /// of the wrong length.
    pub fn new(index: LeafIndex, size: TreeSize, path: Vec<Digest>) -> Result<Self, BatchError> {
        InclusionProof::new(index, size, path)
            .map(Self)
            .map_err(|e| match e {
                AuditLogError::IndexOutOfRange { index, tree_size } => {
                    BatchError::IndexOutOfRange {
                        index,
                        size: tree_size,
                    }
                }
                other => BatchError::InvalidProof(other),
            })
    }

    /// The member's position in the batch.
    pub fn index(&self) -> LeafIndex {
        self.0.leaf_index()
    }

    /// The number of members in the batch.
    pub fn size(&self) -> TreeSize {
        self.0.tree_size()
    }

    /// The sibling hashes, leaf to root.
    pub fn path(&self) -> &[Digest] {
        self.0.path()
    }

    /// The same proof as an audit-log inclusion proof.
    pub fn as_inclusion_proof(&self) -> &InclusionProof {
        &self.0
    }

    /// Checks that `member` is in the batch whose root is `root`.
    pub fn verify(&self, member: &Digest, root: &Digest) -> Result<(), BatchError> {
        let head = TreeHead {
            size: self.size(),
            root: *root,
        };
        self.0
            .verify(member.as_bytes(), &head)
            .map_err(BatchError::InvalidProof)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panicking test is a failing test
mod tests {
    use super::*;

    fn members(n: u32) -> Vec<Digest> {
        (0..n).map(|i| Digest::sha256(&i.to_be_bytes())).collect()
    }

    #[test]
    fn an_empty_batch_is_refused() {
        assert_eq!(Batch::build(&[]).unwrap_err(), BatchError::Empty);
    }

    #[test]
    fn a_single_member_batch_root_is_its_leaf_hash_not_the_digest() {
        let member = Digest::sha256(b"birth certificate");
        let batch = Batch::build(&[member]).unwrap();
        let mut preimage = vec![0x00];
        preimage.extend_from_slice(member.as_bytes());
        assert_eq!(batch.root(), Digest::sha256(&preimage));
        assert_ne!(batch.root(), member);
        let proof = batch.proof_for(LeafIndex::new(0)).unwrap();
        assert!(proof.path().is_empty());
        proof.verify(&member, &batch.root()).unwrap();
    }

    #[test]
    fn the_root_is_the_audit_log_root_of_the_digest_bytes() {
        let members = members(37);
        let log = crate::audit_log::AuditLog::from_entries(members.iter().map(Digest::as_bytes));
        assert_eq!(Batch::build(&members).unwrap().root(), log.root());
    }

    #[test]
    fn every_member_of_every_small_batch_proves_membership() {
        for n in 1..=70 {
            let members = members(n);
            let batch = Batch::build(&members).unwrap();
            assert_eq!(batch.size(), TreeSize::new(n.into()));
            for (i, member) in members.iter().enumerate() {
                let proof = batch.proof_for(LeafIndex::new(i as u64)).unwrap();
                proof.verify(member, &batch.root()).unwrap();
            }
        }
    }

    #[test]
    fn a_non_member_or_a_wrong_root_is_refused() {
        let members = members(10);
        let batch = Batch::build(&members).unwrap();
        let proof = batch.proof_for(LeafIndex::new(3)).unwrap();
        let outsider = Digest::sha256(b"not in the batch");
        assert!(matches!(
            proof.verify(&outsider, &batch.root()),
            Err(BatchError::InvalidProof(AuditLogError::RootMismatch { .. }))
        ));
        assert!(proof.verify(&members[4], &batch.root()).is_err());
        assert!(proof.verify(&members[3], &outsider).is_err());
    }

    #[test]
    fn out_of_range_indices_and_wrong_lengths_are_refused() {
        let batch = Batch::build(&members(5)).unwrap();
        assert_eq!(
            batch.proof_for(LeafIndex::new(5)).unwrap_err(),
            BatchError::IndexOutOfRange {
                index: LeafIndex::new(5),
                size: TreeSize::new(5)
            }
        );
        let path = batch.proof_for(LeafIndex::new(1)).unwrap().path().to_vec();
        assert!(matches!(
            BatchMembershipProof::new(LeafIndex::new(1), TreeSize::new(5), path[1..].to_vec()),
            Err(BatchError::InvalidProof(AuditLogError::WrongProofLength {
                expected: 3,
                actual: 2
            }))
        ));
        assert!(matches!(
            BatchMembershipProof::new(LeafIndex::new(9), TreeSize::new(5), path),
            Err(BatchError::IndexOutOfRange { .. })
        ));
    }

    #[test]
    fn proofs_round_trip_through_json_and_malformed_json_is_refused() {
        let members = members(9);
        let batch = Batch::build(&members).unwrap();
        let proof = batch.proof_for(LeafIndex::new(8)).unwrap();
        let json = serde_json::to_string(&proof).unwrap();
        assert!(
            json.starts_with(r#"{"leaf_index":8,"tree_size":9,"path":[""#),
            "{json}"
        );
        let back: BatchMembershipProof = serde_json::from_str(&json).unwrap();
        back.verify(&members[8], &batch.root()).unwrap();

        let wrong_size = json.replace(r#""tree_size":9"#, r#""tree_size":8"#);
        assert!(serde_json::from_str::<BatchMembershipProof>(&wrong_size).is_err());
        let extra_field = json.replacen('{', r#"{"root":"00","#, 1);
        assert!(serde_json::from_str::<BatchMembershipProof>(&extra_field).is_err());
    }

    #[test]
    fn a_flipped_bit_anywhere_in_a_proof_is_detected() {
        let members = members(100);
        let batch = Batch::build(&members).unwrap();
        let proof = batch.proof_for(LeafIndex::new(42)).unwrap();
        for (i, _) in proof.path().iter().enumerate() {
            let mut path = proof.path().to_vec();
            let mut bytes = path[i].to_bytes();
            bytes[i % 32] ^= 0x80;
            path[i] = Digest::from_bytes(bytes);
            let tampered = BatchMembershipProof::new(proof.index(), proof.size(), path).unwrap();
            assert!(tampered.verify(&members[42], &batch.root()).is_err());
        }
    }

    /// Run with `cargo test --release -- --ignored a_million`: builds a 1,000,000-member
    /// batch and proves a sample of members.
    #[test]
    #[ignore = "slow without --release"]
    fn a_million_members_build_and_prove_quickly() {
        let members: Vec<Digest> = (0u32..1_000_000)
            .map(|i| Digest::sha256(&i.to_be_bytes()))
            .collect();
        let started = std::time::Instant::now();
        let batch = Batch::build(&members).unwrap();
        let built = started.elapsed();
        let started = std::time::Instant::now();
        for i in (0..members.len()).step_by(997).chain([members.len() - 1]) {
            let proof = batch.proof_for(LeafIndex::new(i as u64)).unwrap();
            proof.verify(&members[i], &batch.root()).unwrap();
        }
        let proved = started.elapsed();
        eprintln!(
            "1,000,000 members: built in {built:?}, 1,004 proofs made and checked in {proved:?}"
        );
        assert!(built.as_secs() < 3, "built in {built:?}");
    }
}
