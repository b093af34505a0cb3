//! Reading the chain the way the follower does, three ways, for the sync baselines.
//!
//! The follower reads per step of `step` blocks one batched `getblockhash`, then batched
//! `getblock` calls (verbosity 0, hex) of [`GETBLOCK_BATCH`] blocks. [`Plan`] is that
//! pattern; it is replayed over a bare socket ([`raw_bodies`] + `RawRpc`), through the
//! workspace's client without decoding ([`via_client`]), and with decoding
//! ([`fetch_and_decode`]).

use std::hint::black_box;

use anyhow::{Context, Result};
use bitcoin::{Block, BlockHash};
use milagro_registry::bitcoind::BitcoindRpc;
use milagro_registry::chain::{BlockId, ChainSource};
use serde_json::json;

use super::raw_http::batch_body;

/// Blocks per `getblock` batch, as the follower read them before it read REST.
pub const GETBLOCK_BATCH: usize = 16;

/// How the follower reads the chain: per step one `getblockhash` batch of the step's
/// heights, then `getblock` batches of `fetch` blocks.
pub struct Plan<'h> {
    /// The heights of each step.
    pub steps: Vec<&'h [u32]>,
    /// Blocks per `getblock` batch.
    pub fetch: usize,
}

impl Plan<'_> {
    /// Calls `each` with every `getblock` batch's heights and hashes, step by step.
    fn for_each_fetch(
        &self,
        node: &BitcoindRpc,
        mut each: impl FnMut(&[u32], &[BlockHash]) -> Result<()>,
    ) -> Result<()> {
        for heights in &self.steps {
            let hashes = hashes_at(node, heights)?;
            for (heights, hashes) in heights.chunks(self.fetch).zip(hashes.chunks(self.fetch)) {
                each(heights, hashes)?;
            }
        }
        Ok(())
    }
}

/// The request bodies of every batch, in order (hashes looked up beforehand).
pub fn raw_bodies(node: &BitcoindRpc, plan: &Plan) -> Result<Vec<Vec<u8>>> {
    let mut bodies = Vec::new();
    for heights in &plan.steps {
        let by_height: Vec<_> = heights.iter().map(|h| json!([h])).collect();
        bodies.push(batch_body("getblockhash", &by_height)?);
        for hashes in hashes_at(node, heights)?.chunks(plan.fetch) {
            let by_hash: Vec<_> = hashes.iter().map(|h| json!([h, 0])).collect();
            bodies.push(batch_body("getblock", &by_hash)?);
        }
    }
    Ok(bodies)
}

/// Fetches every block as hex through the client; returns the block bytes served.
pub fn via_client(node: &BitcoindRpc, plan: &Plan) -> Result<usize> {
    let mut bytes = 0;
    plan.for_each_fetch(node, |_, hashes| {
        let params: Vec<_> = hashes.iter().map(|h| vec![json!(h), json!(0)]).collect();
        for hex in node.batch::<String>("getblock", &params)? {
            bytes += black_box(hex?).len() / 2;
        }
        Ok(())
    })?;
    Ok(bytes)
}

/// Fetches and decodes every block as the follower does.
pub fn fetch_and_decode(node: &BitcoindRpc, plan: &Plan) -> Result<Vec<(BlockId, Block)>> {
    let mut out = Vec::new();
    plan.for_each_fetch(node, |heights, hashes| {
        let blocks = node.blocks(hashes)?;
        for ((height, hash), block) in heights.iter().zip(hashes).zip(blocks) {
            let id = BlockId {
                height: *height,
                hash: *hash,
            };
            out.push((id, block));
        }
        Ok(())
    })?;
    Ok(out)
}

/// The hashes of the blocks at `heights`, all of which must exist.
pub fn hashes_at(node: &BitcoindRpc, heights: &[u32]) -> Result<Vec<BlockHash>> {
    node.block_hashes(heights)?
        .into_iter()
        .zip(heights)
        .map(|(hash, height)| hash.with_context(|| format!("no block at height {height}")))
        .collect()
}
