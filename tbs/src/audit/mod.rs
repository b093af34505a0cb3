//! The TBS audit log: every registration in an RFC 6962 log whose signed checkpoints are
//! anchored on chain, so that the TBS cannot later deny, drop or reorder a registration.
//!
//! # What is logged
//!
//! One entry per enrolled device, appended when its registration is fixed: in direct mode
//! when its own anchoring transaction is first recorded as broadcast (that transaction
//! never changes once the device signed it), in batch mode when its batch is formed (the
//! batch root never changes, even if the root has to be anchored by a new transaction).
//! The entry is a 32-byte digest ([`registration_entry`], [`batch_registration_entry`]):
//!
//! ```text
//! SHA-256( "milagro-tbs/registration/v1" ‖ 0x00
//!        ‖ device key (33-byte compressed SEC1)
//!        ‖ len(tenant) (1 byte) ‖ tenant ‖ len(group) (1 byte) ‖ group
//!        ‖ anchor txid (32 bytes, consensus byte order, i.e. reversed from its hex) )
//!
//! SHA-256( "milagro-tbs/batch-registration/v1" ‖ 0x00
//!        ‖ device key ‖ len(tenant) ‖ tenant ‖ len(group) ‖ group
//!        ‖ batch root (32 bytes, as its hex reads) )
//! ```
//!
//! The log's leaves are RFC 6962 leaf hashes of these entries, so a device (or its tenant),
//! knowing the four inputs, recomputes its entry and checks its inclusion proof against an
//! anchored checkpoint without trusting the TBS.
//!
//! Not logged: requests that were refused, offers never signed, instruction fetches,
//! tenant and group administration, and the TBS's own anchors.
//!
//! # Privacy
//!
//! The log and its checkpoints hold digests only: publishing them reveals how many devices
//! registered and when, not which ones. Hashing hides, it does not encrypt: the device key
//! and txid are public on chain and tenants and groups are short slugs, so whoever holds a
//! device key can test guesses of its tenant and group against its entry (the enrolment
//! progress endpoint serves them anyway). No secret salt is used, on purpose: the device
//! must be able to recompute its entry from what it knows.
//!
//! # Anchoring
//!
//! The sync loop signs a C2SP checkpoint of the log and anchors its digest as an
//! `AuditLogRoot` record from a UTXO of the TBS key, every `audit.checkpoint_interval_secs`
//! and only when the log grew: the full rule, and why it never anchors one checkpoint twice,
//! is in [`anchoring`]. Every anchored checkpoint is kept; the consistency proof between
//! two consecutive ones is computed from the log when asked (it is determined by the log
//! and the two sizes), and checked before each new checkpoint is anchored.
//!
//! # Storage and restarts
//!
//! Entries, the device → leaf index map and the checkpoints live in the `audit` tree of
//! the service database ([`store`] documents the layout). An entry is durable before the
//! in-memory [`AuditLog`] is extended; at start the log is rebuilt from the entries with
//! [`AuditLog::from_entries`], each stored checkpoint's root is checked against it (a
//! mismatch refuses to start), and registrations a crash left unlogged are appended
//! ([`Audit::catch_up`]).

pub mod anchoring;
pub mod store;

use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard};

use bitcoin::hashes::Hash as _;
use bitcoin::Txid;
use milagro_anchor::audit_log::{
    AuditLog, AuditLogError, ConsistencyProof, InclusionProof, LeafIndex, TreeHead, TreeSize,
};
use milagro_anchor::checkpoint::KeyName;
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::PublicKey;

use crate::enrolment::{Enrolment, EnrolmentState, EnrolmentStore};
use crate::tenants::model::{GroupId, TenantId};
pub use store::{AuditStore, AuditStoreError, StoredCheckpoint};

/// The domain separator that starts every hashed direct-mode registration.
pub const REGISTRATION_DOMAIN: &[u8] = b"milagro-tbs/registration/v1";

/// The domain separator that starts every hashed batch-mode registration.
pub const BATCH_REGISTRATION_DOMAIN: &[u8] = b"milagro-tbs/batch-registration/v1";

/// The log entry of a direct-mode registration (see the module documentation).
pub fn registration_entry(
    device: &PublicKey,
    tenant: &TenantId,
    group: &GroupId,
    txid: &Txid,
) -> Digest {
    entry(
        REGISTRATION_DOMAIN,
        device,
        tenant,
        group,
        txid.as_byte_array(),
    )
}

/// The log entry of a batch-mode registration (see the module documentation).
pub fn batch_registration_entry(
    device: &PublicKey,
    tenant: &TenantId,
    group: &GroupId,
    root: &Digest,
) -> Digest {
    entry(
        BATCH_REGISTRATION_DOMAIN,
        device,
        tenant,
        group,
        root.as_bytes(),
    )
}

fn entry(
    domain: &[u8],
    device: &PublicKey,
    tenant: &TenantId,
    group: &GroupId,
    anchor: &[u8; 32],
) -> Digest {
    let mut bytes = Vec::with_capacity(domain.len() + 1 + 33 + 2 + 128 + 32);
    bytes.extend_from_slice(domain);
    bytes.push(0);
    bytes.extend_from_slice(&device.to_sec1());
    for slug in [tenant.as_str(), group.as_str()] {
        // Slugs are 1 to 64 bytes, so the length always fits a byte.
        bytes.push(u8::try_from(slug.len()).unwrap_or(u8::MAX));
        bytes.extend_from_slice(slug.as_bytes());
    }
    bytes.extend_from_slice(anchor);
    Digest::sha256(&bytes)
}

/// Why the audit log failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// Its storage failed or is corrupt.
    #[error(transparent)]
    Store(#[from] AuditStoreError),
    /// The enrolment store could not be read while catching up.
    #[error("reading enrolments: {0}")]
    Enrolments(String),
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

/// The audit log as the TBS keeps it: durable rows and the in-memory tree built from them.
#[derive(Debug)]
pub struct Audit {
    store: AuditStore,
    log: RwLock<AuditLog>,
    /// Serialises appends, so the in-memory log grows in the stored order.
    appending: Mutex<()>,
    origin: KeyName,
    pub(crate) schedule: Mutex<anchoring::Schedule>,
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

    /// Logs a broadcast or batched enrolment (once per device: again is a no-op that
    /// returns the same index); `None` for an enrolment that is only offered or queued.
    pub fn register(&self, row: &Enrolment) -> Result<Option<LeafIndex>, AuditError> {
        let entry = match &row.state {
            EnrolmentState::Broadcast { txid, .. } => {
                registration_entry(&row.device, &row.tenant, &row.group, txid)
            }
            EnrolmentState::Batched { root, .. } => {
                batch_registration_entry(&row.device, &row.tenant, &row.group, root)
            }
            EnrolmentState::Offered { .. } | EnrolmentState::Queued => return Ok(None),
        };
        if let Some(index) = self.store.index_of(&row.device)? {
            return Ok(Some(index));
        }
        let _appending = self
            .appending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (index, new) = self.store.append(&row.device, &entry)?;
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
            tracing::info!(device = %row.device, %index, "registration logged");
        }
        Ok(Some(index))
    }

    /// Logs every broadcast enrolment still watched by the sync loop that has no entry (a
    /// crash between recording the broadcast and logging it leaves such a row).
    pub fn catch_up(&self, enrolments: &EnrolmentStore) -> Result<(), AuditError> {
        for row in enrolments
            .unsettled()
            .map_err(|e| AuditError::Enrolments(e.to_string()))?
        {
            self.register(&row)?;
        }
        Ok(())
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

    /// The device's leaf index and entry, if it is logged.
    pub fn registration(
        &self,
        device: &PublicKey,
    ) -> Result<Option<(LeafIndex, Digest)>, AuditError> {
        let Some(index) = self.store.index_of(device)? else {
            return Ok(None);
        };
        let entry = self
            .store
            .entry(index)?
            .ok_or_else(|| AuditStoreError::Corrupt(format!("entry {index} is missing")))?;
        Ok(Some((index, entry)))
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panicking test is a failing test
mod tests;
