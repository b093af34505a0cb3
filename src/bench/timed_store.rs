//! A [`RecordStore`] wrapper that times `apply`, to split a real sync into store and rest.
//!
//! Timing the store on its own (the same change sets applied back to back) misses how it
//! behaves between fetches, with the node and `sled`'s own threads sharing the CPU; this
//! measures the time the follower actually spends waiting for the store during a sync.

use std::cell::Cell;
use std::time::{Duration, Instant};

use bitcoin::{BlockHash, Txid};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::PublicKey;
use milagro_registry::chain::BlockId;
use milagro_registry::store::{ChangeSet, IndexedRecord, RecordStore, StoreError};

/// `S`, with the total time spent in [`RecordStore::apply`].
#[derive(Debug)]
pub struct TimedStore<S> {
    inner: S,
    applying: Cell<Duration>,
}

impl<S> TimedStore<S> {
    /// Wraps `inner`, with no time counted yet.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            applying: Cell::new(Duration::ZERO),
        }
    }

    /// Time spent in `apply` so far.
    pub fn apply_time(&self) -> Duration {
        self.applying.get()
    }
}

impl<S: RecordStore> RecordStore for TimedStore<S> {
    fn tip(&self) -> Result<Option<BlockId>, StoreError> {
        self.inner.tip()
    }
    fn block_hash_at(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
        self.inner.block_hash_at(height)
    }
    fn apply(&self, changes: &ChangeSet) -> Result<(), StoreError> {
        let start = Instant::now();
        let result = self.inner.apply(changes);
        self.applying.set(self.applying.get() + start.elapsed());
        result
    }
    fn by_digest(&self, digest: &Digest) -> Result<Vec<IndexedRecord>, StoreError> {
        self.inner.by_digest(digest)
    }
    fn by_txid(&self, txid: &Txid) -> Result<Vec<IndexedRecord>, StoreError> {
        self.inner.by_txid(txid)
    }
    fn by_signer(&self, signer: &PublicKey) -> Result<Vec<IndexedRecord>, StoreError> {
        self.inner.by_signer(signer)
    }
    fn record_count(&self) -> Result<u64, StoreError> {
        self.inner.record_count()
    }
}
