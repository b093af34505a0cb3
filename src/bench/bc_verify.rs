//! Birth Certificate verify latency, next to the signature check it cannot go below.
//!
//! A relying party holding a BC document, its anchor proof and a header chain runs
//! `BirthCertificate::parse` (JSON, field checks, RFC 8785 canonical form, SHA-256 and one
//! ECDSA verify of the self-signature) and `verify_anchor` (record extraction from the raw
//! transaction, Merkle path, header lookup). That pair is the **BC verify** latency; each
//! half is timed too, and so is one ECDSA verify as `parse` runs it
//! (`PublicKey::verify_digest`: libsecp256k1 plus parsing the key), one bare libsecp256k1
//! verify (the raw baseline) and, for comparison, one with `k256`, so the cost of everything
//! that is not the signature check is visible.
//!
//! Getting the inputs is measured apart, since a verifier may have them already: the proof
//! from the node (`anchor_proof`: `getrawtransaction` + `gettxoutproof`), the headers from
//! the record's block to the tip (`headers_from`), and building the proof-of-work-checked
//! `Headers` from them (CPU only).

use std::hint::black_box;

use anyhow::{ensure, Context, Result};
use bitcoin::block::Header;
use bitcoin::secp256k1::{ecdsa, Message, Secp256k1};
use milagro_anchor::birth_certificate::BirthCertificate;
use milagro_anchor::keys::SecretKey;
use milagro_anchor::proof::Headers;
use milagro_registry::proofs::{anchor_proof, headers_from};
use milagro_registry::store::RecordStore;
use rand_core::OsRng;
use serde::Serialize;

use super::fixture::BenchChain;
use super::stats::{latency, Latency, Table};

/// Calls of the node-bound fetches (each makes at least one round trip).
const PROOF_FETCHES: usize = 200;
/// `headers_from` moves `depth` headers per call: fewer repetitions.
const HEADER_FETCHES: usize = 50;

/// Everything this module measures.
#[derive(Debug, Clone, Serialize)]
pub struct BcVerifyReport {
    /// Confirmations of the sample anchor (headers from its block to the tip).
    pub depth: u32,
    /// Size of the BC document, in bytes.
    pub document_bytes: usize,
    /// `parse` + `verify_anchor`: the BC verify latency.
    pub bc_verify: Latency,
    /// `BirthCertificate::parse` alone.
    pub parse: Latency,
    /// `verify_anchor` alone.
    pub verify_anchor: Latency,
    /// One ECDSA verify as `parse` runs it (`PublicKey::verify_digest`).
    pub ecdsa_verify: Latency,
    /// One bare ECDSA verify with libsecp256k1: the raw baseline.
    pub libsecp256k1_ecdsa_verify: Latency,
    /// One bare ECDSA verify with `k256`, for comparison.
    pub k256_ecdsa_verify: Latency,
    /// `anchor_proof` from the node.
    pub fetch_proof: Latency,
    /// `headers_from` the node, `depth` headers.
    pub fetch_headers: Latency,
    /// `Headers::from_headers` over `depth` headers (link and proof-of-work checks).
    pub build_headers: Latency,
}

/// Measures with `calls` calls per CPU-bound figure.
pub fn measure(
    chain: &BenchChain,
    store: &impl RecordStore,
    calls: usize,
    table: &mut Table,
) -> Result<BcVerifyReport> {
    let sample = &chain.sample;
    let node = &chain.node;
    let record = store
        .by_digest(&sample.bc.digest())?
        .into_iter()
        .next()
        .context("the sample certificate is not indexed")?;
    let proof = anchor_proof(node, &record)?;
    let headers = headers_from(node, chain.network, record.height)?;
    let anchor = BirthCertificate::parse(&sample.json)?.verify_anchor(&proof, &headers)?;
    ensure!(
        anchor.txid() == sample.txid,
        "the sample anchor verified as {}, expected {}",
        anchor.txid(),
        sample.txid
    );

    let json = &sample.json;
    let bc_verify = latency(calls, || {
        let bc = BirthCertificate::parse(black_box(json))?;
        black_box(bc.verify_anchor(&proof, &headers)?);
        Ok(())
    })?;
    let parse = latency(calls, || {
        black_box(BirthCertificate::parse(black_box(json))?);
        Ok(())
    })?;
    let verify_anchor = latency(calls, || {
        black_box(sample.bc.verify_anchor(black_box(&proof), &headers)?);
        Ok(())
    })?;

    let key = SecretKey::generate(&mut OsRng);
    let public = key.public_key();
    let digest = sample.bc.digest();
    let signature = key.sign_digest(&digest);
    let ecdsa_verify = latency(calls, || {
        public.verify_digest(black_box(&digest), black_box(&signature))?;
        Ok(())
    })?;
    let k256_key = k256::ecdsa::VerifyingKey::from_sec1_bytes(&public.to_sec1())?;
    let k256_signature = k256::ecdsa::Signature::from_slice(&signature.to_compact())?;
    let k256_ecdsa_verify = latency(calls, || {
        use k256::ecdsa::signature::hazmat::PrehashVerifier;
        k256_key.verify_prehash(black_box(digest.as_bytes()), black_box(&k256_signature))?;
        Ok(())
    })?;
    let secp = Secp256k1::verification_only();
    let message = Message::from_digest(digest.to_bytes());
    let secp_signature = ecdsa::Signature::from_compact(&signature.to_compact())?;
    let secp_key = public.to_bitcoin().0;
    let libsecp256k1_ecdsa_verify = latency(calls, || {
        secp.verify_ecdsa(black_box(&message), black_box(&secp_signature), &secp_key)?;
        Ok(())
    })?;

    let fetch_proof = latency(PROOF_FETCHES, || {
        black_box(anchor_proof(node, &record)?);
        Ok(())
    })?;
    let fetch_headers = latency(HEADER_FETCHES, || {
        black_box(headers_from(node, chain.network, record.height)?);
        Ok(())
    })?;
    let raw_headers: Vec<Header> = (record.height..=chain.tip.height)
        .map(|h| headers.header_at(h).copied())
        .collect::<Option<_>>()
        .context("the header chain has a gap")?;
    let build_headers = latency(calls / 10, || {
        let built = Headers::from_headers(chain.network, record.height, raw_headers.clone())?;
        black_box(built);
        Ok(())
    })?;

    let report = BcVerifyReport {
        depth: anchor.depth(),
        document_bytes: json.len(),
        bc_verify,
        parse,
        verify_anchor,
        ecdsa_verify,
        libsecp256k1_ecdsa_verify,
        k256_ecdsa_verify,
        fetch_proof,
        fetch_headers,
        build_headers,
    };
    report_table(&report, table);
    Ok(report)
}

fn report_table(r: &BcVerifyReport, table: &mut Table) {
    table.section(&format!(
        "BC verify: a {}-byte document anchored {} blocks deep",
        r.document_bytes, r.depth
    ));
    table.latency("BC verify (parse + anchor)", &r.bc_verify, "the result");
    table.latency("  parse (incl. 1 ECDSA)", &r.parse, "");
    table.latency(
        "  verify_anchor",
        &r.verify_anchor,
        "SPV: record, Merkle path",
    );
    table.latency(
        "  ECDSA verify in parse",
        &r.ecdsa_verify,
        "libsecp256k1 + key parse",
    );
    table.latency(
        "ECDSA verify, libsecp256k1",
        &r.libsecp256k1_ecdsa_verify,
        "raw baseline",
    );
    table.latency("ECDSA verify, k256", &r.k256_ecdsa_verify, "for comparison");
    table.latency("fetch proof from node", &r.fetch_proof, "2 RPCs");
    table.latency(
        "fetch headers from node",
        &r.fetch_headers,
        format!("{} headers", r.depth),
    );
    table.latency("build Headers (PoW checks)", &r.build_headers, "CPU only");
}
