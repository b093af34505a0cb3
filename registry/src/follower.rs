//! The chain follower: turns what the node says into change sets that connect.
//!
//! Each [`Follower::step`] (1) finds the highest height where the index and the node
//! agree, walking back through the stored `(height, hash)` checkpoints in small batches,
//! (2) fetches up to `max_blocks` blocks above it, each of which must build on the one
//! before, and (3) applies one [`ChangeSet`] (rollback plus new blocks) atomically. If the
//! node reorganises while a step is fetching, the blocks after the break are left for the
//! next step, which sees the new fork and rolls back: reorgs are just data.
//!
//! A record counts only with its signer proven (`milagro_anchor::record`): for every
//! transaction shaped like a record, the follower looks up the funding transaction its
//! first input spends (one batched lookup per run of blocks, from the node's transaction
//! index) and keeps the record only if that output is the signer's P2WPKH output and the
//! signature verifies over it. A record-shaped transaction that fails is logged and left
//! out: anyone can mine one naming any key.

use std::collections::HashMap;

use bitcoin::{Block, BlockHash, Transaction, Txid};
use milagro_anchor::record::RecordCandidate;

use crate::chain::{BlockId, ChainError, ChainSource};
use crate::store::{ChangeSet, ConnectedBlock, IndexedRecord, RecordStore, StoreError};

/// Blocks requested per round trip: large enough to hide latency, small enough that a
/// batch of full mainnet blocks (hex-encoded, up to ~8 MB each) stays in memory comfortably.
pub const BLOCKS_PER_FETCH: usize = 16;

/// How many checkpoints are compared per round trip when looking for the fork point.
const FORK_SEARCH_WINDOW: u32 = 16;

/// Why a sync step failed. Nothing was written when this is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// Reading the chain failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Writing the index failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepReport {
    /// The height from which blocks were rolled back, if a reorg was found.
    pub rolled_back_from: Option<u32>,
    /// Blocks connected.
    pub blocks: u32,
    /// Records connected.
    pub records: usize,
    /// The index tip after the step.
    pub tip: Option<BlockId>,
    /// The node's tip when the step began.
    pub chain_tip: BlockId,
}

impl StepReport {
    /// Whether the index has reached the node's tip.
    pub fn caught_up(&self) -> bool {
        self.tip == Some(self.chain_tip)
    }
}

/// Keeps a [`RecordStore`] equal to the Milagro records of a chain's active branch.
#[derive(Debug)]
pub struct Follower<C, S> {
    chain: C,
    store: S,
    start_height: u32,
}

impl<C: ChainSource, S: RecordStore> Follower<C, S> {
    /// A follower indexing from `start_height` (0 on regtest; the protocol's launch height
    /// elsewhere, since no record can be older).
    pub fn new(chain: C, store: S, start_height: u32) -> Self {
        Self {
            chain,
            store,
            start_height,
        }
    }

    /// The store, for queries.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The chain source.
    pub fn chain(&self) -> &C {
        &self.chain
    }

    /// Runs steps until the index reaches the node's tip; `progress` sees every step.
    pub fn sync(
        &self,
        max_blocks: u32,
        mut progress: impl FnMut(&StepReport),
    ) -> Result<StepReport, SyncError> {
        loop {
            let report = self.step(max_blocks)?;
            progress(&report);
            if report.caught_up() {
                return Ok(report);
            }
        }
    }

    /// One atomic step of at most `max_blocks` new blocks.
    pub fn step(&self, max_blocks: u32) -> Result<StepReport, SyncError> {
        let chain_tip = self.chain.tip()?;
        let (agreed, disconnect_from) = self.fork_point(chain_tip)?;
        let next = agreed.map_or(self.start_height, |b| b.height + 1);
        let last = chain_tip
            .height
            .min(next.saturating_add(max_blocks.max(1)) - 1);
        let connect = if next <= last {
            self.fetch(agreed, next..=last)?
        } else {
            Vec::new()
        };
        let changes = ChangeSet {
            disconnect_from,
            connect,
        };
        self.store.apply(&changes)?;
        if let Some(from) = disconnect_from {
            tracing::info!(from, "reorg: rolled back the index");
        }
        Ok(StepReport {
            rolled_back_from: disconnect_from,
            blocks: u32::try_from(changes.connect.len()).unwrap_or(u32::MAX),
            records: changes.records_added(),
            tip: self.store.tip()?,
            chain_tip,
        })
    }

    /// The highest indexed block the node still has, and the lowest height to roll back.
    fn fork_point(&self, chain_tip: BlockId) -> Result<(Option<BlockId>, Option<u32>), SyncError> {
        let Some(local) = self.store.tip()? else {
            return Ok((None, None));
        };
        if local == chain_tip {
            return Ok((Some(local), None));
        }
        let mut disconnect_from = (local.height > chain_tip.height).then_some(chain_tip.height + 1);
        let mut top = local.height.min(chain_tip.height);
        loop {
            let low = top
                .saturating_sub(FORK_SEARCH_WINDOW - 1)
                .max(self.start_height);
            let heights: Vec<u32> = (low..=top).collect();
            let remote = self.chain.block_hashes(&heights)?;
            for (height, remote) in heights.iter().zip(remote).rev() {
                let ours = self.store.block_hash_at(*height)?;
                match (ours, remote) {
                    (Some(ours), Some(remote)) if ours == remote => {
                        return Ok((
                            Some(BlockId {
                                height: *height,
                                hash: ours,
                            }),
                            disconnect_from,
                        ));
                    }
                    _ => disconnect_from = Some(*height),
                }
            }
            if low <= self.start_height {
                return Ok((None, disconnect_from));
            }
            top = low - 1;
        }
    }

    /// Fetches blocks at `heights`, stopping at the first that does not build on the last.
    ///
    /// Blocks come in batches of [`BLOCKS_PER_FETCH`] and only their records are kept, so a
    /// step's memory is bounded by one batch of blocks whatever its length.
    fn fetch(
        &self,
        agreed: Option<BlockId>,
        heights: std::ops::RangeInclusive<u32>,
    ) -> Result<Vec<ConnectedBlock>, SyncError> {
        let heights: Vec<u32> = heights.collect();
        let hashes: Vec<BlockHash> = self
            .chain
            .block_hashes(&heights)?
            .into_iter()
            .map_while(|hash| hash)
            .collect();
        let mut previous = agreed.map(|b| b.hash);
        let mut connected = Vec::with_capacity(hashes.len());
        for (heights, hashes) in heights
            .chunks(BLOCKS_PER_FETCH)
            .zip(hashes.chunks(BLOCKS_PER_FETCH))
        {
            let blocks = self.chain.blocks(hashes)?;
            let mut run = Vec::with_capacity(blocks.len());
            for ((height, hash), block) in heights.iter().zip(hashes).zip(&blocks) {
                let builds_on_previous = previous.is_none_or(|p| p == block.header.prev_blockhash);
                if block.block_hash() != *hash || !builds_on_previous {
                    tracing::debug!(height, "chain moved during fetch; stopping this step here");
                    break;
                }
                let id = BlockId {
                    height: *height,
                    hash: *hash,
                };
                run.push((id, block));
                previous = Some(*hash);
            }
            let complete = run.len() == blocks.len();
            connected.extend(records_in(&self.chain, &run)?);
            if !complete {
                return Ok(connected);
            }
        }
        Ok(connected)
    }
}

/// Every transaction of `block` shaped like a Milagro record (foreign `OP_RETURN`s and
/// ordinary transactions skipped), its signer not yet proven.
pub fn candidates_in(block: &Block) -> impl Iterator<Item = (&Transaction, RecordCandidate)> {
    block
        .txdata
        .iter()
        .filter_map(|tx| Some((tx, RecordCandidate::from_tx(tx).ok()?)))
}

/// The attributed records of a run of blocks: the funding transactions of all their
/// candidates are looked up in one batch, and each candidate is kept only if its signer is
/// proven.
pub fn records_in(
    chain: &impl ChainSource,
    blocks: &[(BlockId, &Block)],
) -> Result<Vec<ConnectedBlock>, ChainError> {
    let candidates: Vec<Vec<(&Transaction, RecordCandidate)>> = blocks
        .iter()
        .map(|(_, block)| candidates_in(block).collect())
        .collect();
    let mut funding_txids: Vec<Txid> = candidates
        .iter()
        .flatten()
        .map(|(_, c)| c.funding().txid)
        .collect();
    funding_txids.sort_unstable();
    funding_txids.dedup();
    let fundings: HashMap<Txid, Transaction> = funding_txids
        .iter()
        .copied()
        .zip(chain.indexed_transactions(&funding_txids)?)
        .collect();
    let connected = blocks
        .iter()
        .zip(candidates)
        .map(|((id, block), candidates)| {
            let coinbase = block
                .txdata
                .first()
                .map(Transaction::compute_txid)
                .unwrap_or_else(bitcoin::hashes::Hash::all_zeros);
            let records = candidates
                .into_iter()
                .filter_map(|(tx, candidate)| {
                    let funding = candidate.funding();
                    let spent = fundings
                        .get(&funding.txid)
                        .and_then(|f| f.output.get(usize::try_from(funding.vout).ok()?))?;
                    match candidate.attribute(tx, spent) {
                        Ok(record) => Some(IndexedRecord::new(&record, *id, coinbase)),
                        Err(error) => {
                            tracing::warn!(
                                txid = %candidate.txid(),
                                height = id.height,
                                %error,
                                "ignored a record whose signer is not proven"
                            );
                            None
                        }
                    }
                })
                .collect();
            ConnectedBlock { id: *id, records }
        })
        .collect();
    Ok(connected)
}

#[cfg(test)]
#[path = "follower_tests.rs"]
mod tests;
