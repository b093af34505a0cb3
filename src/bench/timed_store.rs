//! A [`RecordStore`] wrapper that times `apply`, to split a real sync into store and rest.
//!
//! Timing the store on its own (the same change sets applied back to back) misses how it
//! behaves during a sync, sharing the CPU with the node and the follower's reading; this
//! measures the time the follower's writer spends in `apply` during a sync (overlapped
//! with reading the next step, so it is not all added to the sync's time).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bitcoin::{BlockHash, Txid};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::CompressedKey;
use milagro_registry::chain::BlockId;
use milagro_registry::store::{ChangeSet, IndexedRecord, RecordStore, StoreError};

/// `S`, with the total time spent in [`RecordStore::apply`].
#[derive(Debug)]
pub struct TimedStore<S> {
    inner: S,
    /// Nanoseconds.
    applying: AtomicU64,
}

impl<S> TimedStore<S> {
    /// Wraps `inner`, with no time counted yet.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            applying: AtomicU64::new(0),
        }
    }

    /// Time spent in `apply` so far.
    pub fn apply_time(&self) -> Duration {
        Duration::from_nanos(self.applying.load(Ordering::Relaxed))
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
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.applying.fetch_add(nanos, Ordering::Relaxed);
        result
    }
    fn by_digest(&self, digest: &Digest) -> Result<Vec<IndexedRecord>, StoreError> {
        self.inner.by_digest(digest)
    }
    fn by_txid(&self, txid: &Txid) -> Result<Vec<IndexedRecord>, StoreError> {
        self.inner.by_txid(txid)
    }
    fn by_signer(&self, signer: &CompressedKey) -> Result<Vec<IndexedRecord>, StoreError> {
        self.inner.by_signer(signer)
    }
    fn record_count(&self) -> Result<u64, StoreError> {
        self.inner.record_count()
    }
}
