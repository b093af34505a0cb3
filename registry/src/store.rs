//! What the registry persists, as change sets applied atomically to a [`RecordStore`].
//!
//! The follower never writes rows directly: it computes a [`ChangeSet`] (blocks to
//! disconnect, blocks to connect with their records) and the store applies it in one atomic
//! step together with the new tip. A crash therefore leaves either the old state or the new
//! one, and a restart resumes from whatever tip was written.

use std::collections::BTreeMap;
use std::sync::RwLock;

use bitcoin::{BlockHash, Txid};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::{CompressedKey, Signature};
use milagro_anchor::nonce::NoncePoint;
use milagro_anchor::payload::RecordKind;
use milagro_anchor::record::NodeRecord;
use serde::Serialize;

use crate::chain::BlockId;

/// A Milagro record placed in a block of the active chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IndexedRecord {
    /// Record kind.
    pub kind: RecordKind,
    /// Anchored digest.
    pub digest: Digest,
    /// Anchoring transaction.
    pub txid: Txid,
    /// Index of its `OP_RETURN` output.
    pub vout: u32,
    /// Height of the block holding it.
    pub height: u32,
    /// That block's hash.
    pub block_hash: BlockHash,
    /// The key that signed the first input, as its transaction carries it (the node that
    /// validated the block checked it is a point).
    pub signer: CompressedKey,
    /// The signer's signature; shown in JSON as its nonce point `R` (compressed, even y).
    #[serde(rename = "nonce_point", serialize_with = "serialize_nonce_point")]
    pub signature: Signature,
    /// The txid of the block's coinbase, which an anchor proof carries to pin the Merkle
    /// tree's depth (kept so a proof needs no second look at the block).
    #[serde(skip)]
    pub coinbase_txid: Txid,
}

fn serialize_nonce_point<S: serde::Serializer>(sig: &Signature, s: S) -> Result<S::Ok, S::Error> {
    match NoncePoint::from_signature(sig) {
        Ok(point) => s.collect_str(&hex::encode(point.to_sec1())),
        Err(_) => s.serialize_none(),
    }
}

impl IndexedRecord {
    /// Places a transaction's (attributed) record in a block whose coinbase is
    /// `coinbase_txid`.
    pub fn new(record: &NodeRecord, block: BlockId, coinbase_txid: Txid) -> Self {
        Self {
            coinbase_txid,
            kind: record.kind,
            digest: record.digest,
            txid: record.txid,
            vout: record.vout,
            height: block.height,
            block_hash: block.hash,
            signer: record.signer,
            signature: record.signature,
        }
    }

    /// Confirmations when the chain's tip is at `tip_height`: 1 in the tip itself (the
    /// same rule as [`milagro_anchor::proof::VerifiedAnchor::depth`]).
    pub fn depth(&self, tip_height: u32) -> u32 {
        tip_height.saturating_sub(self.height) + 1
    }

    /// The record's depth below the store's tip (0 if the store has no tip).
    pub fn depth_in(&self, store: &impl RecordStore) -> Result<u32, StoreError> {
        Ok(store.tip()?.map_or(0, |tip| self.depth(tip.height)))
    }

    /// The nonce point `R` of the signer's signature.
    pub fn nonce_point(&self) -> Option<NoncePoint> {
        NoncePoint::from_signature(&self.signature).ok()
    }
}

/// A connected block and the records it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedBlock {
    /// Where the block sits.
    pub id: BlockId,
    /// The txid of its coinbase (what its records' anchor proofs carry).
    pub coinbase_txid: Txid,
    /// Its Milagro records.
    pub records: Vec<IndexedRecord>,
}

/// One atomic update: drop every block at or above `disconnect_from`, then connect `connect`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// Lowest height to roll back (inclusive), if a reorg was found.
    pub disconnect_from: Option<u32>,
    /// Blocks to add, in height order, each building on the previous.
    pub connect: Vec<ConnectedBlock>,
}

impl ChangeSet {
    /// Whether applying it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.disconnect_from.is_none() && self.connect.is_empty()
    }

    /// Records this change set adds.
    pub fn records_added(&self) -> usize {
        self.connect.iter().map(|b| b.records.len()).sum()
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database reported an error.
    #[error("storage: {0}")]
    Backend(String),
    /// Stored bytes do not decode: the database is damaged.
    #[error("corrupt index: {0}")]
    Corrupt(String),
    /// The database was written by another format version.
    #[error(
        "index format version {found}, this build reads {expected}: reindex with a fresh --db"
    )]
    FormatVersion {
        /// Version on disk.
        found: u32,
        /// Version this build reads.
        expected: u32,
    },
    /// A change set that does not connect to the stored tip (a bug in the caller).
    #[error("change set does not connect: {0}")]
    DoesNotConnect(String),
}

/// Persistent, authoritative index of Milagro records in the active chain. Shared between
/// threads: the follower writes from one while services read from others.
pub trait RecordStore: Send + Sync {
    /// The last block indexed.
    fn tip(&self) -> Result<Option<BlockId>, StoreError>;
    /// The indexed block hash at `height`.
    fn block_hash_at(&self, height: u32) -> Result<Option<BlockHash>, StoreError>;
    /// Applies `changes` atomically (records and tip together).
    fn apply(&self, changes: &ChangeSet) -> Result<(), StoreError>;
    /// Records anchoring `digest`.
    fn by_digest(&self, digest: &Digest) -> Result<Vec<IndexedRecord>, StoreError>;
    /// Records in transaction `txid`.
    fn by_txid(&self, txid: &Txid) -> Result<Vec<IndexedRecord>, StoreError>;
    /// Records signed by `signer`.
    fn by_signer(&self, signer: &CompressedKey) -> Result<Vec<IndexedRecord>, StoreError>;
    /// How many records are indexed.
    fn record_count(&self) -> Result<u64, StoreError>;
}

macro_rules! forward_record_store {
    ($($target:ty),*) => {$(
        impl<T: RecordStore + ?Sized> RecordStore for $target {
            fn tip(&self) -> Result<Option<BlockId>, StoreError> {
                (**self).tip()
            }
            fn block_hash_at(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
                (**self).block_hash_at(height)
            }
            fn apply(&self, changes: &ChangeSet) -> Result<(), StoreError> {
                (**self).apply(changes)
            }
            fn by_digest(&self, digest: &Digest) -> Result<Vec<IndexedRecord>, StoreError> {
                (**self).by_digest(digest)
            }
            fn by_txid(&self, txid: &Txid) -> Result<Vec<IndexedRecord>, StoreError> {
                (**self).by_txid(txid)
            }
            fn by_signer(&self, signer: &CompressedKey) -> Result<Vec<IndexedRecord>, StoreError> {
                (**self).by_signer(signer)
            }
            fn record_count(&self) -> Result<u64, StoreError> {
                (**self).record_count()
            }
        }
    )*};
}

forward_record_store!(&T, Box<T>, std::sync::Arc<T>);

/// Checks that `changes` builds on `tip` (after its rollback); shared by every store.
pub(crate) fn check_connects(tip: Option<BlockId>, changes: &ChangeSet) -> Result<(), StoreError> {
    let mut expected_height = match (changes.disconnect_from, tip) {
        (Some(from), _) => Some(from),
        (None, Some(tip)) => Some(tip.height + 1),
        (None, None) => None,
    };
    for block in &changes.connect {
        if let Some(height) = expected_height {
            if block.id.height != height {
                return Err(StoreError::DoesNotConnect(format!(
                    "block {} at height {}, expected height {height}",
                    block.id.hash, block.id.height
                )));
            }
        }
        expected_height = Some(block.id.height + 1);
    }
    Ok(())
}

/// The blocks of a [`MemoryStore`]: height → (hash, records).
type BlocksByHeight = BTreeMap<u32, (BlockHash, Vec<IndexedRecord>)>;

/// An in-memory store for unit tests of the follower.
#[derive(Debug, Default)]
pub struct MemoryStore {
    blocks: RwLock<BlocksByHeight>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, BlocksByHeight>, StoreError> {
        self.blocks
            .read()
            .map_err(|_| StoreError::Backend("lock poisoned".into()))
    }

    fn find(
        &self,
        keep: impl Fn(&IndexedRecord) -> bool,
    ) -> Result<Vec<IndexedRecord>, StoreError> {
        Ok(self
            .read()?
            .values()
            .flat_map(|(_, r)| r.iter().copied())
            .filter(|r| keep(r))
            .collect())
    }
}

impl RecordStore for MemoryStore {
    fn tip(&self) -> Result<Option<BlockId>, StoreError> {
        Ok(self
            .read()?
            .iter()
            .next_back()
            .map(|(height, (hash, _))| BlockId {
                height: *height,
                hash: *hash,
            }))
    }

    fn block_hash_at(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
        Ok(self.read()?.get(&height).map(|(hash, _)| *hash))
    }

    fn apply(&self, changes: &ChangeSet) -> Result<(), StoreError> {
        check_connects(self.tip()?, changes)?;
        let mut blocks = self
            .blocks
            .write()
            .map_err(|_| StoreError::Backend("lock poisoned".into()))?;
        if let Some(from) = changes.disconnect_from {
            blocks.split_off(&from);
        }
        for block in &changes.connect {
            blocks.insert(block.id.height, (block.id.hash, block.records.clone()));
        }
        Ok(())
    }

    fn by_digest(&self, digest: &Digest) -> Result<Vec<IndexedRecord>, StoreError> {
        self.find(|r| &r.digest == digest)
    }

    fn by_txid(&self, txid: &Txid) -> Result<Vec<IndexedRecord>, StoreError> {
        self.find(|r| &r.txid == txid)
    }

    fn by_signer(&self, signer: &CompressedKey) -> Result<Vec<IndexedRecord>, StoreError> {
        self.find(|r| &r.signer == signer)
    }

    fn record_count(&self) -> Result<u64, StoreError> {
        Ok(self.read()?.values().map(|(_, r)| r.len() as u64).sum())
    }
}
