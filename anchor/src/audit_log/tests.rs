//! The audit log's correct behaviour, specified by RFC 6962's published vectors, roots
//! computed by hand, the independent `ct-merkle` implementation, and every proof of small
//! logs. What it must refuse is in `adversarial_tests.rs`.

use super::tree::{consistency_path_len, inclusion_path_len};
use super::*;

pub(super) fn d(hex: &str) -> Digest {
    hex.parse().unwrap()
}

pub(super) fn size(n: u64) -> TreeSize {
    TreeSize::new(n)
}

pub(super) fn idx(n: u64) -> LeafIndex {
    LeafIndex::new(n)
}

/// The eight leaves of the Certificate Transparency reference tests (RFC 6962 test data, as in
/// transparency-dev/merkle `testonly/reference_test.go`).
const REFERENCE_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Their published roots at sizes 1 to 8.
const REFERENCE_ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn reference_entries() -> Vec<Vec<u8>> {
    REFERENCE_LEAVES
        .iter()
        .map(|h| hex::decode(h).unwrap())
        .collect()
}

pub(super) fn reference_log() -> AuditLog {
    AuditLog::from_entries(reference_entries())
}

pub(super) fn numbered_entries(n: u64) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("entry {i}").into_bytes()).collect()
}

// ---- Known answers ---------------------------------------------------------------------

#[test]
fn the_empty_log_has_the_hash_of_nothing_as_root() {
    assert_eq!(
        AuditLog::new().root(),
        d("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
}

#[test]
fn roots_match_the_published_rfc_6962_reference_roots() {
    let log = reference_log();
    for (n, expected) in (1..).zip(REFERENCE_ROOTS) {
        assert_eq!(
            log.tree_head_at(size(n)).unwrap().root,
            d(expected),
            "size {n}"
        );
    }
}

#[test]
fn roots_match_rfc_6962_computed_by_hand_for_sizes_1_2_3_and_7() {
    // Written out from RFC 6962 §2.1 with nothing but SHA-256, independent of `tree`.
    let h = |parts: &[&[u8]]| Digest::sha256(&parts.concat());
    let entries = numbered_entries(7);
    let l: Vec<Digest> = entries.iter().map(|e| h(&[&[0x00], e])).collect();
    let n = |a: &Digest, b: &Digest| h(&[&[0x01], a.as_bytes(), b.as_bytes()]);

    let root1 = l[0];
    let root2 = n(&l[0], &l[1]);
    let root3 = n(&n(&l[0], &l[1]), &l[2]);
    let left4 = n(&n(&l[0], &l[1]), &n(&l[2], &l[3]));
    let root7 = n(&left4, &n(&n(&l[4], &l[5]), &l[6]));

    let log = AuditLog::from_entries(&entries);
    for (n, expected) in [(1, root1), (2, root2), (3, root3), (7, root7)] {
        assert_eq!(
            log.tree_head_at(size(n)).unwrap().root,
            expected,
            "size {n}"
        );
    }
}

#[test]
fn proofs_match_the_published_reference_proofs() {
    let log = reference_log();
    let inclusion = [
        (0, 1, ""),
        (
            0,
            2,
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        ),
        (
            1,
            2,
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        ),
        (
            2,
            3,
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        ),
        (
            1,
            5,
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d\
                5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e\
                bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
        (
            0,
            8,
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7\
                5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e\
                6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
        (
            5,
            8,
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b\
                ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0\
                d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ];
    for (index, n, expected) in inclusion {
        let proof = log.inclusion_proof(idx(index), size(n)).unwrap();
        assert_eq!(
            hex::encode(concat(proof.path())),
            expected,
            "PATH({index}, {n})"
        );
    }
    let consistency = [
        (1, 1, ""),
        (
            1,
            8,
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7\
                5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e\
                6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
        (
            2,
            5,
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e\
                bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
        (
            6,
            8,
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a\
                ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0\
                d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ];
    for (old, new, expected) in consistency {
        let proof = log.consistency_proof(size(old), size(new)).unwrap();
        assert_eq!(
            hex::encode(concat(proof.path())),
            expected,
            "PROOF({old}, {new})"
        );
    }
}

// ---- Agreement with ct-merkle, an independent implementation --------------------------

/// `ct-merkle` 0.3 wants a `digest` 0.11 hash; the workspace's `sha2` is 0.10. This adapter
/// is SHA-256 from `sha2` 0.10 behind `ct-merkle`'s re-exported `digest` 0.11 traits.
mod ct {
    use ct_merkle::digest::{consts::U32, FixedOutput, HashMarker, Output, OutputSizeUser, Update};

    #[derive(Clone, Default)]
    pub struct Sha256(sha2::Sha256);

    impl HashMarker for Sha256 {}

    impl OutputSizeUser for Sha256 {
        type OutputSize = U32;
    }

    impl Update for Sha256 {
        fn update(&mut self, data: &[u8]) {
            sha2::Digest::update(&mut self.0, data);
        }
    }

    impl FixedOutput for Sha256 {
        fn finalize_into(self, out: &mut Output<Self>) {
            out.copy_from_slice(&sha2::Digest::finalize(self.0));
        }
    }

    pub type Tree = ct_merkle::mem_backed_tree::MemoryBackedTree<Sha256, Vec<u8>>;
    pub type Root = ct_merkle::RootHash<Sha256>;
}

#[test]
fn roots_and_proofs_agree_with_ct_merkle_byte_for_byte() {
    let entries = numbered_entries(40);
    let mut ours = AuditLog::new();
    let mut theirs = ct::Tree::new();
    let mut their_roots: Vec<ct::Root> = Vec::new();
    for entry in &entries {
        ours.append(entry);
        theirs.push(entry.clone());
        their_roots.push(theirs.root());
        let n = ours.len().get();
        assert_eq!(
            ours.root().as_bytes()[..],
            theirs.root().as_bytes()[..],
            "root at {n}"
        );

        for i in 0..n {
            let proof = ours.inclusion_proof(idx(i), size(n)).unwrap();
            let bytes = concat(proof.path());
            assert_eq!(
                bytes,
                theirs.prove_inclusion(i as usize).as_bytes(),
                "PATH({i}, {n})"
            );
            let theirs_parsed =
                ct_merkle::InclusionProof::<ct::Sha256>::try_from_bytes(bytes).unwrap();
            theirs
                .root()
                .verify_inclusion(entry_at(&entries, i), i, &theirs_parsed)
                .unwrap();
        }
        for m in 1..=n {
            let proof = ours.consistency_proof(size(m), size(n)).unwrap();
            let bytes = concat(proof.path());
            let expected = theirs.prove_consistency((n - m) as usize);
            assert_eq!(bytes, expected.as_bytes(), "PROOF({m}, {n})");
            let parsed = ct_merkle::ConsistencyProof::<ct::Sha256>::try_from_bytes(bytes).unwrap();
            theirs
                .root()
                .verify_consistency(&their_roots[m as usize - 1], &parsed)
                .unwrap();
        }
    }
}

pub(super) fn concat(path: &[Digest]) -> Vec<u8> {
    path.iter().flat_map(|hash| hash.to_bytes()).collect()
}

pub(super) fn entry_at(entries: &[Vec<u8>], i: u64) -> &Vec<u8> {
    &entries[i as usize]
}

// ---- Every proof of small logs, at every earlier size ----------------------------------

#[test]
fn every_inclusion_and_consistency_proof_of_a_small_log_verifies_at_every_size() {
    let entries = numbered_entries(33);
    let log = AuditLog::from_entries(&entries);
    for n in 0..=33 {
        let head = log.tree_head_at(size(n)).unwrap();
        for i in 0..n {
            let proof = log.inclusion_proof(idx(i), size(n)).unwrap();
            proof.verify(entry_at(&entries, i), &head).unwrap();
        }
        for m in 0..=n {
            let old = log.tree_head_at(size(m)).unwrap();
            log.consistency_proof(size(m), size(n))
                .unwrap()
                .verify(&old, &head)
                .unwrap();
        }
    }
}

#[test]
fn expected_proof_lengths_match_generated_proofs() {
    let log = AuditLog::from_entries(numbered_entries(70));
    for n in 1..=70 {
        for i in 0..n {
            let proof = log.inclusion_proof(idx(i), size(n)).unwrap();
            assert_eq!(
                proof.path().len(),
                inclusion_path_len(i, n),
                "PATH({i}, {n})"
            );
        }
        for m in 0..=n {
            let proof = log.consistency_proof(size(m), size(n)).unwrap();
            assert_eq!(
                proof.path().len(),
                consistency_path_len(m, n),
                "PROOF({m}, {n})"
            );
        }
    }
}

#[test]
fn appending_and_restoring_from_entries_give_the_same_log() {
    let entries = numbered_entries(100);
    let mut appended = AuditLog::new();
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(appended.append(entry), idx(i as u64));
        let restored = AuditLog::from_entries(&entries[..=i]);
        assert_eq!(restored.tree_head(), appended.tree_head());
    }
    assert!(!appended.is_empty());
    assert!(format!("{appended:?}").contains("len: 100"));
}
