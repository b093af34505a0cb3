//! Header chains: the only thing an SPV verifier needs to trust.
//!
//! [`Headers`] starts from one trusted header (a checkpoint: genesis, or a recent block
//! the verifier got from a source it trusts) and accepts further headers only if each
//! links to the previous one and carries valid proof of work for its declared target,
//! which must not be easier than the network allows. It does not re-check difficulty
//! retargeting; a verifier that talks to several sources keeps the chain with most work.

use std::collections::HashMap;

use bitcoin::block::Header;
use bitcoin::{BlockHash, Network, Target};

/// Anything that can say at which height a block sits in the chain it trusts.
pub trait HeaderChain {
    /// The height of `hash`, if it is in the chain.
    fn height_of(&self, hash: &BlockHash) -> Option<u32>;
    /// The height of the chain's tip.
    fn tip_height(&self) -> u32;
}

/// A contiguous, proof-of-work-checked run of headers.
#[derive(Debug, Clone)]
pub struct Headers {
    max_target: Target,
    start_height: u32,
    headers: Vec<Header>,
    heights: HashMap<BlockHash, u32>,
}

/// Why a header was refused.
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
    /// No headers were given.
    #[error("a header chain needs at least one header")]
    Empty,
    /// The chain would pass the largest height a block can have here.
    #[error("height overflow")]
    HeightOverflow,
}

impl Headers {
    /// Starts a chain at a trusted header of the given height.
    pub fn new(
        network: Network,
        start_height: u32,
        first: Header,
    ) -> Result<Self, HeaderChainError> {
        let max_target = bitcoin::consensus::Params::new(network).max_attainable_target;
        let mut chain = Self {
            max_target,
            start_height,
            headers: Vec::new(),
            heights: HashMap::new(),
        };
        chain.check_pow(&first)?;
        chain.heights.insert(first.block_hash(), start_height);
        chain.headers.push(first);
        Ok(chain)
    }

    /// Builds a chain from consecutive headers, the first of which is trusted.
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

    /// Appends a header that builds on the tip.
    pub fn push(&mut self, header: Header) -> Result<(), HeaderChainError> {
        let height = self
            .tip_height()
            .checked_add(1)
            .ok_or(HeaderChainError::HeightOverflow)?;
        let hash = header.block_hash();
        if Some(header.prev_blockhash) != self.headers.last().map(Header::block_hash) {
            return Err(HeaderChainError::Disconnected { hash, height });
        }
        self.check_pow(&header)?;
        self.heights.insert(hash, height);
        self.headers.push(header);
        Ok(())
    }

    /// The hash of the tip.
    pub fn tip_hash(&self) -> BlockHash {
        self.headers
            .last()
            .map(Header::block_hash)
            .unwrap_or_else(bitcoin::hashes::Hash::all_zeros)
    }

    /// The height of the first (trusted) header.
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
        if target > self.max_target || header.validate_pow(target).is_err() {
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
