//! Audit log rates, next to the raw SHA-256 rate they are made of.
//!
//! The log ([`milagro_anchor::audit_log::AuditLog`]) is RFC 6962: appending an entry hashes
//! the leaf (`SHA-256(0x00 ‖ entry)`, one compression for a 32-byte entry) and completes on
//! average one interior node (`SHA-256(0x01 ‖ l ‖ r)`, two compressions). So an append
//! should cost about three 32-byte SHA-256s; the `append / sha256` ratio shows how close
//! the log comes. Entries are 32-byte random digests (a service logs the digest of each
//! event record), and SHA-256 is timed over the very same inputs.
//!
//! Proofs are timed one call each, for uniformly random leaves and old sizes in a log of
//! `entries` entries: inclusion and consistency proof generation (from the log) and
//! verification (from the proof and trusted tree heads alone), and the root.
//! No node is needed: `milagro bench auditlog` runs just this.

use std::hint::black_box;

use anyhow::{Context, Result};
use milagro_anchor::audit_log::{AuditLog, LeafIndex, TreeHead, TreeSize};
use milagro_anchor::digest::Digest;
use rand_core::{OsRng, RngCore};
use serde::Serialize;

use super::stats::{latency, num, repeat, runs_text, Latency, Runs, Table};

/// Bytes per entry.
const ENTRY_BYTES: usize = 32;

/// A whole-log pass: timings and per-item figures at the best run.
#[derive(Debug, Clone, Serialize)]
pub struct Pass {
    /// Timings.
    #[serde(flatten)]
    pub runs: Runs,
    /// Items per second (best run).
    pub per_s: f64,
    /// Nanoseconds per item (best run).
    pub ns_each: f64,
}

/// Everything this module measures.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// Entries in the log.
    pub entries: u64,
    /// Bytes per entry.
    pub entry_bytes: usize,
    /// `SHA-256` of every entry (the raw baseline).
    pub sha256_32_bytes: Pass,
    /// Appending every entry to an empty log.
    pub append: Pass,
    /// `append.ns_each / sha256_32_bytes.ns_each`.
    pub append_over_sha256_ratio: f64,
    /// The root at the full size.
    pub root: Latency,
    /// Inclusion proof of a random entry at the full size.
    pub inclusion_proof_generate: Latency,
    /// Checking such a proof against the tree head.
    pub inclusion_proof_verify: Latency,
    /// Hashes in an inclusion proof (mean).
    pub inclusion_proof_hashes: f64,
    /// Consistency proof from a random earlier size to the full size.
    pub consistency_proof_generate: Latency,
    /// Checking such a proof against both tree heads.
    pub consistency_proof_verify: Latency,
    /// Hashes in a consistency proof (mean).
    pub consistency_proof_hashes: f64,
}

/// Measures a log of `entries` entries; whole-log passes `runs` times, latencies `calls`.
pub fn measure(entries: u64, runs: usize, calls: usize, table: &mut Table) -> Result<AuditReport> {
    let entries = entries.max(2);
    let data: Vec<[u8; ENTRY_BYTES]> = (0..entries)
        .map(|_| {
            let mut entry = [0u8; ENTRY_BYTES];
            OsRng.fill_bytes(&mut entry);
            entry
        })
        .collect();
    let count = data.len() as f64;

    let (sha_runs, ()) = repeat(runs, || {
        for entry in &data {
            black_box(Digest::sha256(black_box(entry)));
        }
        Ok(())
    })?;
    let (append_runs, log) = repeat(runs, || {
        let mut log = AuditLog::new();
        for entry in &data {
            black_box(log.append(black_box(entry)));
        }
        Ok(log)
    })?;
    let head = log.tree_head();
    let root = latency(calls, || {
        black_box(log.root());
        Ok(())
    })?;

    // Random leaves and old sizes, drawn before timing; calls cycle through them.
    let picks: Vec<u64> = (0..calls.max(1))
        .map(|_| OsRng.next_u64() % entries)
        .collect();
    let pick = |i: usize| picks[i % picks.len()];
    let mut i = 0;
    let inclusion_proof_generate = latency(calls, || {
        i += 1;
        black_box(log.inclusion_proof(LeafIndex::new(pick(i)), head.size)?);
        Ok(())
    })?;
    let inclusions = picks
        .iter()
        .map(|&leaf| {
            let entry = usize::try_from(leaf).ok().and_then(|l| data.get(l));
            let entry = *entry.context("picked a leaf outside the log")?;
            Ok((entry, log.inclusion_proof(LeafIndex::new(leaf), head.size)?))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut i = 0;
    let inclusion_proof_verify = latency(calls, || {
        i += 1;
        let (entry, proof) = &inclusions[i % inclusions.len()];
        proof.verify(entry, black_box(&head))?;
        Ok(())
    })?;

    let old_size = |i: usize| TreeSize::new(pick(i).max(1));
    let mut i = 0;
    let consistency_proof_generate = latency(calls, || {
        i += 1;
        black_box(log.consistency_proof(old_size(i), head.size)?);
        Ok(())
    })?;
    let consistencies = (0..picks.len())
        .map(|i| {
            let old: TreeHead = log.tree_head_at(old_size(i))?;
            Ok((old, log.consistency_proof(old.size, head.size)?))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut i = 0;
    let consistency_proof_verify = latency(calls, || {
        i += 1;
        let (old, proof) = &consistencies[i % consistencies.len()];
        proof.verify(old, black_box(&head))?;
        Ok(())
    })?;

    let mean_len = |lens: &mut dyn Iterator<Item = usize>| {
        let (sum, n) = lens.fold((0, 0), |(s, n), len| (s + len, n + 1));
        sum as f64 / f64::from(n.max(1))
    };
    let pass = |runs: Runs| Pass {
        runs,
        per_s: runs.best_rate(count),
        ns_each: runs.best_s * 1e9 / count,
    };
    let report = AuditReport {
        entries,
        entry_bytes: ENTRY_BYTES,
        sha256_32_bytes: pass(sha_runs),
        append: pass(append_runs),
        append_over_sha256_ratio: append_runs.best_s / sha_runs.best_s,
        root,
        inclusion_proof_generate,
        inclusion_proof_verify,
        inclusion_proof_hashes: mean_len(&mut inclusions.iter().map(|(_, p)| p.path().len())),
        consistency_proof_generate,
        consistency_proof_verify,
        consistency_proof_hashes: mean_len(&mut consistencies.iter().map(|(_, p)| p.path().len())),
    };
    report_table(&report, table);
    Ok(report)
}

fn report_table(r: &AuditReport, table: &mut Table) {
    table.section(&format!(
        "audit log: {} entries of {} bytes",
        r.entries, r.entry_bytes
    ));
    let mut pass = |label: &str, p: &Pass, note: String| {
        let value = format!(
            "{}  {}/s  {} ns each",
            runs_text(&p.runs),
            num(p.per_s),
            num(p.ns_each)
        );
        table.row(label, value, note);
    };
    pass(
        "SHA-256, 32 bytes",
        &r.sha256_32_bytes,
        "raw baseline".into(),
    );
    pass(
        "append",
        &r.append,
        format!("{}x SHA-256", num(r.append_over_sha256_ratio)),
    );
    table.latency("root", &r.root, "");
    table.latency(
        "inclusion proof, generate",
        &r.inclusion_proof_generate,
        format!("{} hashes", num(r.inclusion_proof_hashes)),
    );
    table.latency("inclusion proof, verify", &r.inclusion_proof_verify, "");
    table.latency(
        "consistency proof, generate",
        &r.consistency_proof_generate,
        format!("{} hashes", num(r.consistency_proof_hashes)),
    );
    table.latency("consistency proof, verify", &r.consistency_proof_verify, "");
}
