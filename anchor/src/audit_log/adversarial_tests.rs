//! What the audit log and its verifiers must refuse (every rejection path, hostile sizes,
//! malformed JSON), and properties of random logs.

use proptest::collection::vec;
use proptest::prelude::*;

use super::tests::{entry_at, idx, numbered_entries, reference_log, size};
use super::tree::{consistency_path_len, inclusion_path_len};
use super::*;

// ---- Rejections ------------------------------------------------------------------------

#[test]
fn a_log_refuses_proofs_outside_what_it_has() {
    let log = AuditLog::from_entries(numbered_entries(5));
    let beyond = AuditLogError::SizeBeyondLog {
        requested: size(6),
        len: size(5),
    };
    assert_eq!(log.inclusion_proof(idx(0), size(6)).unwrap_err(), beyond);
    assert_eq!(log.consistency_proof(size(1), size(6)).unwrap_err(), beyond);
    assert_eq!(log.tree_head_at(size(6)).unwrap_err(), beyond);
    assert_eq!(
        log.inclusion_proof(idx(3), size(3)).unwrap_err(),
        AuditLogError::IndexOutOfRange {
            index: idx(3),
            tree_size: size(3)
        }
    );
    assert_eq!(
        log.consistency_proof(size(4), size(3)).unwrap_err(),
        AuditLogError::OldSizeLarger {
            old: size(4),
            new: size(3)
        }
    );
}

#[test]
fn malformed_proofs_cannot_be_constructed() {
    let three = vec![Digest::sha256(b"x"); 3];
    assert!(matches!(
        InclusionProof::new(idx(5), size(5), three.clone()),
        Err(AuditLogError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        InclusionProof::new(idx(0), size(0), vec![]),
        Err(AuditLogError::IndexOutOfRange { .. })
    ));
    assert_eq!(
        InclusionProof::new(idx(1), size(5), three[..2].to_vec()).unwrap_err(),
        AuditLogError::WrongProofLength {
            expected: 3,
            actual: 2
        }
    );
    assert_eq!(
        InclusionProof::new(idx(0), size(1), three.clone()).unwrap_err(),
        AuditLogError::WrongProofLength {
            expected: 0,
            actual: 3
        }
    );
    assert!(matches!(
        ConsistencyProof::new(size(6), size(5), vec![]),
        Err(AuditLogError::OldSizeLarger { .. })
    ));
    assert_eq!(
        ConsistencyProof::new(size(5), size(5), three[..1].to_vec()).unwrap_err(),
        AuditLogError::WrongProofLength {
            expected: 0,
            actual: 1
        }
    );
    assert_eq!(
        ConsistencyProof::new(size(0), size(5), three[..1].to_vec()).unwrap_err(),
        AuditLogError::WrongProofLength {
            expected: 0,
            actual: 1
        }
    );
    assert_eq!(
        ConsistencyProof::new(size(6), size(8), vec![]).unwrap_err(),
        AuditLogError::WrongProofLength {
            expected: 3,
            actual: 0
        }
    );
    // The longest possible proofs are bounded: 64 and 65 hashes.
    assert_eq!(inclusion_path_len(0, u64::MAX), 64);
    assert_eq!(consistency_path_len(3, u64::MAX), 65);
}

#[test]
fn an_inclusion_proof_is_refused_for_another_entry_head_or_size() {
    let entries = numbered_entries(7);
    let log = AuditLog::from_entries(&entries);
    let head = log.tree_head();
    let proof = log.inclusion_proof(idx(4), size(7)).unwrap();
    proof.verify(&entries[4], &head).unwrap();

    assert!(matches!(
        proof.verify(&entries[5], &head),
        Err(AuditLogError::RootMismatch { expected, .. }) if expected == head.root
    ));
    let other_root = TreeHead {
        root: Digest::sha256(b"other"),
        ..head
    };
    assert!(matches!(
        proof.verify(&entries[4], &other_root),
        Err(AuditLogError::RootMismatch { .. })
    ));
    let earlier = log.tree_head_at(size(6)).unwrap();
    assert_eq!(
        proof.verify(&entries[4], &earlier).unwrap_err(),
        AuditLogError::SizeMismatch {
            proof: size(7),
            head: size(6)
        }
    );
    // The same path claimed for a neighbouring index does not verify either.
    let moved = InclusionProof::new(idx(5), size(7), proof.path().to_vec()).unwrap();
    assert!(moved.verify(&entries[4], &head).is_err());
}

#[test]
fn a_consistency_proof_is_refused_for_a_forked_or_mismatched_head() {
    let entries = numbered_entries(9);
    let log = AuditLog::from_entries(&entries);
    let (old, new) = (log.tree_head_at(size(5)).unwrap(), log.tree_head());
    let proof = log.consistency_proof(size(5), size(9)).unwrap();
    proof.verify(&old, &new).unwrap();

    // A log that rewrote entry 2 after signing size 5 cannot prove consistency.
    let mut forked_entries = entries.clone();
    forked_entries[2] = b"rewritten".to_vec();
    let forked = AuditLog::from_entries(&forked_entries);
    let forked_proof = forked.consistency_proof(size(5), size(9)).unwrap();
    assert!(matches!(
        forked_proof.verify(&old, &forked.tree_head()),
        Err(AuditLogError::OldRootMismatch { .. })
    ));
    assert!(matches!(
        proof.verify(&old, &forked.tree_head()),
        Err(AuditLogError::RootMismatch { .. })
    ));
    assert_eq!(
        proof
            .verify(&log.tree_head_at(size(4)).unwrap(), &new)
            .unwrap_err(),
        AuditLogError::SizeMismatch {
            proof: size(5),
            head: size(4)
        }
    );
    // Same size, different roots; and "from empty" with a root that is not the empty root.
    let same = log.consistency_proof(size(9), size(9)).unwrap();
    assert!(matches!(
        same.verify(&new, &forked.tree_head()),
        Err(AuditLogError::RootMismatch { .. })
    ));
    let from_empty = log.consistency_proof(size(0), size(9)).unwrap();
    from_empty
        .verify(&AuditLog::new().tree_head(), &new)
        .unwrap();
    let bogus_empty = TreeHead {
        size: size(0),
        root: new.root,
    };
    assert!(matches!(
        from_empty.verify(&bogus_empty, &new),
        Err(AuditLogError::OldRootMismatch { .. })
    ));
}

#[test]
fn hostile_sizes_near_u64_max_are_refused_without_panicking() {
    let huge = size(u64::MAX);
    let leaf = b"entry";
    let head = TreeHead {
        size: huge,
        root: Digest::sha256(b"root"),
    };
    for index in [0, 1, u64::MAX / 2, u64::MAX / 2 + 1, u64::MAX - 1] {
        let path = vec![Digest::sha256(b"h"); inclusion_path_len(index, huge.get())];
        let proof = InclusionProof::new(idx(index), huge, path).unwrap();
        assert!(matches!(
            proof.verify(leaf, &head),
            Err(AuditLogError::RootMismatch { .. })
        ));
    }
    for old in [1, 2, 3, u64::MAX / 2 + 1, u64::MAX - 1] {
        let path = vec![Digest::sha256(b"h"); consistency_path_len(old, huge.get())];
        let proof = ConsistencyProof::new(size(old), huge, path).unwrap();
        let old_head = TreeHead {
            size: size(old),
            ..head
        };
        assert!(proof.verify(&old_head, &head).is_err());
    }
}

// ---- Serialization ---------------------------------------------------------------------

#[test]
fn proofs_serialize_as_hex_and_deserialization_rechecks_their_shape() {
    let log = reference_log();
    let inclusion = log.inclusion_proof(idx(2), size(3)).unwrap();
    let json = serde_json::to_string(&inclusion).unwrap();
    assert_eq!(
        json,
        r#"{"leaf_index":2,"tree_size":3,"path":["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]}"#
    );
    assert_eq!(
        serde_json::from_str::<InclusionProof>(&json).unwrap(),
        inclusion
    );
    for bad in [
        json.replace(r#""tree_size":3"#, r#""tree_size":4"#),
        json.replace(r#""leaf_index":2"#, r#""leaf_index":3"#),
        json.replace("fac5", "zzz5"),
        json.replace(r#""path""#, r#""extra":1,"path""#),
    ] {
        assert!(
            serde_json::from_str::<InclusionProof>(&bad).is_err(),
            "{bad}"
        );
    }

    let consistency = log.consistency_proof(size(2), size(5)).unwrap();
    let json = serde_json::to_string(&consistency).unwrap();
    assert!(
        json.starts_with(r#"{"old_size":2,"new_size":5,"path":["5f083f0a"#),
        "{json}"
    );
    assert_eq!(
        serde_json::from_str::<ConsistencyProof>(&json).unwrap(),
        consistency
    );
    let swapped = json.replace(
        r#""old_size":2,"new_size":5"#,
        r#""old_size":5,"new_size":2"#,
    );
    assert!(serde_json::from_str::<ConsistencyProof>(&swapped).is_err());
}

// ---- Properties of random logs ---------------------------------------------------------

fn flip(digest: &Digest, byte: usize) -> Digest {
    let mut bytes = digest.to_bytes();
    bytes[byte % 32] ^= 0x01;
    Digest::from_bytes(bytes)
}

proptest! {
    #[test]
    fn every_inclusion_proof_verifies_and_a_flipped_byte_fails(
        entries in vec(vec(any::<u8>(), 0..48), 1..200),
        (size_pick, index_pick, byte) in any::<(u64, u64, usize)>(),
    ) {
        let log = AuditLog::from_entries(&entries);
        let n = 1 + size_pick % log.len().get();
        let i = index_pick % n;
        let head = log.tree_head_at(size(n)).unwrap();
        let proof = log.inclusion_proof(idx(i), size(n)).unwrap();
        prop_assert_eq!(proof.verify(entry_at(&entries, i), &head), Ok(()));

        let mut entry = entry_at(&entries, i).clone();
        entry.push(0);
        prop_assert!(proof.verify(&entry, &head).is_err());
        if !proof.path().is_empty() {
            let mut path = proof.path().to_vec();
            let at = byte % path.len();
            path[at] = flip(&path[at], byte);
            let tampered = InclusionProof::new(idx(i), size(n), path).unwrap();
            prop_assert!(tampered.verify(entry_at(&entries, i), &head).is_err());
        }
        let flipped_root = TreeHead { root: flip(&head.root, byte), ..head };
        prop_assert!(proof.verify(entry_at(&entries, i), &flipped_root).is_err());
    }

    #[test]
    fn every_consistency_proof_between_random_sizes_verifies_and_a_flipped_byte_fails(
        entries in vec(vec(any::<u8>(), 0..48), 1..200),
        (a, b, byte) in any::<(u64, u64, usize)>(),
    ) {
        let log = AuditLog::from_entries(&entries);
        let len = log.len().get();
        let (a, b) = (a % (len + 1), b % (len + 1));
        let (m, n) = (a.min(b), a.max(b));
        let (old, new) = (log.tree_head_at(size(m)).unwrap(), log.tree_head_at(size(n)).unwrap());
        let proof = log.consistency_proof(size(m), size(n)).unwrap();
        prop_assert_eq!(proof.verify(&old, &new), Ok(()));

        if !proof.path().is_empty() {
            let mut path = proof.path().to_vec();
            let at = byte % path.len();
            path[at] = flip(&path[at], byte);
            let tampered = ConsistencyProof::new(size(m), size(n), path).unwrap();
            prop_assert!(tampered.verify(&old, &new).is_err());
        }
        // Every tree extends the empty tree: from size 0 only the empty new tree has a fixed root.
        let flipped_new = TreeHead { root: flip(&new.root, byte), ..new };
        prop_assert_eq!(proof.verify(&old, &flipped_new).is_err(), m > 0 || n == 0);
        let flipped_old = TreeHead { root: flip(&old.root, byte), ..old };
        prop_assert!(proof.verify(&flipped_old, &new).is_err());
    }

    #[test]
    fn verifying_arbitrary_well_shaped_proofs_never_panics(
        a in any::<u64>(),
        b in any::<u64>(),
        hashes in vec(any::<[u8; 32]>().prop_map(Digest::from_bytes), 65),
        root in any::<[u8; 32]>().prop_map(Digest::from_bytes),
    ) {
        let (small, large) = (a.min(b), a.max(b));
        let head = TreeHead { size: size(large), root };
        if small < large {
            let path = hashes[..inclusion_path_len(small, large)].to_vec();
            let proof = InclusionProof::new(idx(small), size(large), path).unwrap();
            prop_assert!(proof.verify(b"entry", &head).is_err());
        }
        let path = hashes[..consistency_path_len(small, large)].to_vec();
        let proof = ConsistencyProof::new(size(small), size(large), path).unwrap();
        let old = TreeHead { size: size(small), root: flip(&root, 0) };
        prop_assert!(proof.verify(&old, &head).is_err());
    }
}
