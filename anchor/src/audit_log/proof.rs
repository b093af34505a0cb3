//! Inclusion and consistency proofs, checked against trusted tree heads only.

use serde::{Deserialize, Serialize};

use super::{tree, AuditLogError, LeafIndex, TreeHead, TreeSize};
use crate::digest::Digest;

/// A proof that an entry is at `leaf_index` in the tree of `tree_size` entries: RFC 6962
/// `PATH`, hashes from the leaf's sibling up to the root's child, shown as hex in JSON.
///
/// Well-formed by construction: the index is inside the tree and the path has exactly the
/// length the two call for, whether built by a log or deserialized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "InclusionProofFields")]
pub struct InclusionProof {
    leaf_index: LeafIndex,
    tree_size: TreeSize,
    path: Vec<Digest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InclusionProofFields {
    leaf_index: LeafIndex,
    tree_size: TreeSize,
    path: Vec<Digest>,
}

impl TryFrom<InclusionProofFields> for InclusionProof {
    type Error = AuditLogError;

    fn try_from(fields: InclusionProofFields) -> Result<Self, Self::Error> {
        Self::new(fields.leaf_index, fields.tree_size, fields.path)
    }
}

impl InclusionProof {
    /// Reads a proof received from elsewhere; refuses an index outside the tree and a path of
    /// the wrong length.
    pub fn new(
        leaf_index: LeafIndex,
        tree_size: TreeSize,
        path: Vec<Digest>,
    ) -> Result<Self, AuditLogError> {
        if leaf_index.0 >= tree_size.0 {
            return Err(AuditLogError::IndexOutOfRange {
                index: leaf_index,
                tree_size,
            });
        }
        let expected = tree::inclusion_path_len(leaf_index.0, tree_size.0);
        if path.len() != expected {
            return Err(AuditLogError::WrongProofLength {
                expected,
                actual: path.len(),
            });
        }
        Ok(Self {
            leaf_index,
            tree_size,
            path,
        })
    }

    /// The index of the entry the proof is about.
    pub fn leaf_index(&self) -> LeafIndex {
        self.leaf_index
    }

    /// The size of the tree the proof is about.
    pub fn tree_size(&self) -> TreeSize {
        self.tree_size
    }

    /// The sibling hashes, leaf to root.
    pub fn path(&self) -> &[Digest] {
        &self.path
    }

    /// Checks that `entry` is at [`Self::leaf_index`] in the tree that `head` describes.
    pub fn verify(&self, entry: &[u8], head: &TreeHead) -> Result<(), AuditLogError> {
        if head.size != self.tree_size {
            return Err(AuditLogError::SizeMismatch {
                proof: self.tree_size,
                head: head.size,
            });
        }
        let computed = tree::root_from_inclusion_path(
            self.leaf_index.0,
            self.tree_size.0,
            tree::leaf_hash(entry),
            &self.path,
        )?;
        if computed != head.root {
            return Err(AuditLogError::RootMismatch {
                expected: head.root,
                computed,
            });
        }
        Ok(())
    }
}

/// A proof that the tree of `new_size` entries extends the tree of `old_size` entries: RFC
/// 6962 `PROOF`, shown as hex in JSON. Empty when `old_size` is 0 or equals `new_size`.
///
/// Well-formed by construction: `old_size <= new_size` and the path has exactly the length
/// the two call for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ConsistencyProofFields")]
pub struct ConsistencyProof {
    old_size: TreeSize,
    new_size: TreeSize,
    path: Vec<Digest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsistencyProofFields {
    old_size: TreeSize,
    new_size: TreeSize,
    path: Vec<Digest>,
}

impl TryFrom<ConsistencyProofFields> for ConsistencyProof {
    type Error = AuditLogError;

    fn try_from(fields: ConsistencyProofFields) -> Result<Self, Self::Error> {
        Self::new(fields.old_size, fields.new_size, fields.path)
    }
}

impl ConsistencyProof {
    /// Reads a proof received from elsewhere; refuses sizes in the wrong order and a path of
    /// the wrong length.
    pub fn new(
        old_size: TreeSize,
        new_size: TreeSize,
        path: Vec<Digest>,
    ) -> Result<Self, AuditLogError> {
        if old_size > new_size {
            return Err(AuditLogError::OldSizeLarger {
                old: old_size,
                new: new_size,
            });
        }
        let expected = tree::consistency_path_len(old_size.0, new_size.0);
        if path.len() != expected {
            return Err(AuditLogError::WrongProofLength {
                expected,
                actual: path.len(),
            });
        }
        Ok(Self {
            old_size,
            new_size,
            path,
        })
    }

    /// The size of the older tree.
    pub fn old_size(&self) -> TreeSize {
        self.old_size
    }

    /// The size of the newer tree.
    pub fn new_size(&self) -> TreeSize {
        self.new_size
    }

    /// The proof's hashes, in RFC 6962 order.
    pub fn path(&self) -> &[Digest] {
        &self.path
    }

    /// Checks that the tree `new` describes extends the tree `old` describes (both trusted,
    /// e.g. from verified checkpoints).
    pub fn verify(&self, old: &TreeHead, new: &TreeHead) -> Result<(), AuditLogError> {
        for (proof, head) in [(self.old_size, old.size), (self.new_size, new.size)] {
            if proof != head {
                return Err(AuditLogError::SizeMismatch { proof, head });
            }
        }
        tree::verify_consistency_path((old.size.0, &old.root), (new.size.0, &new.root), &self.path)
    }
}
