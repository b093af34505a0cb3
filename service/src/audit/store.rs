//! The audit log's rows, in the `audit` tree of a service's database.
//!
//! Keys (integers big-endian, so that sled's order is numeric order):
//!
//! | key | value |
//! |---|---|
//! | `v` | format version, `u32` ([`FORMAT_VERSION`]); another version is refused |
//! | `n` | number of entries, `u64` |
//! | `l\0` ‖ leaf index `u64` | the entry, 32 bytes |
//! | `d\0` ‖ subject key | its entry's leaf index, `u64` |
//! | `c\0` ‖ sequence `u64` | a [`StoredCheckpoint`], JSON |
//!
//! The *subject key* names what an entry is about, so that it is logged once: the TBS uses
//! the device key (33-byte compressed SEC1), the IdP the entry itself. An entry, its
//! subject mapping and the new count are written in one sled transaction, so a subject is
//! logged exactly once whatever crashes or retries happen around it.

use bitcoin::Txid;
use milagro_anchor::audit_log::{LeafIndex, TreeSize};
use milagro_anchor::digest::Digest;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};

/// The layout version this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;

const VERSION_KEY: &[u8] = b"v";
const COUNT_KEY: &[u8] = b"n";

/// A signed checkpoint and the transaction anchoring it, written before it is broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredCheckpoint {
    /// Position in the anchored history, from 0.
    pub sequence: u64,
    /// The C2SP signed note.
    pub note: String,
    /// The tree size it states.
    pub size: TreeSize,
    /// The root it states.
    pub root: Digest,
    /// SHA-256 of the note's body: the anchored digest.
    pub digest: Digest,
    /// When it was signed (Unix seconds): the next one is due an interval later.
    pub created: u64,
    /// The anchoring transaction.
    pub txid: Txid,
    /// That transaction, consensus-encoded hex.
    pub tx: String,
    /// The wallet payment it spends, when the wallet had to fund the service key (hex).
    pub funding_tx: Option<String>,
}

impl StoredCheckpoint {
    /// What the services' APIs show of it (not its transaction or funding).
    pub fn to_wire(&self) -> milagro_wire::service::SignedCheckpoint {
        milagro_wire::service::SignedCheckpoint {
            sequence: self.sequence,
            note: self.note.clone(),
            size: self.size.get(),
            root: self.root,
            digest: self.digest,
            txid: self.txid.to_string(),
        }
    }
}

/// Why the audit store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditStoreError {
    /// The database failed.
    #[error("audit log storage: {0}")]
    Storage(String),
    /// The database holds something this code cannot read.
    #[error("audit log storage is corrupt: {0}")]
    Corrupt(String),
}

fn storage(e: impl std::fmt::Display) -> AuditStoreError {
    AuditStoreError::Storage(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> AuditStoreError {
    AuditStoreError::Corrupt(e.to_string())
}

fn keyed(prefix: &[u8], id: &[u8]) -> Vec<u8> {
    [prefix, id].concat()
}

fn leaf_key(index: u64) -> Vec<u8> {
    keyed(b"l\0", &index.to_be_bytes())
}

fn subject_key(subject: &[u8]) -> Vec<u8> {
    keyed(b"d\0", subject)
}

fn checkpoint_key(sequence: u64) -> Vec<u8> {
    keyed(b"c\0", &sequence.to_be_bytes())
}

fn read_u64(bytes: &[u8]) -> Result<u64, AuditStoreError> {
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| corrupt(format!("{} bytes where a u64 belongs", bytes.len())))
}

/// The `audit` tree.
#[derive(Debug, Clone)]
pub struct AuditStore {
    tree: sled::Tree,
}

impl AuditStore {
    /// Opens the `audit` tree of `db`, writing the format version on first use and
    /// refusing another one.
    pub fn open(db: &sled::Db) -> Result<Self, AuditStoreError> {
        let tree = db.open_tree("audit").map_err(storage)?;
        let version = FORMAT_VERSION.to_be_bytes();
        let found = tree
            .compare_and_swap(VERSION_KEY, None as Option<&[u8]>, Some(&version[..]))
            .map_err(storage)?;
        if let Err(existing) = found {
            if existing.current.as_deref() != Some(&version[..]) {
                return Err(corrupt(format!(
                    "format version {:?}, this service reads version {FORMAT_VERSION}",
                    existing.current
                )));
            }
        }
        tree.flush().map_err(storage)?;
        Ok(Self { tree })
    }

    /// Every entry, in log order.
    pub fn entries(&self) -> Result<Vec<Digest>, AuditStoreError> {
        let count = self.count()?;
        let mut entries = Vec::new();
        for (expected, row) in (0..).zip(self.tree.scan_prefix(b"l\0")) {
            let (key, value) = row.map_err(storage)?;
            let index = read_u64(&key[2..])?;
            if index != expected {
                return Err(corrupt(format!("entry {expected} is missing")));
            }
            entries.push(Digest::from_slice(&value).map_err(corrupt)?);
        }
        if entries.len() as u64 != count {
            return Err(corrupt(format!(
                "{} entries stored, the count says {count}",
                entries.len()
            )));
        }
        Ok(entries)
    }

    fn count(&self) -> Result<u64, AuditStoreError> {
        self.tree
            .get(COUNT_KEY)
            .map_err(storage)?
            .map_or(Ok(0), |bytes| read_u64(&bytes))
    }

    /// Appends `entry` for `subject` unless the subject already has one; returns the
    /// subject's leaf index and whether it was appended now. Not flushed: call
    /// [`Self::flush`].
    pub fn append(
        &self,
        subject: &[u8],
        entry: &Digest,
    ) -> Result<(LeafIndex, bool), AuditStoreError> {
        let subject = subject_key(subject);
        let (index, new) = self
            .tree
            .transaction(|tx| {
                let unreadable = || ConflictableTransactionError::Abort(());
                if let Some(index) = tx.get(&subject)? {
                    let index = read_u64(&index).map_err(|_| unreadable())?;
                    return Ok((index, false));
                }
                let index = match tx.get(COUNT_KEY)? {
                    Some(count) => read_u64(&count).map_err(|_| unreadable())?,
                    None => 0,
                };
                let next = index.checked_add(1).ok_or_else(unreadable)?;
                tx.insert(leaf_key(index), &entry.as_bytes()[..])?;
                tx.insert(subject.as_slice(), &index.to_be_bytes()[..])?;
                tx.insert(COUNT_KEY, &next.to_be_bytes()[..])?;
                Ok((index, true))
            })
            .map_err(|e: TransactionError<()>| match e {
                TransactionError::Abort(()) => corrupt("unreadable entry count or index"),
                TransactionError::Storage(e) => storage(e),
            })?;
        Ok((LeafIndex::new(index), new))
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), AuditStoreError> {
        self.tree.flush().map(drop).map_err(storage)
    }

    /// The leaf index of `subject`'s entry, if it has one.
    pub fn index_of(&self, subject: &[u8]) -> Result<Option<LeafIndex>, AuditStoreError> {
        self.tree
            .get(subject_key(subject))
            .map_err(storage)?
            .map(|bytes| read_u64(&bytes).map(LeafIndex::new))
            .transpose()
    }

    /// The entry at `index`, if the log has one there.
    pub fn entry(&self, index: LeafIndex) -> Result<Option<Digest>, AuditStoreError> {
        self.tree
            .get(leaf_key(index.get()))
            .map_err(storage)?
            .map(|bytes| Digest::from_slice(&bytes).map_err(corrupt))
            .transpose()
    }

    /// Writes (or replaces) a checkpoint and flushes, before its transaction is sent.
    pub fn put_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), AuditStoreError> {
        let json = serde_json::to_vec(checkpoint).map_err(storage)?;
        self.tree
            .insert(checkpoint_key(checkpoint.sequence), json)
            .map_err(storage)?;
        self.flush()
    }

    /// Up to `count` checkpoints from sequence `from`, oldest first.
    pub fn checkpoints(
        &self,
        from: u64,
        count: usize,
    ) -> Result<Vec<StoredCheckpoint>, AuditStoreError> {
        self.tree
            .range(checkpoint_key(from)..=checkpoint_key(u64::MAX))
            .take(count)
            .map(|row| parse_checkpoint(&row.map_err(storage)?.1))
            .collect()
    }

    /// Checkpoints from the newest backwards (for walking back until a final one).
    pub fn checkpoints_newest_first(
        &self,
    ) -> impl Iterator<Item = Result<StoredCheckpoint, AuditStoreError>> {
        self.tree
            .scan_prefix(b"c\0")
            .rev()
            .map(|row| parse_checkpoint(&row.map_err(storage)?.1))
    }

    /// The newest checkpoint, if any.
    pub fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, AuditStoreError> {
        self.checkpoints_newest_first().next().transpose()
    }
}

fn parse_checkpoint(bytes: &[u8]) -> Result<StoredCheckpoint, AuditStoreError> {
    serde_json::from_slice(bytes).map_err(corrupt)
}
