//! Header chains: the only thing an SPV verifier needs to trust, checked as consensus
//! checks them.
//!
//! [`Headers`] holds a contiguous run of headers and accepts a new one only if it links to
//! the tip and meets every rule a full node applies to a header in its place:
//!
//! - its proof of work meets its own target, which is no easier than the network allows;
//! - its difficulty bits are the ones the chain requires at that height: retargeting every
//!   2,016 blocks, testnet's and testnet4's minimum-difficulty exception (and BIP 94's
//!   rules on testnet4), regtest's fixed target ([`rules::next_bits`]);
//! - its time is after the median of the last eleven ([`rules::median_time_past`]), and
//!   no more than two hours ahead of the verifier's clock ([`Headers::push_at`]; the
//!   caller passes the time, this crate reads no clock).
//!
//! A verifier that does not trust its source builds the chain with
//! [`Headers::from_checkpoint`] from the block this crate pins for its network
//! ([`Checkpoint::pinned`]) and the headers just below it that the rules need (all
//! authenticated by hash back from the pinned block), and checks with
//! [`Headers::check_work`] that the chain's total work reaches the network's minimum and
//! every chain it has already seen. A made-up chain then fails twice: it cannot pass
//! through the pinned block, and it cannot reach the work of the real chain.
//!
//! [`Headers::new`] and [`Headers::from_headers`] start from a header trusted for another
//! reason (a party's own full node): rules whose context lies below it are not checked.

mod checkpoint;
pub mod rules;

use std::collections::HashMap;

use bitcoin::block::Header;
use bitcoin::consensus::Params;
use bitcoin::{BlockHash, Network, Work};

pub use checkpoint::{minimum_chain_work, Checkpoint};

/// Anything that can say at which height a block sits in the chain it trusts.
pub trait HeaderChain {
    /// The height of `hash`, if it is in the chain.
    fn height_of(&self, hash: &BlockHash) -> Option<u32>;
    /// The height of the chain's tip.
    fn tip_height(&self) -> u32;
}

/// A contiguous run of headers, each checked against the rules for its place.
#[derive(Debug, Clone)]
pub struct Headers {
    params: Params,
    bip94: bool,
    start_height: u32,
    headers: Vec<Header>,
    heights: HashMap<BlockHash, u32>,
    /// The checkpoint the chain is anchored to (inside `headers`).
    checkpoint: Checkpoint,
    /// The work of the headers above the checkpoint.
    work_above_checkpoint: Work,
}

/// Why a header chain was refused: the rule that failed, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderChainError {
    /// The header's hash does not meet its own target, or the target is too easy.
    #[error("header {0} has invalid proof of work")]
    BadProofOfWork(BlockHash),
    /// The header does not build on the current tip.
    #[error("header {hash} at height {height} does not link to the previous header")]
    Disconnected {
        /// The refused header.
        hash: BlockHash,
        /// The height it would have had.
        height: u32,
    },
    /// The header carries other difficulty bits than the chain requires there.
    #[error(
        "header at height {height} has difficulty bits {found:#010x}, the chain requires \
         {expected:#010x} (difficulty rule)"
    )]
    BadDifficulty {
        /// Its height.
        height: u32,
        /// Its bits.
        found: u32,
        /// The bits the rules require.
        expected: u32,
    },
    /// The header's time is not after the median of the last eleven.
    #[error("header at height {height} has time {time}, not after the median time past {median}")]
    TimeTooOld {
        /// Its height.
        height: u32,
        /// Its time.
        time: u32,
        /// The median time past.
        median: u32,
    },
    /// The header's time is more than two hours ahead of the verifier's clock.
    #[error("header at height {height} has time {time}, more than two hours after now ({now})")]
    TimeTooNew {
        /// Its height.
        height: u32,
        /// Its time.
        time: u32,
        /// The verifier's clock.
        now: u32,
    },
    /// A period's first block goes back in time more than BIP 94 allows (testnet4).
    #[error(
        "header at height {height} goes back {back} s from the previous block (timewarp rule)"
    )]
    TimeWarp {
        /// Its height.
        height: u32,
        /// How far back.
        back: u32,
    },
    /// The headers given as the checkpoint's context do not end at the checkpoint, or do
    /// not cover what the rules need.
    #[error("the headers below checkpoint {height} ({hash}) are not its ancestors: {why}")]
    NotTheCheckpoint {
        /// The checkpoint's height.
        height: u32,
        /// Its hash.
        hash: BlockHash,
        /// What is wrong.
        why: &'static str,
    },
    /// The chain's total work is below what the verifier requires.
    #[error(
        "the chain's total work (2^{:.2}) is below the {what} (2^{:.2})",
        .found.log2(),
        .required.log2()
    )]
    InsufficientWork {
        /// The chain's work.
        found: Work,
        /// The work required.
        required: Work,
        /// Which requirement: the network's minimum, or a chain already seen.
        what: &'static str,
    },
    /// No headers were given.
    #[error("a header chain needs at least one header")]
    Empty,
    /// The chain would pass the largest height a block can have here.
    #[error("height overflow")]
    HeightOverflow,
}

impl Headers {
    /// Starts a chain at a header trusted for another reason than the rules (e.g. served
    /// by the party's own full node), at height `start_height`. Rules that need headers
    /// below it are not checked until enough are held.
    pub fn new(
        network: Network,
        start_height: u32,
        first: Header,
    ) -> Result<Self, HeaderChainError> {
        let checkpoint = Checkpoint {
            height: start_height,
            hash: first.block_hash(),
            chain_work: (start_height == 0).then(|| first.work()),
        };
        let chain = Self::empty(network, start_height, checkpoint);
        chain.check_pow(&first)?;
        Ok(chain.with_first(first))
    }

    /// Builds a chain from consecutive headers, the first of which is trusted
    /// ([`Self::new`]); the others must pass the rules.
    pub fn from_headers(
        network: Network,
        start_height: u32,
        headers: impl IntoIterator<Item = Header>,
    ) -> Result<Self, HeaderChainError> {
        let mut iter = headers.into_iter();
        let first = iter.next().ok_or(HeaderChainError::Empty)?;
        let mut chain = Self::new(network, start_height, first)?;
        for header in iter {
            chain.push(header)?;
        }
        Ok(chain)
    }

    /// Starts a chain at `checkpoint` from `context`: the headers from
    /// [`Self::context_start`] up to and including the checkpoint, which must hash to it
    /// and link back from it one by one (so none of them needs checking otherwise).
    pub fn from_checkpoint(
        network: Network,
        checkpoint: Checkpoint,
        context: Vec<Header>,
    ) -> Result<Self, HeaderChainError> {
        let refuse = |why| HeaderChainError::NotTheCheckpoint {
            height: checkpoint.height,
            hash: checkpoint.hash,
            why,
        };
        let start = Self::context_start(checkpoint.height);
        let expected =
            usize::try_from(checkpoint.height - start + 1).map_err(|_| refuse("size"))?;
        if context.len() != expected {
            return Err(refuse(
                "not the headers from the context start to the checkpoint",
            ));
        }
        if context.last().map(Header::block_hash) != Some(checkpoint.hash) {
            return Err(refuse("the last header is not the checkpoint"));
        }
        if context
            .windows(2)
            .any(|pair| pair[1].prev_blockhash != pair[0].block_hash())
        {
            return Err(refuse("they do not link"));
        }
        let mut chain = Self::empty(network, start, checkpoint);
        for (offset, header) in context.into_iter().enumerate() {
            let height = start + u32::try_from(offset).map_err(|_| refuse("size"))?;
            chain.heights.insert(header.block_hash(), height);
            chain.headers.push(header);
        }
        Ok(chain)
    }

    /// The first height of the headers [`Self::from_checkpoint`] needs below a checkpoint
    /// at `height`: its difficulty period's first block, and at least ten blocks back.
    pub fn context_start(height: u32) -> u32 {
        rules::period_start(height).min(height.saturating_sub(rules::MEDIAN_TIME_SPAN as u32 - 1))
    }

    fn empty(network: Network, start_height: u32, checkpoint: Checkpoint) -> Self {
        Self {
            params: Params::new(network),
            bip94: network == Network::Testnet4,
            start_height,
            headers: Vec::new(),
            heights: HashMap::new(),
            checkpoint,
            work_above_checkpoint: Work::from_be_bytes([0; 32]),
        }
    }

    fn with_first(mut self, first: Header) -> Self {
        self.heights.insert(first.block_hash(), self.start_height);
        self.headers.push(first);
        self
    }

    /// Appends a header that builds on the tip, checking every rule but the verifier's
    /// clock (for a chain from the party's own node, which checked it).
    pub fn push(&mut self, header: Header) -> Result<(), HeaderChainError> {
        self.push_checked(header, None)
    }

    /// Appends a header that builds on the tip, checking every rule, including that its
    /// time is at most two hours after `now` (Unix seconds).
    pub fn push_at(&mut self, header: Header, now: u32) -> Result<(), HeaderChainError> {
        self.push_checked(header, Some(now))
    }

    fn push_checked(&mut self, header: Header, now: Option<u32>) -> Result<(), HeaderChainError> {
        let height = self
            .tip_height()
            .checked_add(1)
            .ok_or(HeaderChainError::HeightOverflow)?;
        let hash = header.block_hash();
        let last = self.headers.last().ok_or(HeaderChainError::Empty)?;
        if header.prev_blockhash != last.block_hash() {
            return Err(HeaderChainError::Disconnected { hash, height });
        }
        let held_top = height - 1;
        if let Some(expected) = rules::next_bits(
            &self.params,
            self.bip94,
            &self.headers,
            held_top,
            header.time,
        ) {
            if expected != header.bits {
                return Err(HeaderChainError::BadDifficulty {
                    height,
                    found: header.bits.to_consensus(),
                    expected: expected.to_consensus(),
                });
            }
        }
        self.check_pow(&header)?;
        if let Some(median) = rules::median_time_past(&self.headers, self.start_height == 0) {
            if header.time <= median {
                return Err(HeaderChainError::TimeTooOld {
                    height,
                    time: header.time,
                    median,
                });
            }
        }
        if let Some(now) = now {
            if header.time > now.saturating_add(rules::MAX_FUTURE_SECS) {
                return Err(HeaderChainError::TimeTooNew {
                    height,
                    time: header.time,
                    now,
                });
            }
        }
        if self.bip94 && height.is_multiple_of(rules::PERIOD) {
            let back = last.time.saturating_sub(header.time);
            if back > rules::MAX_TIMEWARP_SECS {
                return Err(HeaderChainError::TimeWarp { height, back });
            }
        }
        self.work_above_checkpoint = self.work_above_checkpoint + header.work();
        self.heights.insert(hash, height);
        self.headers.push(header);
        Ok(())
    }

    /// The chain's total work: the checkpoint's, plus every header's above it (counted
    /// from the checkpoint when its work is not known).
    pub fn chain_work(&self) -> Work {
        self.checkpoint
            .chain_work
            .map_or(self.work_above_checkpoint, |at| {
                at + self.work_above_checkpoint
            })
    }

    /// Checks that the chain's total work reaches `network`'s minimum
    /// ([`minimum_chain_work`]) and `seen`, the most work of any chain the verifier has
    /// already accepted (a source that now serves less is behind, or lying).
    pub fn check_work(&self, seen: Option<Work>) -> Result<(), HeaderChainError> {
        let work = self.chain_work();
        let minimum = minimum_chain_work(self.params.network);
        let short = |required: Work, what| HeaderChainError::InsufficientWork {
            found: work,
            required,
            what,
        };
        if work < minimum {
            return Err(short(minimum, "network's minimum chain work"));
        }
        match seen {
            Some(seen) if work < seen => Err(short(seen, "work of a chain already seen")),
            _ => Ok(()),
        }
    }

    /// The checkpoint the chain starts from.
    pub fn checkpoint(&self) -> Checkpoint {
        self.checkpoint
    }

    /// The hash of the tip.
    pub fn tip_hash(&self) -> BlockHash {
        self.headers
            .last()
            .map(Header::block_hash)
            .unwrap_or(self.checkpoint.hash)
    }

    /// The height of the first header held.
    pub fn start_height(&self) -> u32 {
        self.start_height
    }

    /// The header at `height`, if held.
    pub fn header_at(&self, height: u32) -> Option<&Header> {
        let offset = height.checked_sub(self.start_height)?;
        self.headers.get(usize::try_from(offset).ok()?)
    }

    fn check_pow(&self, header: &Header) -> Result<(), HeaderChainError> {
        let target = header.target();
        if target > self.params.max_attainable_target || header.validate_pow(target).is_err() {
            return Err(HeaderChainError::BadProofOfWork(header.block_hash()));
        }
        Ok(())
    }
}

impl HeaderChain for Headers {
    fn height_of(&self, hash: &BlockHash) -> Option<u32> {
        self.heights.get(hash).copied()
    }

    fn tip_height(&self) -> u32 {
        // `headers` is never empty and its length fits: it grew one `push` at a time.
        self.start_height + u32::try_from(self.headers.len().saturating_sub(1)).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests;
