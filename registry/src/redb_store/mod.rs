//! The default [`RecordStore`]: a `redb` database file, one table per index, one write
//! transaction per change set.
//!
//! The schema is documented in `registry/SCHEMA.md` (and its byte layout in [`rows`]).
//! Records are keyed by their position in the chain (height, then their place in the
//! block), so the rows of an initial sync are appended in key order and a rollback deletes
//! one key range. The tip, the checkpoints and the record rows of a change set are written
//! in the same transaction, committed durably before `apply` returns: after a crash
//! (`kill -9` included) the index is exactly the state of some completed `apply` call,
//! which redb recovers on the next open.
//!
//! Memory is bounded by redb's page cache ([`INDEX_CACHE_BYTES`]), whatever the size of
//! the chain or the index (ADR 0009).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, Txid};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::CompressedKey;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use crate::chain::BlockId;
use crate::store::{check_connects, ChangeSet, IndexedRecord, RecordStore, StoreError};

mod rows;

use rows::{
    IndexKeys, Position, BY_DIGEST, BY_SIGNER, BY_TXID, CHECKPOINTS, META, RECORDS, ROW_LEN,
};

/// The on-disk format this build reads and writes.
pub const FORMAT_VERSION: u32 = 5;

/// The database file inside the index directory.
pub const FILE_NAME: &str = "index.redb";

/// redb's page cache for the index: the index's memory whatever its size. Its reads are
/// point lookups and short range scans, which the operating system's page cache also
/// serves.
pub const INDEX_CACHE_BYTES: usize = 8 << 20;

/// How long [`RedbStore::open`] waits for another handle in this process to let go (a
/// service restarting while a thread of its previous run still holds the index).
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// A [`RecordStore`] in a `redb` file inside a directory.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl RedbStore {
    /// Opens (or creates) the index in the directory `dir` (the file [`FILE_NAME`]);
    /// refuses one of another format version. Another process holding it is refused
    /// after a short wait.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(backend)?;
        let path = dir.join(FILE_NAME);
        if !path.try_exists().map_err(backend)? {
            Self::create_new(dir, &path)?;
        }
        let deadline = Instant::now() + LOCK_WAIT;
        let db = loop {
            match Database::builder()
                .set_cache_size(INDEX_CACHE_BYTES)
                .open(&path)
            {
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                    return Err(StoreError::Backend(format!(
                        "{} is in use by another process",
                        path.display()
                    )))
                }
                other => break other.map_err(backend)?,
            }
        };
        let store = Self { db, path };
        store.check_version()?;
        Ok(store)
    }

    /// Makes a new index at `path`: under a temporary name first, renamed into place once
    /// its header, format version and tables are on disk. A kill while a file is being
    /// created (`kill -9` seconds into a first start) would otherwise leave a file that
    /// is not a database yet, which no later start could open; a leftover temporary file
    /// is simply made again.
    fn create_new(dir: &Path, path: &Path) -> Result<(), StoreError> {
        let fresh = dir.join(format!("{FILE_NAME}.new"));
        match std::fs::remove_file(&fresh) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(backend(e)),
        }
        let db = Database::builder().create(&fresh).map_err(backend)?;
        Self {
            db,
            path: fresh.clone(),
        }
        .check_version()?;
        // Closed (dropped) above; its bytes reach the disk before the name does.
        std::fs::File::open(&fresh)
            .and_then(|file| file.sync_all())
            .map_err(backend)?;
        std::fs::rename(&fresh, path).map_err(backend)?;
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(backend)?;
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the version into a new file (creating every table), or checks it.
    fn check_version(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(backend)?;
        {
            let mut meta = txn.open_table(META).map_err(backend)?;
            let found = meta.get("version").map_err(backend)?.map(|v| {
                <[u8; 4]>::try_from(v.value())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt("format version".into()))
            });
            match found.transpose()? {
                Some(found) if found != FORMAT_VERSION => {
                    return Err(StoreError::FormatVersion {
                        found,
                        expected: FORMAT_VERSION,
                    })
                }
                Some(_) => return Ok(()),
                None => {
                    meta.insert("version", FORMAT_VERSION.to_be_bytes().as_slice())
                        .map_err(backend)?;
                }
            }
            txn.open_table(CHECKPOINTS).map_err(backend)?;
            txn.open_table(RECORDS).map_err(backend)?;
            txn.open_table(BY_DIGEST).map_err(backend)?;
            txn.open_table(BY_SIGNER).map_err(backend)?;
            txn.open_table(BY_TXID).map_err(backend)?;
        }
        txn.commit().map_err(backend)
    }

    /// The records whose secondary key (in `table`) starts with `prefix`.
    fn by_prefix<const P: usize, const N: usize>(
        &self,
        table: TableDefinition<&[u8; N], ()>,
        prefix: &[u8; P],
    ) -> Result<Vec<IndexedRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let index = txn.open_table(table).map_err(backend)?;
        let records = txn.open_table(RECORDS).map_err(backend)?;
        let checkpoints = txn.open_table(CHECKPOINTS).map_err(backend)?;
        let (low, high) = rows::prefix_bounds::<P, N>(prefix);
        let mut found = Vec::new();
        for entry in index.range(&low..=&high).map_err(backend)? {
            let (key, _) = entry.map_err(backend)?;
            let position = Position::ending(key.value());
            let row = records
                .get(position.key())
                .map_err(backend)?
                .ok_or_else(|| StoreError::Corrupt("index row without record".into()))?;
            let checkpoint = checkpoints
                .get(position.height())
                .map_err(backend)?
                .ok_or_else(|| StoreError::Corrupt("record without checkpoint".into()))?;
            found.push(rows::read_record(
                &position,
                row.value(),
                checkpoint.value(),
            )?);
        }
        Ok(found)
    }
}

fn read_count(meta: &impl ReadableTable<&'static str, &'static [u8]>) -> Result<u64, StoreError> {
    match meta.get("count").map_err(backend)? {
        None => Ok(0),
        Some(bytes) => <[u8; 8]>::try_from(bytes.value())
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt("record count".into())),
    }
}

fn read_tip(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Option<BlockId>, StoreError> {
    let Some(bytes) = meta.get("tip").map_err(backend)? else {
        return Ok(None);
    };
    let bytes = bytes.value();
    if bytes.len() != 36 {
        return Err(StoreError::Corrupt("tip".into()));
    }
    let height = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let hash =
        BlockHash::from_slice(&bytes[4..]).map_err(|_| StoreError::Corrupt("tip hash".into()))?;
    Ok(Some(BlockId { height, hash }))
}

/// Deletes every record and checkpoint at or above `from`; returns how many records went.
fn roll_back(txn: &WriteTransaction, from: u32) -> Result<u64, StoreError> {
    let mut records = txn.open_table(RECORDS).map_err(backend)?;
    let gone: Vec<(Position, [u8; ROW_LEN])> = records
        .range(Position::first_at(from).key()..)
        .map_err(backend)?
        .map(|entry| {
            let (key, row) = entry.map_err(backend)?;
            Ok((Position::ending(key.value()), *row.value()))
        })
        .collect::<Result<_, StoreError>>()?;
    let mut by_digest = txn.open_table(BY_DIGEST).map_err(backend)?;
    let mut by_signer = txn.open_table(BY_SIGNER).map_err(backend)?;
    let mut by_txid = txn.open_table(BY_TXID).map_err(backend)?;
    for (position, row) in &gone {
        let keys = IndexKeys::of(row, position);
        records.remove(position.key()).map_err(backend)?;
        by_digest.remove(&keys.digest).map_err(backend)?;
        by_signer.remove(&keys.signer).map_err(backend)?;
        by_txid.remove(&keys.txid).map_err(backend)?;
    }
    let mut checkpoints = txn.open_table(CHECKPOINTS).map_err(backend)?;
    checkpoints
        .retain_in(from.., |_, _| false)
        .map_err(backend)?;
    Ok(gone.len() as u64)
}

/// Writes the checkpoints and record rows of the blocks `changes` connects; returns how
/// many records were added.
fn connect(txn: &WriteTransaction, changes: &ChangeSet) -> Result<u64, StoreError> {
    let mut checkpoints = txn.open_table(CHECKPOINTS).map_err(backend)?;
    let mut records = txn.open_table(RECORDS).map_err(backend)?;
    let mut by_digest = txn.open_table(BY_DIGEST).map_err(backend)?;
    let mut by_signer = txn.open_table(BY_SIGNER).map_err(backend)?;
    let mut by_txid = txn.open_table(BY_TXID).map_err(backend)?;
    for block in &changes.connect {
        checkpoints
            .insert(
                block.id.height,
                &rows::checkpoint(&block.id.hash, &block.coinbase_txid),
            )
            .map_err(backend)?;
        for (n, record) in (0..).zip(&block.records) {
            let position = Position::new(block.id.height, n);
            let row = rows::row(record);
            let keys = IndexKeys::of(&row, &position);
            records.insert(position.key(), &row).map_err(backend)?;
            by_digest.insert(&keys.digest, ()).map_err(backend)?;
            by_signer.insert(&keys.signer, ()).map_err(backend)?;
            by_txid.insert(&keys.txid, ()).map_err(backend)?;
        }
    }
    Ok(changes.records_added() as u64)
}

impl RecordStore for RedbStore {
    fn tip(&self) -> Result<Option<BlockId>, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        read_tip(&txn.open_table(META).map_err(backend)?)
    }

    fn block_hash_at(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        let checkpoints = txn.open_table(CHECKPOINTS).map_err(backend)?;
        let checkpoint = checkpoints.get(height).map_err(backend)?;
        Ok(checkpoint.map(|value| rows::read_checkpoint(value.value()).0))
    }

    fn apply(&self, changes: &ChangeSet) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(backend)?;
        let (old_tip, mut count) = {
            let meta = txn.open_table(META).map_err(backend)?;
            (read_tip(&meta)?, read_count(&meta)?)
        };
        check_connects(old_tip, changes)?;
        if changes.is_empty() {
            return Ok(());
        }
        let mut tip = old_tip;
        if let Some(from) = changes.disconnect_from {
            count = count.saturating_sub(roll_back(&txn, from)?);
            tip = match from.checked_sub(1) {
                Some(below) => {
                    let checkpoints = txn.open_table(CHECKPOINTS).map_err(backend)?;
                    let checkpoint = checkpoints.get(below).map_err(backend)?;
                    checkpoint.map(|value| BlockId {
                        height: below,
                        hash: rows::read_checkpoint(value.value()).0,
                    })
                }
                None => None,
            };
        }
        count += connect(&txn, changes)?;
        if let Some(last) = changes.connect.last() {
            tip = Some(last.id);
        }
        {
            let mut meta = txn.open_table(META).map_err(backend)?;
            match tip {
                Some(tip) => {
                    let mut bytes = tip.height.to_be_bytes().to_vec();
                    bytes.extend_from_slice(tip.hash.as_byte_array());
                    meta.insert("tip", bytes.as_slice()).map_err(backend)?;
                }
                None => {
                    meta.remove("tip").map_err(backend)?;
                }
            }
            meta.insert("count", count.to_be_bytes().as_slice())
                .map_err(backend)?;
        }
        txn.commit().map_err(backend)
    }

    fn by_digest(&self, digest: &Digest) -> Result<Vec<IndexedRecord>, StoreError> {
        self.by_prefix(BY_DIGEST, digest.as_bytes())
    }

    fn by_txid(&self, txid: &Txid) -> Result<Vec<IndexedRecord>, StoreError> {
        self.by_prefix(BY_TXID, txid.as_byte_array())
    }

    fn by_signer(&self, signer: &CompressedKey) -> Result<Vec<IndexedRecord>, StoreError> {
        self.by_prefix(BY_SIGNER, signer.as_bytes())
    }

    fn record_count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(backend)?;
        read_count(&txn.open_table(META).map_err(backend)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_waits_for_another_handle_in_this_process_to_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = RedbStore::open(dir.path()).unwrap();
        let holder = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(first);
        });
        let second = RedbStore::open(dir.path());
        holder.join().unwrap();
        assert!(second.is_ok(), "{:?}", second.err());
    }

    #[test]
    fn a_creation_cut_short_leaves_nothing_that_stops_the_next_start() {
        // What a kill -9 during the first start leaves: a temporary file with a partial
        // header (here: none at all, then garbage), never the index's own name.
        for leftover in [&b""[..], b"redb\x1a\x0a\xa9 cut"] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(format!("{FILE_NAME}.new")), leftover).unwrap();
            let store = RedbStore::open(dir.path()).unwrap();
            assert_eq!(store.record_count().unwrap(), 0);
            assert!(!dir.path().join(format!("{FILE_NAME}.new")).exists());
            drop(store);
            RedbStore::open(dir.path()).unwrap();
        }
    }

    #[test]
    fn an_index_of_another_format_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        let txn = store.db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("version", 2u32.to_be_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
        drop(store);
        match RedbStore::open(dir.path()) {
            Err(StoreError::FormatVersion {
                found: 2,
                expected: FORMAT_VERSION,
            }) => {}
            other => panic!("expected a format version error, got {other:?}"),
        }
    }
}
