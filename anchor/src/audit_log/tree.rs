//! The RFC 6962 Merkle tree itself: hashing, proof generation and proof verification.
//!
//! Shared by the audit log and by batch roots ([`crate::batch`]). Generation works on a
//! [`Tree`] of stored subtree hashes; verification works on a proof and a root alone and never
//! touches a `Tree`. Proofs are the `PATH` and `PROOF` lists of RFC 6962 §2.1.1–2.1.2, checked
//! with the algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2.

use sha2::{Digest as _, Sha256};

use super::AuditLogError;
use crate::digest::Digest;

/// `SHA-256(0x00 ‖ data)`: the hash of a leaf.
pub(crate) fn leaf_hash(data: &[u8]) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(data);
    Digest::from_bytes(hasher.finalize().into())
}

/// `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node.
pub(crate) fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left.as_bytes());
    hasher.update(right.as_bytes());
    Digest::from_bytes(hasher.finalize().into())
}

/// `SHA-256("")`: the root of the empty tree.
pub(crate) fn empty_root() -> Digest {
    Digest::sha256(b"")
}

/// The hashes of every complete, aligned subtree of the leaves appended so far:
/// `levels[k][i]` is the root of leaves `i·2ᵏ .. (i+1)·2ᵏ`.
///
/// About two hashes per leaf. Any RFC 6962 subtree is the fold of at most 64 stored hashes,
/// so the root and every proof, at the current size or any earlier one, cost `O(log² n)`
/// hashes at worst and usually `O(log n)` look-ups.
#[derive(Clone, Default)]
pub(crate) struct Tree {
    /// Invariant: `levels[k + 1]` holds exactly `levels[k].len() / 2` hashes, each the node
    /// hash of a pair of `levels[k]`; there is no trailing empty level.
    levels: Vec<Vec<Digest>>,
}

impl Tree {
    /// Builds the tree over already-hashed leaves, level by level.
    pub(crate) fn from_leaf_hashes(leaves: Vec<Digest>) -> Self {
        let mut levels = Vec::new();
        let mut current = leaves;
        while !current.is_empty() {
            let next: Vec<Digest> = current
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            levels.push(current);
            current = next;
        }
        Self { levels }
    }

    /// Appends one leaf hash, completing every subtree it closes (amortised `O(1)`).
    pub(crate) fn push(&mut self, leaf: Digest) {
        let mut node = leaf;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(node);
            let len = row.len();
            if len % 2 == 1 {
                return;
            }
            node = node_hash(&row[len - 2], &row[len - 1]);
            level += 1;
        }
    }

    /// The number of leaves.
    pub(crate) fn len(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// The Merkle Tree Hash of the first `size` leaves. Requires `size <= self.len()`.
    pub(crate) fn root(&self, size: u64) -> Digest {
        if size == 0 {
            empty_root()
        } else {
            self.subtree(0, size)
        }
    }

    /// RFC 6962 `PATH(index, D[0:size])`, leaf to root. Requires `index < size <= len`.
    pub(crate) fn inclusion_path(&self, index: u64, size: u64) -> Vec<Digest> {
        let (mut start, mut end) = (0, size);
        let mut top_down = Vec::new();
        while end - start > 1 {
            let split = start + largest_power_of_two_below(end - start);
            if index < split {
                top_down.push(self.subtree(split, end));
                end = split;
            } else {
                top_down.push(self.subtree(start, split));
                start = split;
            }
        }
        top_down.reverse();
        top_down
    }

    /// RFC 6962 `PROOF(old, D[0:new])`. Requires `0 < old <= new <= len`.
    pub(crate) fn consistency_path(&self, old: u64, new: u64) -> Vec<Digest> {
        let (mut start, mut end) = (0, new);
        let mut old_is_whole_subtree = true;
        let mut top_down = Vec::new();
        loop {
            if old - start == end - start {
                if !old_is_whole_subtree {
                    top_down.push(self.subtree(start, end));
                }
                break;
            }
            let split = start + largest_power_of_two_below(end - start);
            if old <= split {
                top_down.push(self.subtree(split, end));
                end = split;
            } else {
                top_down.push(self.subtree(start, split));
                start = split;
                old_is_whole_subtree = false;
            }
        }
        top_down.reverse();
        top_down
    }

    /// The Merkle Tree Hash of leaves `start..end`, for a subtree that occurs in RFC 6962's
    /// recursion: `start` is a multiple of the smallest power of two `>= end - start`.
    ///
    /// Such a range is a run of complete subtrees, one per set bit of its width, largest
    /// first; its hash folds them from the right. Indexing cannot fail for callers that hold
    /// the documented preconditions (checked at the public API): every block lies below
    /// `self.len()`.
    fn subtree(&self, start: u64, end: u64) -> Digest {
        let width = end - start;
        let mut block_end = end;
        let mut folded: Option<Digest> = None;
        for level in 0..u64::BITS {
            let block = 1u64 << level;
            if width & block == 0 {
                continue;
            }
            block_end -= block;
            let hash = self.levels[level as usize][(block_end >> level) as usize];
            folded = Some(match folded {
                None => hash,
                Some(right) => node_hash(&hash, &right),
            });
        }
        folded.unwrap_or_else(empty_root)
    }
}

/// The largest power of two strictly below `n`; requires `n >= 2`.
fn largest_power_of_two_below(n: u64) -> u64 {
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// RFC 9162 §2.1.3.2 split of an inclusion path: hashes below the point where the paths to
/// `index` and to the last leaf part (`inner`), and hashes on the right border above it.
fn decompose(index: u64, size: u64) -> (usize, usize) {
    let inner = u64::BITS - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner as usize, border as usize)
}

/// The exact number of hashes in `PATH(index, D[0:size])`. Requires `index < size`.
pub(crate) fn inclusion_path_len(index: u64, size: u64) -> usize {
    let (inner, border) = decompose(index, size);
    inner + border
}

/// The exact number of hashes in `PROOF(old, D[0:new])`; zero when `old` is 0 or `new`.
/// Requires `old <= new`.
pub(crate) fn consistency_path_len(old: u64, new: u64) -> usize {
    if old == 0 || old >= new {
        return 0;
    }
    let (inner, border) = decompose(old - 1, new);
    let seed = usize::from(!old.is_power_of_two());
    seed + inner.saturating_sub(old.trailing_zeros() as usize) + border
}

/// Recomputes the root of a `size`-leaf tree from a leaf hash at `index` and its path
/// (RFC 9162 §2.1.3.2).
pub(crate) fn root_from_inclusion_path(
    index: u64,
    size: u64,
    leaf: Digest,
    path: &[Digest],
) -> Result<Digest, AuditLogError> {
    if index >= size {
        return Err(AuditLogError::IndexOutOfRange {
            index: index.into(),
            tree_size: size.into(),
        });
    }
    check_len(inclusion_path_len(index, size), path.len())?;
    let (mut fn_, mut sn) = (index, size - 1);
    let mut root = leaf;
    for sibling in path {
        if sn == 0 {
            return Err(wrong_len(inclusion_path_len(index, size), path.len()));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            root = node_hash(sibling, &root);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            root = node_hash(&root, sibling);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(wrong_len(inclusion_path_len(index, size), path.len()));
    }
    Ok(root)
}

/// Checks that a `new`-leaf tree with root `new_root` extends an `old`-leaf tree with root
/// `old_root` (RFC 9162 §2.1.4.2, plus the trivial cases of an empty or unchanged tree).
pub(crate) fn verify_consistency_path(
    (old, old_root): (u64, &Digest),
    (new, new_root): (u64, &Digest),
    path: &[Digest],
) -> Result<(), AuditLogError> {
    if old > new {
        return Err(AuditLogError::OldSizeLarger {
            old: old.into(),
            new: new.into(),
        });
    }
    let expected = consistency_path_len(old, new);
    check_len(expected, path.len())?;
    if old == 0 {
        check_root(old_root, &empty_root(), true)?;
        if new == 0 {
            check_root(new_root, &empty_root(), false)?;
        }
        return Ok(());
    }
    if old == new {
        return check_root(new_root, old_root, false);
    }

    let mut hashes = path.iter();
    let seed = if old.is_power_of_two() {
        *old_root
    } else {
        *hashes.next().ok_or(wrong_len(expected, path.len()))?
    };
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut old_computed, mut new_computed) = (seed, seed);
    for hash in hashes {
        if sn == 0 {
            return Err(wrong_len(expected, path.len()));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            old_computed = node_hash(hash, &old_computed);
            new_computed = node_hash(hash, &new_computed);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            new_computed = node_hash(&new_computed, hash);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(wrong_len(expected, path.len()));
    }
    check_root(old_root, &old_computed, true)?;
    check_root(new_root, &new_computed, false)
}

fn check_len(expected: usize, actual: usize) -> Result<(), AuditLogError> {
    if expected == actual {
        Ok(())
    } else {
        Err(wrong_len(expected, actual))
    }
}

fn wrong_len(expected: usize, actual: usize) -> AuditLogError {
    AuditLogError::WrongProofLength { expected, actual }
}

fn check_root(expected: &Digest, computed: &Digest, old: bool) -> Result<(), AuditLogError> {
    if expected == computed {
        return Ok(());
    }
    let (expected, computed) = (*expected, *computed);
    Err(if old {
        AuditLogError::OldRootMismatch { expected, computed }
    } else {
        AuditLogError::RootMismatch { expected, computed }
    })
}
