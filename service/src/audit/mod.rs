//! A service's audit log: an RFC 6962 log of 32-byte entries whose signed checkpoints
//! are anchored on chain, so that the service cannot later deny, drop or reorder an entry.
//!
//! What an entry is, is the service's business (the TBS logs registrations, the IdP
//! authentications); this module keeps the entries durable, the tree in memory, and
//! anchors checkpoints ([`anchoring`]). Each entry is appended under a *subject key* that
//! makes appending idempotent: a subject is logged once, whatever retries happen.
//!
//! # Storage and restarts
//!
//! Entries, the subject → leaf index map and the checkpoints live in the `audit` tree of
//! the service database ([`store`] documents the layout). An entry is durable before the
//! in-memory [`AuditLog`] is extended; at start the log is rebuilt from the entries with
//! [`AuditLog::from_entries`], and each stored checkpoint's root is checked against it (a
//! mismatch refuses to start).

pub mod anchoring;
pub mod store;

use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard};

use milagro_anchor::audit_log::{
    AuditLog, AuditLogError, ConsistencyProof, InclusionProof, LeafIndex, TreeHead, TreeSize,
};
use milagro_anchor::checkpoint::KeyName;
use milagro_anchor::digest::Digest;

pub use store::{AuditStore, AuditStoreError, StoredCheckpoint};

/// Why the audit log failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Its storage failed or is corrupt.
    #[error(transparent)]
    Store(#[from] AuditStoreError),
    /// The records the service logs could not be read while catching up.
    #[error("reading the records to log: {0}")]
    Records(String),
    /// A stored checkpoint disagrees with the log rebuilt from the stored entries.
    #[error("checkpoint {sequence} states size {size} and root {stated}, the log has {actual}")]
    Inconsistent {
        /// The checkpoint's sequence number.
        sequence: u64,
        /// The size it states.
        size: TreeSize,
        /// The root it states.
        stated: Digest,
        /// What the log says at that size (or why it cannot say).
        actual: String,
    },
    /// The stored count and the in-memory log disagree (a bug).
    #[error("entry stored at index {stored}, but the log has {in_memory} entries")]
    OutOfStep {
        /// The index the store gave.
        stored: LeafIndex,
        /// The in-memory log's size.
        in_memory: TreeSize,
    },
}

/// The audit log as a service keeps it: durable rows and the in-memory tree built from
/// them.
#[derive(Debug)]
pub struct Audit {
    store: AuditStore,
    log: RwLock<AuditLog>,
    /// Serialises appends, so the in-memory log grows in the stored order.
    appending: Mutex<()>,
    origin: KeyName,
    schedule: Mutex<anchoring::Schedule>,
}

impl Audit {
    /// Opens the `audit` tree of `db`, rebuilds the log and checks every stored checkpoint
    /// against it. `origin` is the checkpoints' origin line and their key name.
    pub fn open(db: &sled::Db, origin: KeyName) -> Result<Self, AuditError> {
        let store = AuditStore::open(db)?;
        let log = AuditLog::from_entries(store.entries()?.iter().map(Digest::as_bytes));
        for checkpoint in store.checkpoints(0, usize::MAX)? {
            let inconsistent = |actual: String| AuditError::Inconsistent {
                sequence: checkpoint.sequence,
                size: checkpoint.size,
                stated: checkpoint.root,
                actual,
            };
            let head = log
                .tree_head_at(checkpoint.size)
                .map_err(|e| inconsistent(e.to_string()))?;
            if head.root != checkpoint.root {
                return Err(inconsistent(format!("root {}", head.root)));
            }
        }
        tracing::info!(entries = %log.len(), root = %log.root(), "audit log rebuilt");
        Ok(Self {
            store,
            log: RwLock::new(log),
            appending: Mutex::new(()),
            origin,
            schedule: Mutex::new(anchoring::Schedule::default()),
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, AuditLog> {
        self.log.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `entry` under `subject` and makes it durable, unless the subject is logged
    /// already (again is a no-op that returns the same index). Returns the leaf index and
    /// whether it was appended now.
    pub fn append(&self, subject: &[u8], entry: &Digest) -> Result<(LeafIndex, bool), AuditError> {
        if let Some(index) = self.store.index_of(subject)? {
            return Ok((index, false));
        }
        let _appending = self
            .appending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (index, new) = self.store.append(subject, entry)?;
        if new {
            let mut log = self.log.write().unwrap_or_else(PoisonError::into_inner);
            if log.len().get() != index.get() {
                return Err(AuditError::OutOfStep {
                    stored: index,
                    in_memory: log.len(),
                });
            }
            log.append(entry.as_bytes());
            drop(log);
            self.store.flush()?;
        }
        Ok((index, new))
    }

    /// The leaf index and entry of `subject`, if it is logged.
    pub fn entry_of(&self, subject: &[u8]) -> Result<Option<(LeafIndex, Digest)>, AuditError> {
        let Some(index) = self.store.index_of(subject)? else {
            return Ok(None);
        };
        let entry = self
            .store
            .entry(index)?
            .ok_or_else(|| AuditStoreError::Corrupt(format!("entry {index} is missing")))?;
        Ok(Some((index, entry)))
    }

    /// The checkpoints' origin line and key name.
    pub fn origin(&self) -> &KeyName {
        &self.origin
    }

    /// The durable rows.
    pub fn store(&self) -> &AuditStore {
        &self.store
    }

    /// The log's current size and root.
    pub fn tree_head(&self) -> TreeHead {
        self.read().tree_head()
    }

    /// The size and root the log had at `size` entries.
    pub fn tree_head_at(&self, size: TreeSize) -> Result<TreeHead, AuditLogError> {
        self.read().tree_head_at(size)
    }

    /// Proves that entry `index` is in the tree of `size` entries.
    pub fn inclusion_proof(
        &self,
        index: LeafIndex,
        size: TreeSize,
    ) -> Result<InclusionProof, AuditLogError> {
        self.read().inclusion_proof(index, size)
    }

    /// Proves that the tree of `new` entries extends the tree of `old` entries.
    pub fn consistency_proof(
        &self,
        old: TreeSize,
        new: TreeSize,
    ) -> Result<ConsistencyProof, AuditLogError> {
        self.read().consistency_proof(old, new)
    }
}
