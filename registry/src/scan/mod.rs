//! Finding record candidates in a serialized block without decoding every transaction.
//!
//! A block of a busy chain holds thousands of transactions and at most a few records, and
//! decoding a transaction (allocating its inputs, outputs and witnesses) costs more than
//! reading past it. [`BlockCandidates::scan`] walks the block's bytes, skipping each
//! transaction by its length prefixes, and fully decodes only
//!
//! - the coinbase, whose txid the index stores (an anchor proof pins the Merkle tree's
//!   depth with it), and
//! - transactions with an output whose script starts with `OP_RETURN` and contains the
//!   Milagro [`MAGIC`] somewhere: a necessary condition for
//!   [`RecordCandidate::from_tx`] to accept a transaction (its one `OP_RETURN` must be a
//!   single push that starts with the magic), so nothing it could accept is skipped.
//!
//! The result equals [`BlockCandidates::from_block`] over the fully decoded block (the
//! reference path, kept for tests and for chain sources that hold decoded blocks): the
//! walk follows `bitcoin`'s transaction encoding exactly, with its checks (minimal
//! compact sizes, the segwit flag, a witness flag with no witness, trailing bytes). Bytes
//! that are not a block give a [`ScanError`], never a panic.

use bitcoin::block::Header;
use bitcoin::consensus::encode;
use bitcoin::hashes::Hash as _;
use bitcoin::{Block, BlockHash, Transaction, Txid};
use milagro_anchor::payload::MAGIC;
use milagro_anchor::record::RecordCandidate;

/// The first byte of an `OP_RETURN` output script.
const OP_RETURN: u8 = 0x6a;
/// A serialized block header's length.
const HEADER_LEN: usize = 80;

/// What the registry needs of one block: its header, its coinbase's txid, and the
/// transactions shaped like Milagro records (signers not yet proven).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockCandidates {
    /// The block header (its hash identifies the block).
    pub header: Header,
    /// The txid of the block's first transaction (all zeros for a block without any,
    /// which no valid chain has).
    pub coinbase_txid: Txid,
    /// Record-shaped transactions, in block order (the transactions themselves are not
    /// kept: a candidate holds all that attribution needs).
    pub candidates: Vec<RecordCandidate>,
}

/// Why bytes are not a block the scan can read. Each variant names the byte offset
/// where reading failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The bytes end before the structure they started.
    #[error("the block ends at byte {len}: {needed} bytes wanted at offset {offset}")]
    Truncated {
        /// Where the read started.
        offset: usize,
        /// How many bytes it wanted.
        needed: u64,
        /// The block's length.
        len: usize,
    },
    /// A compact size encoded in more bytes than its value needs (consensus forbids it).
    #[error("non-minimal compact size at offset {offset}")]
    NonMinimalCompactSize {
        /// Where the compact size starts.
        offset: usize,
    },
    /// A transaction without inputs whose next byte is not the segwit flag 1.
    #[error("unsupported segwit flag {flag:#04x} in the transaction at offset {offset}")]
    UnsupportedSegwitFlag {
        /// Where the transaction starts.
        offset: usize,
        /// The flag byte.
        flag: u8,
    },
    /// A transaction serialized with the witness flag whose witnesses are all empty.
    #[error("the transaction at offset {offset} sets the witness flag but has no witness")]
    NoWitness {
        /// Where the transaction starts.
        offset: usize,
    },
    /// Bytes after the last transaction.
    #[error("{count} bytes after the last transaction")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The header, or a transaction the scan decodes fully, did not decode.
    #[error("cannot decode the {what} at offset {offset}")]
    Decode {
        /// "header" or "transaction".
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// The decoder's error.
        #[source]
        source: encode::Error,
    },
}

impl BlockCandidates {
    /// The reference: the candidates of a fully decoded block.
    pub fn from_block(block: &Block) -> Self {
        Self {
            header: block.header,
            coinbase_txid: block
                .txdata
                .first()
                .map_or_else(Txid::all_zeros, Transaction::compute_txid),
            candidates: block
                .txdata
                .iter()
                .filter_map(|tx| RecordCandidate::from_tx(tx).ok())
                .collect(),
        }
    }

    /// Reads a serialized block (as `bitcoind` stores and serves it), decoding only the
    /// coinbase and the transactions that carry an `OP_RETURN` with the Milagro magic.
    pub fn scan(bytes: &[u8]) -> Result<Self, ScanError> {
        let mut reader = Reader { bytes, pos: 0 };
        let header_bytes = reader.take(HEADER_LEN as u64)?;
        let header: Header = decode("header", 0, header_bytes)?;
        let count = reader.compact_size()?;
        let mut coinbase_txid = Txid::all_zeros();
        let mut candidates = Vec::new();
        for index in 0..count {
            let start = reader.pos;
            let carries_magic = reader.skip_transaction()?;
            if index > 0 && !carries_magic {
                continue;
            }
            let tx: Transaction = decode("transaction", start, &bytes[start..reader.pos])?;
            if index == 0 {
                coinbase_txid = tx.compute_txid();
            }
            if carries_magic {
                if let Ok(candidate) = RecordCandidate::from_tx(&tx) {
                    candidates.push(candidate);
                }
            }
        }
        let rest = bytes.len() - reader.pos;
        if rest > 0 {
            return Err(ScanError::TrailingBytes { count: rest });
        }
        Ok(Self {
            header,
            coinbase_txid,
            candidates,
        })
    }

    /// The block's hash.
    pub fn block_hash(&self) -> BlockHash {
        self.header.block_hash()
    }
}

fn decode<T: encode::Decodable>(
    what: &'static str,
    offset: usize,
    bytes: &[u8],
) -> Result<T, ScanError> {
    encode::deserialize(bytes).map_err(|source| ScanError::Decode {
        what,
        offset,
        source,
    })
}

/// A cursor over the block's bytes; every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> Result<&'a [u8], ScanError> {
        let truncated = ScanError::Truncated {
            offset: self.pos,
            needed: n,
            len: self.bytes.len(),
        };
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|end| *end <= self.bytes.len())
            .ok_or(truncated)?;
        let taken = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(taken)
    }

    fn byte(&mut self) -> Result<u8, ScanError> {
        Ok(self.take(1)?[0])
    }

    /// A little-endian integer of `N` bytes.
    fn uint<const N: usize>(&mut self) -> Result<u64, ScanError> {
        let bytes = self.take(N as u64)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |value, byte| value << 8 | u64::from(*byte)))
    }

    /// A compact size ("VarInt"), rejecting non-minimal encodings as `bitcoin` does.
    fn compact_size(&mut self) -> Result<u64, ScanError> {
        let offset = self.pos;
        let (value, min) = match self.byte()? {
            0xff => (self.uint::<8>()?, 0x1_0000_0000),
            0xfe => (self.uint::<4>()?, 0x1_0000),
            0xfd => (self.uint::<2>()?, 0xfd),
            small => return Ok(u64::from(small)),
        };
        if value < min {
            return Err(ScanError::NonMinimalCompactSize { offset });
        }
        Ok(value)
    }

    /// A length-prefixed byte string.
    fn bytes_with_len(&mut self) -> Result<&'a [u8], ScanError> {
        let len = self.compact_size()?;
        self.take(len)
    }

    /// Reads past one transaction (as `bitcoin` decodes it); returns whether one of its
    /// outputs is an `OP_RETURN` script containing the Milagro magic. Every loop reads at
    /// least one byte per round, so a forged count fails on the block's end, not memory.
    fn skip_transaction(&mut self) -> Result<bool, ScanError> {
        let start = self.pos;
        self.take(4)?; // version
        let mut inputs = self.compact_size()?;
        let segwit = inputs == 0;
        if segwit {
            let flag = self.byte()?;
            if flag != 1 {
                return Err(ScanError::UnsupportedSegwitFlag {
                    offset: start,
                    flag,
                });
            }
            inputs = self.compact_size()?;
        }
        for _ in 0..inputs {
            self.take(36)?; // previous output
            self.bytes_with_len()?; // script_sig
            self.take(4)?; // sequence
        }
        let mut carries_magic = false;
        for _ in 0..self.compact_size()? {
            self.take(8)?; // value
            let script = self.bytes_with_len()?;
            carries_magic |= script.first() == Some(&OP_RETURN)
                && script.windows(MAGIC.len()).any(|w| w == MAGIC);
        }
        if segwit {
            let mut witnessed = false;
            for _ in 0..inputs {
                let items = self.compact_size()?;
                witnessed |= items > 0;
                for _ in 0..items {
                    self.bytes_with_len()?;
                }
            }
            if inputs > 0 && !witnessed {
                return Err(ScanError::NoWitness { offset: start });
            }
        }
        self.take(4)?; // lock time
        Ok(carries_magic)
    }
}

#[cfg(test)]
mod tests;
