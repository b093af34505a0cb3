//! `bench headers`: validating a difficulty period of headers under the consensus rules,
//! next to the raw SHA-256d of the same headers (the proof-of-work check's floor).
//!
//! The chain is 2,016 regtest headers mined here (regtest's target is trivial), each ten
//! minutes after the last; validation is `Headers::push_at` for each (linking, difficulty
//! bits, proof of work, median time past, future limit, chain work). The raw figure hashes
//! the same 80-byte headers with `Header::block_hash`, which validation must do anyway.

use std::hint::black_box;

use anyhow::Result;
use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash as _;
use bitcoin::{CompactTarget, Network, TxMerkleNode};
use milagro_anchor::proof::{HeaderChain as _, Headers};
use serde::Serialize;

use super::stats::{latency, Latency, Table};

/// Headers per measurement: one difficulty period.
pub const PERIOD: usize = 2016;

/// What `bench headers` measures (per 2,016 headers).
#[derive(Debug, Clone, Serialize)]
pub struct HeadersReport {
    /// Consensus validation of 2,016 headers.
    pub validate: Latency,
    /// SHA-256d of the same 2,016 headers.
    pub raw_sha256d: Latency,
    /// `validate / raw_sha256d` (mean).
    pub ratio: f64,
}

fn chain() -> (Header, Vec<Header>) {
    let genesis = bitcoin::constants::genesis_block(Network::Regtest).header;
    let mut headers = Vec::with_capacity(PERIOD);
    let mut prev = genesis;
    for i in 0..PERIOD {
        let mut header = Header {
            version: Version::TWO,
            prev_blockhash: prev.block_hash(),
            merkle_root: TxMerkleNode::from_byte_array([(i % 251) as u8; 32]),
            time: prev.time + 600,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            nonce: 0,
        };
        while header.validate_pow(header.target()).is_err() {
            header.nonce += 1;
        }
        headers.push(header);
        prev = header;
    }
    (genesis, headers)
}

/// Times both, `calls` rounds of 2,016 headers each.
pub fn measure(calls: usize, table: &mut Table) -> Result<HeadersReport> {
    let (genesis, headers) = chain();
    let now = headers.last().map_or(0, |h| h.time);
    let validate = latency(calls, || {
        let mut chain = Headers::new(Network::Regtest, 0, genesis)?;
        for header in &headers {
            chain.push_at(*header, now)?;
        }
        black_box(chain.tip_height());
        Ok(())
    })?;
    let raw_sha256d = latency(calls, || {
        for header in &headers {
            black_box(black_box(header).block_hash());
        }
        Ok(())
    })?;
    let ratio = validate.mean_us / raw_sha256d.mean_us;
    table.section("2,016 headers (one difficulty period)");
    table.latency(
        "consensus validation",
        &validate,
        format!("{ratio:.2}x raw"),
    );
    table.latency("raw SHA-256d of the headers", &raw_sha256d, "");
    Ok(HeadersReport {
        validate,
        raw_sha256d,
        ratio,
    })
}
