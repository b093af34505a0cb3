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
//!
//! Blocks are read serialized ([`ChainSource::raw_block`], over REST from `bitcoind`) on a
//! thread of their own and scanned in place ([`crate::scan`]): only the coinbase and the
//! transactions carrying the Milagro magic in an `OP_RETURN` are decoded.

use std::collections::HashMap;
use std::sync::mpsc;

use bitcoin::{Block, BlockHash, Transaction, Txid};
use milagro_anchor::record::RecordCandidate;

use crate::chain::{BlockId, ChainError, ChainSource};
use crate::scan::{BlockCandidates, ScanError};
use crate::store::{ChangeSet, ConnectedBlock, IndexedRecord, RecordStore, StoreError};

/// Candidates whose funding transactions are looked up in one batch: a run of blocks ends
/// once it holds this many (or with the step), so a chain with a record here and there
/// pays one round trip per few hundred records, not one per few blocks, while only one
/// run's candidates (and their funding transactions) are held at a time.
pub const CANDIDATES_PER_LOOKUP: usize = 256;

/// Records after which a step stops taking blocks (the rest is left for the next step):
/// a step's change set is held in memory until it is applied, and on a record-dense chain
/// `max_blocks` blocks could hold any number of records.
pub const RECORDS_PER_STEP: usize = 4_096;

/// Serialized blocks read ahead of the scan: enough to keep the reader busy while the
/// follower proves a run, few enough that the queue of full mainnet blocks (up to ~4 MB
/// each) stays small. A step's memory is this many blocks plus one run's candidates.
pub const BLOCKS_IN_FLIGHT: usize = 8;

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
    /// The node served a block the scan cannot read.
    #[error("block {hash} at height {height} is malformed")]
    Block {
        /// Its height.
        height: u32,
        /// The hash asked for.
        hash: BlockHash,
        /// What was wrong.
        #[source]
        source: ScanError,
    },
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

impl<C: ChainSource + Sync, S: RecordStore> Follower<C, S> {
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

    /// One atomic step of at most `max_blocks` new blocks (fewer once they hold
    /// [`RECORDS_PER_STEP`] records, or if the node reorganises meanwhile).
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
    /// A thread of its own reads the serialized blocks ([`ChainSource::raw_block`]) while
    /// this one scans them ([`BlockCandidates::scan`]) and proves the candidates of each
    /// run of blocks (one batched funding lookup per [`CANDIDATES_PER_LOOKUP`]), so the node
    /// serving, the reading and the scanning overlap on two cores. At most
    /// [`BLOCKS_IN_FLIGHT`] serialized blocks wait between the two threads, only the
    /// candidates of a run are kept, and a step ends after [`RECORDS_PER_STEP`] records, so
    /// a step's memory is bounded whatever its length and the chain's.
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
        let chain = &self.chain;
        std::thread::scope(|scope| {
            let (sender, receiver) = mpsc::sync_channel(BLOCKS_IN_FLIGHT);
            let to_read = &hashes;
            scope.spawn(move || {
                for hash in to_read {
                    let answer = chain.raw_block(hash);
                    let failed = answer.is_err();
                    // A closed channel: the step stopped early and wants no more blocks.
                    if sender.send(answer).is_err() || failed {
                        return;
                    }
                }
            });
            // Returning drops `receiver` before the scope joins the reader, which unblocks
            // it if it is waiting to send.
            self.scan_and_prove(agreed, &heights, &hashes, &receiver)
        })
    }

    /// The consuming half of [`Self::fetch`]: `blocks` yields the serialized blocks of
    /// `hashes` in order.
    fn scan_and_prove(
        &self,
        agreed: Option<BlockId>,
        heights: &[u32],
        hashes: &[BlockHash],
        blocks: &mpsc::Receiver<Result<Vec<u8>, ChainError>>,
    ) -> Result<Vec<ConnectedBlock>, SyncError> {
        let mut previous = agreed.map(|b| b.hash);
        let mut connected = Vec::with_capacity(hashes.len());
        let mut run = Vec::new();
        let mut pending = 0;
        for (height, hash) in heights.iter().zip(hashes) {
            let raw = blocks.recv().map_err(|_| {
                ChainError::Unreachable("the block reader stopped without an answer".into())
            })??;
            let block = BlockCandidates::scan(&raw).map_err(|source| SyncError::Block {
                height: *height,
                hash: *hash,
                source,
            })?;
            drop(raw);
            let builds_on_previous = previous.is_none_or(|p| p == block.header.prev_blockhash);
            if block.block_hash() != *hash || !builds_on_previous {
                tracing::debug!(height, "chain moved during fetch; stopping this step here");
                break;
            }
            let id = BlockId {
                height: *height,
                hash: *hash,
            };
            pending += block.candidates.len();
            run.push((id, block));
            previous = Some(*hash);
            if pending >= CANDIDATES_PER_LOOKUP {
                connected.extend(records_in(&self.chain, &run)?);
                run.clear();
                pending = 0;
                if connected.iter().map(|b| b.records.len()).sum::<usize>() >= RECORDS_PER_STEP {
                    return Ok(connected);
                }
            }
        }
        connected.extend(records_in(&self.chain, &run)?);
        Ok(connected)
    }
}

/// Every transaction of `block` shaped like a Milagro record (foreign `OP_RETURN`s and
/// ordinary transactions skipped), its signer not yet proven. The reference that
/// [`BlockCandidates::scan`] matches without decoding the whole block.
pub fn candidates_in(block: &Block) -> impl Iterator<Item = (&Transaction, RecordCandidate)> {
    block
        .txdata
        .iter()
        .filter_map(|tx| Some((tx, RecordCandidate::from_tx(tx).ok()?)))
}

/// The attributed records of a run of blocks: the funding transactions of all their
/// candidates are looked up in one batch, and each candidate is kept only if its signer is
/// proven. The proofs (a BIP 143 digest and an ECDSA verify each, the bulk of the work on a
/// record-dense chain) run on every core.
pub fn records_in(
    chain: &impl ChainSource,
    blocks: &[(BlockId, BlockCandidates)],
) -> Result<Vec<ConnectedBlock>, ChainError> {
    let mut funding_txids: Vec<Txid> = blocks
        .iter()
        .flat_map(|(_, block)| &block.candidates)
        .map(|(_, c)| c.funding().txid)
        .collect();
    funding_txids.sort_unstable();
    funding_txids.dedup();
    let fundings: HashMap<Txid, Transaction> = funding_txids
        .iter()
        .copied()
        .zip(chain.indexed_transactions(&funding_txids)?)
        .collect();
    let jobs: Vec<(usize, &Transaction, &RecordCandidate)> = blocks
        .iter()
        .enumerate()
        .flat_map(|(b, (_, block))| block.candidates.iter().map(move |(tx, c)| (b, tx, c)))
        .collect();
    let prove_job = |(b, tx, candidate): &(usize, &Transaction, &RecordCandidate)| {
        let (id, block) = blocks.get(*b)?;
        prove(&fundings, *id, block.coinbase_txid, tx, candidate)
    };
    let proven = on_every_core(&jobs, prove_job);
    let mut connected: Vec<ConnectedBlock> = blocks
        .iter()
        .map(|(id, _)| ConnectedBlock {
            id: *id,
            records: Vec::new(),
        })
        .collect();
    for ((b, _, _), record) in jobs.iter().zip(proven) {
        if let (Some(record), Some(block)) = (record, connected.get_mut(*b)) {
            block.records.push(record);
        }
    }
    Ok(connected)
}

/// The indexed record of `candidate` if its funding output (among `fundings`) proves its
/// signer; logged and `None` otherwise.
fn prove(
    fundings: &HashMap<Txid, Transaction>,
    id: BlockId,
    coinbase_txid: Txid,
    tx: &Transaction,
    candidate: &RecordCandidate,
) -> Option<IndexedRecord> {
    let funding = candidate.funding();
    let spent = fundings
        .get(&funding.txid)
        .and_then(|f| f.output.get(usize::try_from(funding.vout).ok()?))?;
    match candidate.attribute(tx, spent) {
        Ok(record) => Some(IndexedRecord::new(&record, id, coinbase_txid)),
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
}

/// Below this many jobs a thread costs more than it saves.
const MIN_JOBS_PER_THREAD: usize = 32;

/// `jobs.iter().map(work)`, split over the machine's cores, in order.
fn on_every_core<J: Sync, T: Send>(jobs: &[J], work: impl Fn(&J) -> T + Sync) -> Vec<T> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cores.min(jobs.len() / MIN_JOBS_PER_THREAD).max(1);
    if threads == 1 {
        return jobs.iter().map(work).collect();
    }
    let chunk = jobs.len().div_ceil(threads);
    let work = &work;
    std::thread::scope(|scope| {
        let mut chunks = jobs.chunks(chunk);
        let first = chunks.next().unwrap_or_default();
        let others: Vec<_> = chunks
            .map(|jobs| scope.spawn(move || jobs.iter().map(work).collect::<Vec<T>>()))
            .collect();
        let mut results: Vec<T> = first.iter().map(work).collect();
        for other in others {
            match other.join() {
                Ok(done) => results.extend(done),
                // A panic in `work` is a bug: pass it on, as the one-thread path would.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    })
}

#[cfg(test)]
#[path = "follower_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "follower_pipeline_tests.rs"]
mod pipeline_tests;
