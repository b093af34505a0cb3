//! The chain follower: turns what the node says into change sets that connect.
//!
//! Each [`Follower::step`] (1) finds the highest height where the index and the node
//! agree, walking back through the stored `(height, hash)` checkpoints in small batches,
//! (2) fetches up to `max_blocks` blocks above it, each of which must build on the one
//! before, and (3) applies one [`ChangeSet`] (rollback plus new blocks) atomically. If the
//! node reorganises while a step is fetching, the blocks after the break are left for the
//! next step, which sees the new fork and rolls back: reorgs are just data.
//!
//! A record counts only with its signer proven ([`crate::attribution`]): for every
//! transaction shaped like a record, the follower looks up the output its first input
//! spends (one batched lookup per run of blocks, from the node's transaction index) and
//! keeps the record only if that output is the signer's P2WPKH output. A record-shaped
//! transaction that fails is logged and left out: anyone can mine one naming any key.
//!
//! Blocks are read serialized ([`ChainSource::raw_block`], over REST from `bitcoind`) and
//! scanned in place ([`crate::scan`]) on a thread of their own: only the coinbase and the
//! transactions carrying the Milagro magic in an `OP_RETURN` are decoded. That thread hands
//! over whole runs of scanned blocks, not blocks, to the one that proves them. While the
//! index catches up, a third thread writes each step's change set as the next step is read
//! ([`Follower::sync`]), so the node serving blocks, the scan and the store's writes
//! overlap.

use std::ops::ControlFlow;
use std::sync::{mpsc, Mutex};

use bitcoin::BlockHash;

use crate::attribution::{records_in, Fundings};
use crate::chain::{BlockId, ChainError, ChainSource};
use crate::scan::{BlockCandidates, ScanError};
use crate::store::{ChangeSet, ConnectedBlock, RecordStore, StoreError};

/// Candidates whose funding transactions are looked up in one batch: a run of blocks ends
/// once it holds this many (or with the step), so a chain with a record here and there
/// pays one round trip per few hundred records, not one per few blocks, while only one
/// run's candidates (and their funding transactions) are held at a time.
pub const CANDIDATES_PER_LOOKUP: usize = 256;

/// Records after which a step stops taking blocks (the rest is left for the next step):
/// a step's change set is held in memory until it is applied, and on a record-dense chain
/// `max_blocks` blocks could hold any number of records.
pub const RECORDS_PER_STEP: usize = 4_096;

/// Scanned runs of blocks read ahead of the proving: one keeps the reader busy while the
/// follower proves the run before. A step's memory is this many runs' candidates, the
/// run being read and one serialized block.
pub const RUNS_IN_FLIGHT: usize = 1;

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
    /// The funding transactions the last run of blocks used, kept for the next step's.
    fundings: Mutex<Fundings>,
}

impl<C: ChainSource + Sync, S: RecordStore> Follower<C, S> {
    /// A follower indexing from `start_height` (0 on regtest; the protocol's launch height
    /// elsewhere, since no record can be older).
    pub fn new(chain: C, store: S, start_height: u32) -> Self {
        Self {
            chain,
            store,
            start_height,
            fundings: Mutex::new(Fundings::new()),
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
    ///
    /// While the index only extends, writing overlaps reading: a thread of its own
    /// applies the change sets in order (at most one waiting) while the next step is read
    /// from the last block handed to it, not from the store. A step that rolls back (or
    /// finds nothing to add) runs on its own, as [`Self::step`], after every write. Each
    /// change set is still applied atomically, so a crash leaves the index at some
    /// completed step.
    pub fn sync(
        &self,
        max_blocks: u32,
        mut progress: impl FnMut(&StepReport),
    ) -> Result<StepReport, SyncError> {
        loop {
            let chain_tip = self.chain.tip()?;
            let (agreed, disconnect_from) = self.fork_point(chain_tip)?;
            if disconnect_from.is_some() || agreed == Some(chain_tip) {
                let report = self.step_at(chain_tip, agreed, disconnect_from, max_blocks)?;
                progress(&report);
                if report.caught_up() {
                    return Ok(report);
                }
                continue;
            }
            let done = std::thread::scope(|scope| {
                let (sender, receiver) = mpsc::sync_channel::<ChangeSet>(1);
                let writer = scope.spawn(move || -> Result<(), StoreError> {
                    for changes in receiver {
                        self.store.apply(&changes)?;
                    }
                    Ok(())
                });
                let fed = self.extend(agreed, max_blocks, &sender, &mut progress);
                drop(sender);
                let written = match writer.join() {
                    Ok(written) => written,
                    // A panic in `apply` is a bug: pass it on, as `step` would.
                    Err(panic) => std::panic::resume_unwind(panic),
                };
                written?;
                fed
            })?;
            if let Some(report) = done {
                return Ok(report);
            }
        }
    }

    /// The read side of [`Self::sync`]'s overlapped writing: fetches the blocks above
    /// `from` (the last block handed to the writer; `None` for an empty index) and sends
    /// each step's change set to `writer`. Returns the report of the step that reached the
    /// node's tip, or `None` when a full step must take over (the node reorganised or
    /// moved, or the writer stopped on an error, which its join reports).
    fn extend(
        &self,
        mut from: Option<BlockId>,
        max_blocks: u32,
        writer: &mpsc::SyncSender<ChangeSet>,
        progress: &mut impl FnMut(&StepReport),
    ) -> Result<Option<StepReport>, SyncError> {
        loop {
            let chain_tip = self.chain.tip()?;
            let next = from.map_or(self.start_height, |b| b.height + 1);
            if chain_tip.height < next {
                return Ok(None);
            }
            let last = chain_tip
                .height
                .min(next.saturating_add(max_blocks.max(1)) - 1);
            let connect = self.fetch(from, next..=last)?;
            let Some(end) = connect.last().map(|b| b.id) else {
                return Ok(None);
            };
            let changes = ChangeSet {
                disconnect_from: None,
                connect,
            };
            let report = StepReport {
                rolled_back_from: None,
                blocks: u32::try_from(changes.connect.len()).unwrap_or(u32::MAX),
                records: changes.records_added(),
                tip: Some(end),
                chain_tip,
            };
            if writer.send(changes).is_err() {
                return Ok(None);
            }
            progress(&report);
            if report.caught_up() {
                return Ok(Some(report));
            }
            from = Some(end);
        }
    }

    /// One atomic step of at most `max_blocks` new blocks (fewer once they hold
    /// [`RECORDS_PER_STEP`] records, or if the node reorganises meanwhile).
    pub fn step(&self, max_blocks: u32) -> Result<StepReport, SyncError> {
        let chain_tip = self.chain.tip()?;
        let (agreed, disconnect_from) = self.fork_point(chain_tip)?;
        self.step_at(chain_tip, agreed, disconnect_from, max_blocks)
    }

    /// [`Self::step`] once the node's tip and the fork point are known.
    fn step_at(
        &self,
        chain_tip: BlockId,
        agreed: Option<BlockId>,
        disconnect_from: Option<u32>,
        max_blocks: u32,
    ) -> Result<StepReport, SyncError> {
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
    /// A thread of its own reads the serialized blocks ([`ChainSource::raw_block`]) and
    /// scans each as it arrives ([`BlockCandidates::scan`]), and hands runs of scanned
    /// blocks ([`CANDIDATES_PER_LOOKUP`] candidates each, or a step's end) to this one,
    /// which proves each run's candidates (one batched funding lookup). The node serving
    /// blocks and the proving of the run before overlap (and, in [`Self::sync`], the
    /// writing of the step before). Handing over runs rather than blocks matters on two
    /// shared cores: this thread then wakes once per run, not once per block, and a block's
    /// bytes are scanned while they are still in the reader's cache. At most
    /// [`RUNS_IN_FLIGHT`] runs wait between the two threads, only the candidates of runs
    /// are kept, and a step ends after [`RECORDS_PER_STEP`] records, so a step's memory is
    /// bounded whatever its length and the chain's.
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
        std::thread::scope(|scope| {
            let (sender, receiver) = mpsc::sync_channel(RUNS_IN_FLIGHT);
            let blocks: Vec<BlockId> = heights
                .iter()
                .zip(&hashes)
                .map(|(height, hash)| BlockId {
                    height: *height,
                    hash: *hash,
                })
                .collect();
            scope.spawn(move || self.read_runs(agreed, &blocks, &sender));
            // Returning drops `receiver` before the scope joins the reader, which unblocks
            // it if it is waiting to send.
            self.prove(&receiver)
        })
    }

    /// The reading half of [`Self::fetch`]: reads and scans `blocks` in order
    /// ([`ChainSource::raw_blocks`], so the node can serve a block while this scans the
    /// one before) and sends them to `runs` in runs; stops at the first block that is not
    /// the one asked for or does not build on the one before (the node reorganised), at
    /// the first error (sent on), or once nobody receives.
    fn read_runs(&self, agreed: Option<BlockId>, blocks: &[BlockId], runs: &mpsc::SyncSender<Run>) {
        let hashes: Vec<BlockHash> = blocks.iter().map(|b| b.hash).collect();
        let mut previous = agreed.map(|b| b.hash);
        let mut ids = blocks.iter();
        let mut run = Vec::new();
        let mut pending = 0;
        let mut open = true;
        self.chain.raw_blocks(&hashes, &mut |raw| {
            let Some(id) = ids.next() else {
                return ControlFlow::Break(());
            };
            let scanned = raw.map_err(SyncError::from).and_then(|raw| {
                BlockCandidates::scan(&raw).map_err(|source| SyncError::Block {
                    height: id.height,
                    hash: id.hash,
                    source,
                })
            });
            let block = match scanned {
                Ok(block) => block,
                Err(error) => {
                    // Whatever came before is dropped with the step: nothing is written.
                    open = false;
                    let _ = runs.send(Err(error));
                    return ControlFlow::Break(());
                }
            };
            let builds_on_previous = previous.is_none_or(|p| p == block.header.prev_blockhash);
            if block.block_hash() != id.hash || !builds_on_previous {
                tracing::debug!(
                    id.height,
                    "chain moved during fetch; stopping this step here"
                );
                return ControlFlow::Break(());
            }
            previous = Some(id.hash);
            pending += block.candidates.len();
            run.push((*id, block));
            if pending >= CANDIDATES_PER_LOOKUP {
                pending = 0;
                // A closed channel: the step stopped early and wants no more blocks.
                if runs.send(Ok(std::mem::take(&mut run))).is_err() {
                    open = false;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        });
        if open && !run.is_empty() {
            let _ = runs.send(Ok(run));
        }
    }

    /// The proving half of [`Self::fetch`]: the attributed records of every run `runs`
    /// yields, until they hold [`RECORDS_PER_STEP`] records.
    fn prove(&self, runs: &mpsc::Receiver<Run>) -> Result<Vec<ConnectedBlock>, SyncError> {
        let mut connected = Vec::new();
        let mut records = 0;
        let mut fundings = self
            .fundings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for run in runs {
            let proven = records_in(&self.chain, &run?, &mut fundings)?;
            records += proven.iter().map(|b| b.records.len()).sum::<usize>();
            connected.extend(proven);
            if records >= RECORDS_PER_STEP {
                break;
            }
        }
        Ok(connected)
    }
}

/// Scanned blocks handed from the reader to the prover at once (or why reading stopped).
type Run = Result<Vec<(BlockId, BlockCandidates)>, SyncError>;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod pipeline_tests;
