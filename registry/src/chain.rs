//! The one trait through which the registry reads the chain.

use std::ops::ControlFlow;

use bitcoin::block::Header;
use bitcoin::merkle_tree::MerkleBlock;
use bitcoin::{Block, BlockHash, Transaction, Txid};

/// A block's place in a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlockId {
    /// Height above genesis.
    pub height: u32,
    /// The block hash.
    pub hash: BlockHash,
}

/// Why the chain could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The node could not be reached or refused the credentials; worth retrying later.
    #[error("node unreachable: {0}")]
    Unreachable(String),
    /// The node answered with an RPC error.
    #[error("node rpc {method} failed with code {code}: {message}")]
    Rpc {
        /// The RPC method.
        method: &'static str,
        /// Bitcoin Core's error code.
        code: i32,
        /// Its message.
        message: String,
    },
    /// The node's answer could not be decoded.
    #[error("undecodable answer to {method}: {detail}")]
    Decode {
        /// The RPC method.
        method: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The requested block or transaction is not known to the node.
    #[error("not found: {0}")]
    NotFound(String),
    /// The node does not serve its REST interface, which the registry reads blocks from.
    #[error("the node at {url} does not serve REST (http status {status}): start it with -rest=1")]
    RestDisabled {
        /// The URL asked.
        url: String,
        /// The HTTP status it answered (404 or 403).
        status: u16,
    },
}

/// Read access to a chain (and broadcast), as a full node offers it.
///
/// The blocks it serves are ones a fully validating node connected: the follower
/// attributes records without checking their signatures again, because that node ran
/// every script of them ([`crate::attribution`], ADR 0009). An implementation must not
/// serve blocks that no node validated.
///
/// Implementations: [`crate::bitcoind::BitcoindRpc`] for a local `bitcoind`; tests may use
/// an in-memory chain. Heights are `u32` as in Bitcoin's own serialization.
pub trait ChainSource {
    /// The current best block.
    fn tip(&self) -> Result<BlockId, ChainError>;
    /// The hash of the active-chain block at `height`, or `None` above the tip.
    fn block_hash(&self, height: u32) -> Result<Option<BlockHash>, ChainError>;
    /// The hashes of the active-chain blocks at `heights` (one answer per height).
    fn block_hashes(&self, heights: &[u32]) -> Result<Vec<Option<BlockHash>>, ChainError> {
        heights.iter().map(|h| self.block_hash(*h)).collect()
    }
    /// A full block.
    fn block(&self, hash: &BlockHash) -> Result<Block, ChainError>;
    /// Several full blocks, in order.
    fn blocks(&self, hashes: &[BlockHash]) -> Result<Vec<Block>, ChainError> {
        hashes.iter().map(|h| self.block(h)).collect()
    }
    /// A block serialized as the node stores it, for [`crate::scan`] to read without
    /// decoding every transaction. The follower calls it from a thread of its own, one
    /// block at a time, while it works on the blocks before. The default serializes
    /// [`Self::block`]: right, but it pays for the decoding the scan saves.
    fn raw_block(&self, hash: &BlockHash) -> Result<Vec<u8>, ChainError> {
        Ok(bitcoin::consensus::encode::serialize(&self.block(hash)?))
    }
    /// Several serialized blocks, in order, each handed to `each` as soon as it is read;
    /// stops after the first error or when `each` breaks. The follower's reader calls it;
    /// a source may use the time `each` takes to fetch the next block (the default asks
    /// [`Self::raw_block`] for one after the other).
    fn raw_blocks(
        &self,
        hashes: &[BlockHash],
        each: &mut dyn FnMut(Result<Vec<u8>, ChainError>) -> ControlFlow<()>,
    ) {
        for hash in hashes {
            let block = self.raw_block(hash);
            let failed = block.is_err();
            if each(block).is_break() || failed {
                return;
            }
        }
    }
    /// A block header.
    fn header(&self, hash: &BlockHash) -> Result<Header, ChainError>;
    /// Several block headers, in order.
    fn headers(&self, hashes: &[BlockHash]) -> Result<Vec<Header>, ChainError> {
        hashes.iter().map(|h| self.header(h)).collect()
    }
    /// A transaction in a given block.
    fn transaction(&self, txid: &Txid, block: &BlockHash) -> Result<Transaction, ChainError>;
    /// Confirmed transactions looked up by txid alone, in order (`bitcoind` needs
    /// `-txindex=1`): the funding transactions whose outputs records spend.
    fn indexed_transactions(&self, txids: &[Txid]) -> Result<Vec<Transaction>, ChainError>;
    /// The partial Merkle tree of `block` matching `txids` (`gettxoutproof`).
    fn merkle_block(&self, txids: &[Txid], block: &BlockHash) -> Result<MerkleBlock, ChainError>;
    /// Sends a transaction to the network.
    fn broadcast(&self, tx: &Transaction) -> Result<Txid, ChainError>;
}

impl<T: ChainSource + ?Sized> ChainSource for &T {
    fn tip(&self) -> Result<BlockId, ChainError> {
        (**self).tip()
    }
    fn block_hash(&self, height: u32) -> Result<Option<BlockHash>, ChainError> {
        (**self).block_hash(height)
    }
    fn block_hashes(&self, heights: &[u32]) -> Result<Vec<Option<BlockHash>>, ChainError> {
        (**self).block_hashes(heights)
    }
    fn block(&self, hash: &BlockHash) -> Result<Block, ChainError> {
        (**self).block(hash)
    }
    fn blocks(&self, hashes: &[BlockHash]) -> Result<Vec<Block>, ChainError> {
        (**self).blocks(hashes)
    }
    fn raw_block(&self, hash: &BlockHash) -> Result<Vec<u8>, ChainError> {
        (**self).raw_block(hash)
    }
    fn raw_blocks(
        &self,
        hashes: &[BlockHash],
        each: &mut dyn FnMut(Result<Vec<u8>, ChainError>) -> ControlFlow<()>,
    ) {
        (**self).raw_blocks(hashes, each)
    }
    fn header(&self, hash: &BlockHash) -> Result<Header, ChainError> {
        (**self).header(hash)
    }
    fn headers(&self, hashes: &[BlockHash]) -> Result<Vec<Header>, ChainError> {
        (**self).headers(hashes)
    }
    fn transaction(&self, txid: &Txid, block: &BlockHash) -> Result<Transaction, ChainError> {
        (**self).transaction(txid, block)
    }
    fn indexed_transactions(&self, txids: &[Txid]) -> Result<Vec<Transaction>, ChainError> {
        (**self).indexed_transactions(txids)
    }
    fn merkle_block(&self, txids: &[Txid], block: &BlockHash) -> Result<MerkleBlock, ChainError> {
        (**self).merkle_block(txids, block)
    }
    fn broadcast(&self, tx: &Transaction) -> Result<Txid, ChainError> {
        (**self).broadcast(tx)
    }
}
