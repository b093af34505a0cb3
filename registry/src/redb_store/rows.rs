//! The byte layout of the index's tables (`registry/SCHEMA.md`, format version 5).
//!
//! Every key and value has a fixed width, so redb keeps no per-entry lengths in its pages,
//! and a record's position is 8 bytes (`height ‖ n`, its place among its block's records),
//! so the secondary keys are their prefix plus 8 bytes. What is the same for every record
//! of a block (its hash and coinbase txid) is stored once per block, in its checkpoint.

use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, Txid};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::{CompressedKey, Signature};
use milagro_anchor::payload::RecordKind;
use redb::TableDefinition;

use crate::store::{IndexedRecord, StoreError};

/// Length of a position.
const POSITION_LEN: usize = 8;

/// Length of a record row: kind, digest, txid, vout, signer, signature.
pub(super) const ROW_LEN: usize = 1 + 32 + 32 + 4 + 33 + 64;

/// Length of a checkpoint: block hash, coinbase txid.
const CHECKPOINT_LEN: usize = 64;

/// Length of a `by_digest` or `by_txid` key (32-byte prefix).
const HASH_KEY_LEN: usize = 32 + POSITION_LEN;

/// Length of a `by_signer` key (33-byte prefix).
const SIGNER_KEY_LEN: usize = 33 + POSITION_LEN;

/// `"version"` → `u32`, `"tip"` → `height u32 ‖ block hash`, `"count"` → `u64`.
pub(super) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// `height` → block hash ‖ coinbase txid.
pub(super) const CHECKPOINTS: TableDefinition<u32, &[u8; CHECKPOINT_LEN]> =
    TableDefinition::new("checkpoints");
/// Position → the record's row.
pub(super) const RECORDS: TableDefinition<&[u8; POSITION_LEN], &[u8; ROW_LEN]> =
    TableDefinition::new("records");
/// `digest ‖ position` → nothing.
pub(super) const BY_DIGEST: TableDefinition<&[u8; HASH_KEY_LEN], ()> =
    TableDefinition::new("by_digest");
/// `signer (compressed SEC1) ‖ position` → nothing.
pub(super) const BY_SIGNER: TableDefinition<&[u8; SIGNER_KEY_LEN], ()> =
    TableDefinition::new("by_signer");
/// `txid ‖ position` → nothing.
pub(super) const BY_TXID: TableDefinition<&[u8; HASH_KEY_LEN], ()> =
    TableDefinition::new("by_txid");

/// A record's position: `height u32 ‖ n u32`, big-endian, so that byte order is chain
/// order (`n` counts the block's records from 0, in block order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Position([u8; POSITION_LEN]);

impl Position {
    /// The position of the `n`th record of the block at `height`.
    pub(super) fn new(height: u32, n: u32) -> Self {
        let mut key = [0; POSITION_LEN];
        key[..4].copy_from_slice(&height.to_be_bytes());
        key[4..].copy_from_slice(&n.to_be_bytes());
        Self(key)
    }

    /// The lowest position at `height`: where a rollback from `height` starts.
    pub(super) fn first_at(height: u32) -> Self {
        Self::new(height, 0)
    }

    /// The position a `records` key or a secondary key ends with.
    pub(super) fn ending<const N: usize>(key: &[u8; N]) -> Self {
        let mut position = [0; POSITION_LEN];
        position.copy_from_slice(&key[N - POSITION_LEN..]);
        Self(position)
    }

    /// The `records` key.
    pub(super) fn key(&self) -> &[u8; POSITION_LEN] {
        &self.0
    }

    /// The height of the record's block.
    pub(super) fn height(&self) -> u32 {
        u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }
}

/// A secondary key: `prefix ‖ position`.
fn index_key<const P: usize, const N: usize>(prefix: &[u8; P], position: &Position) -> [u8; N] {
    const { assert!(P + POSITION_LEN == N) };
    let mut key = [0; N];
    key[..P].copy_from_slice(prefix);
    key[P..].copy_from_slice(&position.0);
    key
}

/// The first and last secondary keys that start with `prefix`.
pub(super) fn prefix_bounds<const P: usize, const N: usize>(
    prefix: &[u8; P],
) -> ([u8; N], [u8; N]) {
    (
        index_key(prefix, &Position([0; POSITION_LEN])),
        index_key(prefix, &Position([0xff; POSITION_LEN])),
    )
}

/// The three secondary keys of a record (written with it, deleted with it).
pub(super) struct IndexKeys {
    /// Its `by_digest` key.
    pub(super) digest: [u8; HASH_KEY_LEN],
    /// Its `by_signer` key.
    pub(super) signer: [u8; SIGNER_KEY_LEN],
    /// Its `by_txid` key.
    pub(super) txid: [u8; HASH_KEY_LEN],
}

impl IndexKeys {
    /// The keys of the record whose row is `row`, at `position`.
    pub(super) fn of(row: &[u8; ROW_LEN], position: &Position) -> Self {
        Self {
            digest: index_key(&copy::<32>(&row[1..33]), position),
            signer: index_key(&copy::<33>(&row[69..102]), position),
            txid: index_key(&copy::<32>(&row[33..65]), position),
        }
    }
}

/// A block's checkpoint.
pub(super) fn checkpoint(hash: &BlockHash, coinbase_txid: &Txid) -> [u8; CHECKPOINT_LEN] {
    let mut value = [0; CHECKPOINT_LEN];
    value[..32].copy_from_slice(hash.as_byte_array());
    value[32..].copy_from_slice(coinbase_txid.as_byte_array());
    value
}

/// The block hash and coinbase txid of a checkpoint.
pub(super) fn read_checkpoint(value: &[u8; CHECKPOINT_LEN]) -> (BlockHash, Txid) {
    (
        BlockHash::from_byte_array(copy(&value[..32])),
        Txid::from_byte_array(copy(&value[32..])),
    )
}

/// A record's row (what its position and its block's checkpoint do not say).
pub(super) fn row(record: &IndexedRecord) -> [u8; ROW_LEN] {
    let mut row = [0; ROW_LEN];
    row[0] = record.kind.to_byte();
    row[1..33].copy_from_slice(record.digest.as_bytes());
    row[33..65].copy_from_slice(record.txid.as_byte_array());
    row[65..69].copy_from_slice(&record.vout.to_be_bytes());
    row[69..102].copy_from_slice(record.signer.as_bytes());
    row[102..].copy_from_slice(&record.signature.to_compact());
    row
}

/// The record at `position` from its row and its block's checkpoint.
pub(super) fn read_record(
    position: &Position,
    row: &[u8; ROW_LEN],
    checkpoint: &[u8; CHECKPOINT_LEN],
) -> Result<IndexedRecord, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("record: {what}"));
    let (block_hash, coinbase_txid) = read_checkpoint(checkpoint);
    Ok(IndexedRecord {
        kind: RecordKind::from_byte(row[0]).map_err(|_| corrupt("kind"))?,
        digest: Digest::from_bytes(copy(&row[1..33])),
        txid: Txid::from_byte_array(copy(&row[33..65])),
        vout: u32::from_be_bytes(copy(&row[65..69])),
        height: position.height(),
        block_hash,
        signer: CompressedKey::from_slice(&row[69..102]).map_err(|_| corrupt("signer"))?,
        signature: Signature::from_compact(&row[102..]).map_err(|_| corrupt("signature"))?,
        coinbase_txid,
    })
}

/// `N` bytes of a slice the callers cut at fixed offsets of a fixed-width value.
fn copy<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use milagro_anchor::keys::SecretKey;

    #[test]
    fn a_record_reads_back_from_its_row_position_and_checkpoint() {
        let key = SecretKey::from_bytes(&[5; 32]).unwrap();
        let record = IndexedRecord {
            kind: RecordKind::AuditLogRoot,
            digest: Digest::sha256(b"d"),
            txid: Txid::from_byte_array([1; 32]),
            vout: 3,
            height: 700_001,
            block_hash: BlockHash::from_byte_array([2; 32]),
            signer: key.public_key().compressed(),
            signature: key.sign_digest(&Digest::sha256(b"m")),
            coinbase_txid: Txid::from_byte_array([4; 32]),
        };
        let at = Position::new(record.height, 9);
        let stored = row(&record);
        let check = checkpoint(&record.block_hash, &record.coinbase_txid);
        assert_eq!(read_record(&at, &stored, &check).unwrap(), record);
        let keys = IndexKeys::of(&stored, &at);
        assert_eq!(keys.digest[..32], *record.digest.as_bytes());
        assert_eq!(keys.signer[..33], *record.signer.as_bytes());
        assert_eq!(keys.txid[..32], *record.txid.as_byte_array());
        assert_eq!(Position::ending(&keys.digest), at);
        assert_eq!(Position::ending(&keys.signer), at);
        assert_eq!(Position::ending(&keys.txid).height(), 700_001);
        let (low, high) = prefix_bounds(record.txid.as_byte_array());
        assert!(low <= keys.txid && keys.txid <= high);
        let (low, high): ([u8; HASH_KEY_LEN], _) = prefix_bounds(&[0xee; 32]);
        assert!(!(low..=high).contains(&keys.txid));
    }

    #[test]
    fn positions_sort_in_chain_order() {
        assert!(Position::new(1, u32::MAX) < Position::new(2, 0));
        assert!(Position::new(2, 0) < Position::new(2, 1));
        assert_eq!(Position::first_at(2), Position::new(2, 0));
    }
}
