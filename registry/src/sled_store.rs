//! The default [`RecordStore`]: one `sled` tree, prefixed keys, one atomic batch per change.
//!
//! The schema is documented in `registry/SCHEMA.md`. The tip, the checkpoints and the
//! record rows of a change set go into the same `sled::Batch`, and the batch is flushed
//! before `apply` returns, so after a crash the index is exactly the state of some completed
//! `apply` call.

use std::path::Path;

use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, Txid};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::PublicKey;

use crate::chain::BlockId;
use crate::store::{check_connects, ChangeSet, IndexedRecord, RecordStore, StoreError};

/// The on-disk format this build reads and writes.
pub const FORMAT_VERSION: u32 = 2;

const VERSION_KEY: &[u8] = b"V";
const TIP_KEY: &[u8] = b"T";
const COUNT_KEY: &[u8] = b"N";
const CHECKPOINT: u8 = b'C';
const RECORD: u8 = b'R';
const BY_DIGEST: u8 = b'D';
const BY_SIGNER: u8 = b'S';
const BY_HEIGHT: u8 = b'H';
/// Length of a record id: txid ‖ vout.
const ID_LEN: usize = 36;

/// A [`RecordStore`] in a `sled` database directory.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn record_id(txid: &Txid, vout: u32) -> [u8; ID_LEN] {
    let mut id = [0u8; ID_LEN];
    id[..32].copy_from_slice(txid.as_byte_array());
    id[32..].copy_from_slice(&vout.to_be_bytes());
    id
}

fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![prefix];
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

/// How long [`SledStore::open`] waits for another handle in this process to let go.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// `sled::open`, retried while the database's file lock is still held: sled releases it
/// from a background thread shortly after the last handle is dropped, so reopening at once
/// in the same process (a restart in a test, a service restarting its index) can find it
/// taken. Another *process* holding the lock is still refused, after the wait. Every
/// sled database of the workspace is opened through it.
pub fn open_waiting_for_lock(dir: &Path) -> Result<sled::Db, StoreError> {
    open_with(sled::Config::new().path(dir))
}

/// sled's page cache for the index. With sled's default (1 GiB) a sync's memory grew by
/// about 12 KB per record indexed (320 MB for 20,000 records); with a few MiB, by about
/// 3 KB (sled 0.34 keeps per-page state in memory whatever the cache). The index's reads
/// are point lookups and short prefix scans, which the operating system's page cache
/// serves as well.
pub const INDEX_CACHE_BYTES: u64 = 4 << 20;

fn open_with(config: sled::Config) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match config.open() {
            // sled reports a held lock as `ErrorKind::Other` with this message (sled 0.34,
            // `config.rs`); the message is its only signal.
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other.map_err(backend),
        }
    }
}

impl SledStore {
    /// Opens (or creates) the index in `dir`; refuses one of another format version.
    /// Its page cache is [`INDEX_CACHE_BYTES`].
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = open_with(
            sled::Config::new()
                .path(dir)
                .cache_capacity(INDEX_CACHE_BYTES),
        )?;
        match db.get(VERSION_KEY).map_err(backend)? {
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt("format version".into()))?;
                if found != FORMAT_VERSION {
                    return Err(StoreError::FormatVersion {
                        found,
                        expected: FORMAT_VERSION,
                    });
                }
            }
            None if db.is_empty() => {
                db.insert(VERSION_KEY, &FORMAT_VERSION.to_be_bytes())
                    .map_err(backend)?;
                db.flush().map_err(backend)?;
            }
            None => {
                return Err(StoreError::Corrupt(
                    "no format version in a non-empty index".into(),
                ))
            }
        }
        Ok(Self { db })
    }

    fn count(&self) -> Result<u64, StoreError> {
        match self.db.get(COUNT_KEY).map_err(backend)? {
            None => Ok(0),
            Some(bytes) => <[u8; 8]>::try_from(bytes.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("record count".into())),
        }
    }

    fn record(&self, id: &[u8]) -> Result<IndexedRecord, StoreError> {
        let bytes = self
            .db
            .get(key(RECORD, &[id]))
            .map_err(backend)?
            .ok_or_else(|| StoreError::Corrupt("index row without record".into()))?;
        IndexedRecord::decode(&bytes)
    }

    /// Records whose index key starts with `prefix`; the record id is the key's last 36 bytes.
    fn scan(&self, prefix: Vec<u8>) -> Result<Vec<IndexedRecord>, StoreError> {
        self.db
            .scan_prefix(prefix)
            .map(|entry| {
                let (k, _) = entry.map_err(backend)?;
                let id = k.len().checked_sub(ID_LEN).map(|start| &k[start..]);
                self.record(id.ok_or_else(|| StoreError::Corrupt("short index key".into()))?)
            })
            .collect()
    }

    fn remove_record(&self, batch: &mut sled::Batch, record: &IndexedRecord) {
        let id = record_id(&record.txid, record.vout);
        batch.remove(key(RECORD, &[&id]));
        batch.remove(key(BY_DIGEST, &[record.digest.as_bytes(), &id]));
        batch.remove(key(BY_SIGNER, &[&record.signer.to_sec1(), &id]));
        batch.remove(key(BY_HEIGHT, &[&record.height.to_be_bytes(), &id]));
    }

    fn insert_record(batch: &mut sled::Batch, record: &IndexedRecord) {
        let id = record_id(&record.txid, record.vout);
        batch.insert(key(RECORD, &[&id]), record.encode());
        batch.insert(key(BY_DIGEST, &[record.digest.as_bytes(), &id]), &[]);
        batch.insert(key(BY_SIGNER, &[&record.signer.to_sec1(), &id]), &[]);
        batch.insert(key(BY_HEIGHT, &[&record.height.to_be_bytes(), &id]), &[]);
    }
}

impl RecordStore for SledStore {
    fn tip(&self) -> Result<Option<BlockId>, StoreError> {
        let Some(bytes) = self.db.get(TIP_KEY).map_err(backend)? else {
            return Ok(None);
        };
        if bytes.len() != 36 {
            return Err(StoreError::Corrupt("tip".into()));
        }
        let height = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let hash = BlockHash::from_slice(&bytes[4..])
            .map_err(|_| StoreError::Corrupt("tip hash".into()))?;
        Ok(Some(BlockId { height, hash }))
    }

    fn block_hash_at(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
        self.db
            .get(key(CHECKPOINT, &[&height.to_be_bytes()]))
            .map_err(backend)?
            .map(|bytes| {
                BlockHash::from_slice(&bytes).map_err(|_| StoreError::Corrupt("checkpoint".into()))
            })
            .transpose()
    }

    fn apply(&self, changes: &ChangeSet) -> Result<(), StoreError> {
        let old_tip = self.tip()?;
        check_connects(old_tip, changes)?;
        if changes.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        let mut count = self.count()?;
        let mut tip = old_tip;
        if let Some(from) = changes.disconnect_from {
            for record in self.scan_from_height(from)? {
                self.remove_record(&mut batch, &record);
                count = count.saturating_sub(1);
            }
            let start = key(CHECKPOINT, &[&from.to_be_bytes()]);
            for entry in self.db.range(start..vec![CHECKPOINT + 1]) {
                let (k, _) = entry.map_err(backend)?;
                batch.remove(k);
            }
            tip = match from.checked_sub(1) {
                Some(below) => self.block_hash_at(below)?.map(|hash| BlockId {
                    height: below,
                    hash,
                }),
                None => None,
            };
        }
        for block in &changes.connect {
            batch.insert(
                key(CHECKPOINT, &[&block.id.height.to_be_bytes()]),
                block.id.hash.as_byte_array(),
            );
            for record in &block.records {
                Self::insert_record(&mut batch, record);
                count += 1;
            }
            tip = Some(block.id);
        }
        match tip {
            Some(tip) => {
                let mut bytes = tip.height.to_be_bytes().to_vec();
                bytes.extend_from_slice(tip.hash.as_byte_array());
                batch.insert(TIP_KEY, bytes);
            }
            None => batch.remove(TIP_KEY),
        }
        batch.insert(COUNT_KEY, &count.to_be_bytes());
        self.db.apply_batch(batch).map_err(backend)?;
        self.db.flush().map_err(backend)?;
        Ok(())
    }

    fn by_digest(&self, digest: &Digest) -> Result<Vec<IndexedRecord>, StoreError> {
        self.scan(key(BY_DIGEST, &[digest.as_bytes()]))
    }

    fn by_txid(&self, txid: &Txid) -> Result<Vec<IndexedRecord>, StoreError> {
        self.db
            .scan_prefix(key(RECORD, &[txid.as_byte_array()]))
            .map(|entry| IndexedRecord::decode(&entry.map_err(backend)?.1))
            .collect()
    }

    fn by_signer(&self, signer: &PublicKey) -> Result<Vec<IndexedRecord>, StoreError> {
        self.scan(key(BY_SIGNER, &[&signer.to_sec1()]))
    }

    fn record_count(&self) -> Result<u64, StoreError> {
        self.count()
    }
}

impl SledStore {
    fn scan_from_height(&self, from: u32) -> Result<Vec<IndexedRecord>, StoreError> {
        let start = key(BY_HEIGHT, &[&from.to_be_bytes()]);
        self.db
            .range(start..vec![BY_HEIGHT + 1])
            .map(|entry| {
                let (k, _) = entry.map_err(backend)?;
                self.record(&k[1 + 4..])
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_waits_for_another_handle_in_this_process_to_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = SledStore::open(dir.path()).unwrap();
        let holder = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(first);
        });
        let second = SledStore::open(dir.path());
        holder.join().unwrap();
        assert!(second.is_ok(), "{:?}", second.err());
    }
}
