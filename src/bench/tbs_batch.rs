//! Batch anchoring capacity: one batch root for `members` device digests.
//!
//! [`Batch::build`] over random digests (the whole-workload figure, best and median of
//! `runs`), the resident memory the built batch holds, the size of one membership proof
//! (binary and JSON), and per-call latencies of [`Batch::proof_for`] and
//! [`BatchMembershipProof::verify`](milagro_anchor::batch::BatchMembershipProof::verify)
//! at random members, next to one bare SHA-256 of 64 bytes (timed in bulk): a verify
//! hashes the leaf and one interior node per path step.

use std::hint::black_box;

use anyhow::{ensure, Context, Result};
use milagro_anchor::audit_log::LeafIndex;
use milagro_anchor::batch::Batch;
use milagro_anchor::digest::Digest;
use rand_core::{OsRng, RngCore};
use serde::Serialize;

use super::stats::{latency, rate, repeat, Latency, Runs};

/// SHA-256 calls per bulk timing pass.
const SHA256_PER_PASS: usize = 1_000_000;

/// Everything this module measures.
#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    /// Members in the batch: all of them are anchored by one root in one `OP_RETURN`.
    pub members: usize,
    /// `Batch::build` over every member.
    pub build: Runs,
    /// Members per second (best build).
    pub build_members_per_s: f64,
    /// Resident memory the built batch holds (the process's RSS before and after one
    /// build, divided by the members).
    pub memory_bytes_per_member: f64,
    /// Sibling hashes in a membership proof (the tree's depth).
    pub proof_path_hashes: usize,
    /// A proof in binary: the path (32 bytes per hash) plus index and size (8 bytes each).
    pub proof_bytes: usize,
    /// A proof as JSON (`leaf_index`, `tree_size`, hex `path`).
    pub proof_json_bytes: usize,
    /// `Batch::proof_for` at a random member.
    pub proof_for: Latency,
    /// `BatchMembershipProof::verify` at a random member.
    pub proof_verify: Latency,
    /// One SHA-256 of 64 bytes, timed in bulk (µs each, best of `runs`).
    pub sha256_64_bytes_us: f64,
    /// `proof_verify.p50_us / sha256_64_bytes_us`.
    pub verify_over_sha256_ratio: f64,
}

/// Measures a batch of `members` random digests; builds `runs` times, latencies `calls`.
pub fn measure(members: usize, runs: usize, calls: usize) -> Result<BatchReport> {
    ensure!(members > 0, "--members must be at least 1");
    let digests: Vec<Digest> = (0..members)
        .map(|_| {
            let mut bytes = [0u8; 32];
            OsRng.fill_bytes(&mut bytes);
            Digest::from_bytes(bytes)
        })
        .collect();

    let before = resident_bytes()?;
    let batch = Batch::build(&digests)?;
    let memory_bytes_per_member = resident_bytes()?.saturating_sub(before) as f64 / members as f64;
    let (build, _) = repeat(runs, || Ok(black_box(Batch::build(&digests)?)))?;
    let root = batch.root();

    let random_index = || LeafIndex::new(OsRng.next_u64() % members as u64);
    let proof = batch.proof_for(random_index())?;
    let proof_path_hashes = proof.path().len();
    let proof_bytes = proof_path_hashes * 32 + 2 * 8;
    let proof_json_bytes = serde_json::to_string(&proof)?.len();

    let proof_for = latency(calls, || {
        black_box(batch.proof_for(black_box(random_index()))?);
        Ok(())
    })?;
    // Proofs of random members made first, so only `verify` is timed.
    let proofs = (0..calls.max(1))
        .map(|_| {
            let index = random_index();
            let member = digests
                .get(usize::try_from(index.get())?)
                .context("index out of the batch")?;
            Ok((*member, batch.proof_for(index)?))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut next = proofs.iter().cycle();
    let proof_verify = latency(calls, || {
        let (member, proof) = next.next().context("no proof")?;
        proof.verify(black_box(member), &root)?;
        Ok(())
    })?;

    let input = [0x5au8; 64];
    let (sha, _) = repeat(runs, || {
        for _ in 0..SHA256_PER_PASS {
            black_box(Digest::sha256(black_box(&input)));
        }
        Ok(())
    })?;
    let sha256_64_bytes_us = sha.best_s * 1e6 / SHA256_PER_PASS as f64;
    Ok(BatchReport {
        members,
        build_members_per_s: build.best_rate(members as f64),
        build,
        memory_bytes_per_member,
        proof_path_hashes,
        proof_bytes,
        proof_json_bytes,
        verify_over_sha256_ratio: rate(proof_verify.p50_us, sha256_64_bytes_us),
        proof_for,
        proof_verify,
        sha256_64_bytes_us,
    })
}

/// The process's resident set size (`/proc/self/statm`, Linux).
fn resident_bytes() -> Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").context("reading /proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .context("no resident size in /proc/self/statm")?
        .parse()?;
    Ok(pages * 4096)
}
