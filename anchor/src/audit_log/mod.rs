//! An append-only RFC 6962 Merkle audit log, with inclusion and consistency proofs.
//!
//! Every TBS registration, IdP authentication and D-TA share issuance is appended as an
//! entry; the log's root at some size is what a [`crate::checkpoint`] states and signs, and
//! that checkpoint's digest is what gets anchored on chain. The tree is exactly RFC 6962's: leaf `SHA-256(0x00 ‖ entry)`, node
//! `SHA-256(0x01 ‖ left ‖ right)`, empty tree `SHA-256("")`.
//!
//! What this module does:
//! - [`AuditLog`] keeps the hashes needed to answer for any size it has reached: roots,
//!   inclusion proofs and consistency proofs at the current size *or any earlier one* (a
//!   client holds an older checkpoint, not the live tree).
//! - [`InclusionProof`] and [`ConsistencyProof`] are checked by a verifier that has only the
//!   proof and the [`TreeHead`]s it trusts; verification never touches an [`AuditLog`].
//!
//! What it does not do: store entries (the caller persists them, and rebuilds the log with
//! [`AuditLog::from_entries`] after a restart), sign anything (see [`crate::checkpoint`]), or
//! read a clock.
//!
//! ```
//! # use milagro_anchor::audit_log::{AuditLog, LeafIndex, TreeSize};
//! let mut log = AuditLog::new();
//! let index = log.append(b"tbs: registered device 42");
//! log.append(b"idp: authenticated device 42");
//! let head = log.tree_head();
//!
//! let proof = log.inclusion_proof(index, head.size)?;
//! proof.verify(b"tbs: registered device 42", &head)?;
//!
//! let earlier = log.tree_head_at(TreeSize::new(1))?;
//! log.consistency_proof(earlier.size, head.size)?.verify(&earlier, &head)?;
//! # Ok::<(), milagro_anchor::audit_log::AuditLogError>(())
//! ```

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

mod proof;
pub(crate) mod tree;

pub use proof::{ConsistencyProof, InclusionProof};
use tree::Tree;

/// A number of leaves: the size of a log, or of the tree a proof or checkpoint refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TreeSize(u64);

/// The zero-based position of an entry in the log (or of a member in a batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeafIndex(u64);

macro_rules! counter {
    ($name:ident) => {
        impl $name {
            /// Wraps a number; every `u64` is meaningful.
            pub const fn new(value: u64) -> Self {
                Self(value)
            }

            /// The number.
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        impl From<u64> for $name {
            fn from(value: u64) -> Self {
                Self(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}
counter!(TreeSize);
counter!(LeafIndex);

/// A tree size with the root hash of the tree at that size: what a checkpoint states and a
/// verifier trusts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TreeHead {
    /// The number of leaves.
    pub size: TreeSize,
    /// The RFC 6962 Merkle Tree Hash of those leaves.
    pub root: Digest,
}

/// Why a proof could not be made or does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditLogError {
    /// The leaf index is not inside the tree (misuse, or a malformed proof).
    #[error("leaf index {index} is not below tree size {tree_size}")]
    IndexOutOfRange {
        /// The index asked for or claimed.
        index: LeafIndex,
        /// The size of the tree.
        tree_size: TreeSize,
    },
    /// A proof was asked for a size the log has not reached yet (misuse).
    #[error("tree size {requested} is beyond the log's {len} entries")]
    SizeBeyondLog {
        /// The size asked for.
        requested: TreeSize,
        /// The log's current size.
        len: TreeSize,
    },
    /// A consistency proof from a larger tree to a smaller one (misuse, or a malformed proof).
    #[error("old tree size {old} is larger than new tree size {new}")]
    OldSizeLarger {
        /// The claimed older size.
        old: TreeSize,
        /// The claimed newer size.
        new: TreeSize,
    },
    /// The proof has more or fewer hashes than its sizes and index call for.
    #[error("proof should have {expected} hashes, has {actual}")]
    WrongProofLength {
        /// The exact number its sizes and index call for.
        expected: usize,
        /// The number it has.
        actual: usize,
    },
    /// The proof is about a different tree size than the tree head it is checked against.
    #[error("proof is for tree size {proof}, the tree head is at size {head}")]
    SizeMismatch {
        /// The size the proof is about.
        proof: TreeSize,
        /// The size of the trusted tree head.
        head: TreeSize,
    },
    /// The proof leads to a root other than the trusted (new) root: the entry is not in the
    /// tree, or the new tree does not extend the old one.
    #[error("proof leads to root {computed}, the tree head says {expected}")]
    RootMismatch {
        /// The trusted root.
        expected: Digest,
        /// The root the proof leads to.
        computed: Digest,
    },
    /// A consistency proof leads to an old root other than the trusted old root.
    #[error("proof leads to old root {computed}, the old tree head says {expected}")]
    OldRootMismatch {
        /// The trusted old root.
        expected: Digest,
        /// The old root the proof leads to.
        computed: Digest,
    },
}

/// The RFC 6962 leaf hash of an entry, `SHA-256(0x00 ‖ entry)`.
pub fn leaf_hash(entry: &[u8]) -> Digest {
    tree::leaf_hash(entry)
}

/// An append-only RFC 6962 log of entries, kept as hashes only (about 64 bytes per entry).
#[derive(Clone, Default)]
pub struct AuditLog {
    tree: Tree,
}

impl AuditLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a log from its stored entries, in order (after a restart).
    pub fn from_entries<I>(entries: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let leaves = entries
            .into_iter()
            .map(|entry| tree::leaf_hash(entry.as_ref()))
            .collect();
        Self {
            tree: Tree::from_leaf_hashes(leaves),
        }
    }

    /// Appends an entry and returns its index.
    pub fn append(&mut self, entry: &[u8]) -> LeafIndex {
        let index = LeafIndex(self.tree.len());
        self.tree.push(tree::leaf_hash(entry));
        index
    }

    /// The number of entries.
    pub fn len(&self) -> TreeSize {
        TreeSize(self.tree.len())
    }

    /// Whether no entry was appended yet.
    pub fn is_empty(&self) -> bool {
        self.tree.len() == 0
    }

    /// The root at the current size (`SHA-256("")` while empty).
    pub fn root(&self) -> Digest {
        self.tree.root(self.tree.len())
    }

    /// The current size and root.
    pub fn tree_head(&self) -> TreeHead {
        TreeHead {
            size: self.len(),
            root: self.root(),
        }
    }

    /// The size and root the log had when it held `size` entries.
    pub fn tree_head_at(&self, size: TreeSize) -> Result<TreeHead, AuditLogError> {
        self.check_reached(size)?;
        Ok(TreeHead {
            size,
            root: self.tree.root(size.0),
        })
    }

    /// Proves that entry `index` is in the tree of the first `tree_size` entries.
    pub fn inclusion_proof(
        &self,
        index: LeafIndex,
        tree_size: TreeSize,
    ) -> Result<InclusionProof, AuditLogError> {
        self.check_reached(tree_size)?;
        if index.0 >= tree_size.0 {
            return Err(AuditLogError::IndexOutOfRange { index, tree_size });
        }
        InclusionProof::new(
            index,
            tree_size,
            self.tree.inclusion_path(index.0, tree_size.0),
        )
    }

    /// Proves that the tree of the first `new_size` entries extends the tree of the first
    /// `old_size`. From size 0 or to the same size the proof is empty.
    pub fn consistency_proof(
        &self,
        old_size: TreeSize,
        new_size: TreeSize,
    ) -> Result<ConsistencyProof, AuditLogError> {
        self.check_reached(new_size)?;
        if old_size > new_size {
            return Err(AuditLogError::OldSizeLarger {
                old: old_size,
                new: new_size,
            });
        }
        let path = if old_size.0 == 0 {
            Vec::new()
        } else {
            self.tree.consistency_path(old_size.0, new_size.0)
        };
        ConsistencyProof::new(old_size, new_size, path)
    }

    fn check_reached(&self, size: TreeSize) -> Result<(), AuditLogError> {
        if size > self.len() {
            return Err(AuditLogError::SizeBeyondLog {
                requested: size,
                len: self.len(),
            });
        }
        Ok(())
    }
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("len", &self.tree.len())
            .field("root", &self.root())
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panicking test is a failing test
mod adversarial_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panicking test is a failing test
mod tests;
