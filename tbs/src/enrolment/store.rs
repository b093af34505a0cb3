//! Enrolment rows and seen request nonces, in one sled tree.
//!
//! Keys: `e\0` ‖ device key (33 bytes) → [`Enrolment`] JSON; `n\0` ‖ nonce (16 bytes) →
//! the request's `created` time (a replayed request is refused while its time is within
//! the accepted clock skew); `u\0` ‖ device key → nothing, for every broadcast anchor not
//! yet final, which the chain loop watches (so it never scans every device); `q\0` ‖ time
//! queued (Unix seconds, 8 bytes big-endian) ‖ device key → its certificate digest (32
//! bytes), for every batch-mode device waiting for a batch, oldest first. Batches have
//! their own keys in the same tree (`batches.rs`), so forming one moves its members out of
//! the queue in the same atomic write; offers' reservations of pool coins too
//! (`offers.rs`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bitcoin::{OutPoint, Txid};
use milagro_anchor::batch::Batch;
use milagro_anchor::digest::Digest;
use milagro_anchor::envelope::InstructionKey;
use milagro_anchor::keys::PublicKey;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::tenants::model::{GroupId, TenantId};

/// Where a device's enrolment stands: `Offered` → `Broadcast` (or `Expired`, then a new
/// offer) in a direct-mode group, `Queued` → `Batched` in a batch-mode one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EnrolmentState {
    /// The device was offered an anchoring transaction spending a payment to its key.
    Offered {
        /// The pool's payment to the device key (hex), signed and held back: it is
        /// broadcast only together with the device's signed anchor, which spends it.
        funding_tx: String,
        /// The PSBT offered to the device (base64).
        offer_psbt: String,
        /// The pool coin the payment spends, reserved for this offer until it lapses.
        /// Absent in rows of an older TBS, which broadcast the payment with the offer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reservation: Option<Reservation>,
    },
    /// The offer lapsed before the device signed: its pool coin went back to the pool. A
    /// new request from the device gets a new offer.
    Expired {
        /// When (Unix seconds).
        expired_at: u64,
    },
    /// The device signed; payment and anchor were handed to the node.
    Broadcast {
        /// The wallet's payment to the device key (hex), re-sent with the anchor.
        funding_tx: String,
        /// The signed anchoring transaction (hex).
        anchor_tx: String,
        /// Its id.
        txid: Txid,
    },
    /// Batch mode: waiting for the next batch.
    Queued,
    /// Batch mode: member `index` of batch `batch`, whose root is `root`.
    Batched {
        /// The batch's sequence number.
        batch: u64,
        /// The device's position in it.
        index: u64,
        /// The batch root.
        root: Digest,
    },
}

/// A pool coin held for one offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The coin.
    pub coin: OutPoint,
    /// Its value in satoshis.
    pub value_sat: u64,
    /// When the offer lapses and the coin returns to the pool (Unix seconds).
    pub expires_at: u64,
}

/// One device's enrolment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Enrolment {
    /// The device key (its certificate's).
    pub device: PublicKey,
    /// The tenant it enrolled with.
    pub tenant: TenantId,
    /// Its device group.
    pub group: GroupId,
    /// Its Birth Certificate, canonical JSON.
    pub birth_certificate: String,
    /// The key instructions are sealed with. Kept because later instructions need it; the
    /// state directory is private (mode 0700).
    pub instruction_key: InstructionKey,
    /// Progress.
    #[serde(flatten)]
    pub state: EnrolmentState,
}

/// A request nonce was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replay;

/// Why the enrolment store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrolmentStoreError {
    /// The database failed or holds something unreadable.
    #[error("enrolment storage: {0}")]
    Storage(String),
}

pub(super) fn storage(e: impl std::fmt::Display) -> EnrolmentStoreError {
    EnrolmentStoreError::Storage(e.to_string())
}

pub(super) fn transaction_error(error: TransactionError<()>) -> EnrolmentStoreError {
    match error {
        TransactionError::Abort(()) => storage("unreadable enrolment row"),
        TransactionError::Storage(e) => storage(e),
    }
}

pub(super) fn enrolment_key(device: &PublicKey) -> Vec<u8> {
    [b"e\0".as_slice(), &device.to_sec1()].concat()
}

fn unsettled_key(device: &PublicKey) -> Vec<u8> {
    [b"u\0".as_slice(), &device.to_sec1()].concat()
}

pub(super) fn queue_key(queued_at: u64, device: &PublicKey) -> Vec<u8> {
    [
        b"q\0".as_slice(),
        &queued_at.to_be_bytes(),
        &device.to_sec1(),
    ]
    .concat()
}

/// Whether stored row bytes are an `Expired` row (which a new request replaces).
pub(super) fn is_expired(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Enrolment>(bytes)
        .is_ok_and(|row| matches!(row.state, EnrolmentState::Expired { .. }))
}

fn nonce_key(nonce: &[u8; 16]) -> Vec<u8> {
    [b"n\0".as_slice(), nonce].concat()
}

/// A batch's sequence number and its tree.
pub(super) type RecentBatch = (u64, Arc<Batch>);

/// Enrolments, in the `enrolments` tree of the TBS's service database.
#[derive(Debug, Clone)]
pub struct EnrolmentStore {
    pub(super) tree: sled::Tree,
    /// The batch whose members' proofs were made last: instructions for the members of one
    /// batch are asked for together, and rebuilding its tree costs two hashes per member.
    pub(super) recent_batch: Arc<Mutex<Option<RecentBatch>>>,
    /// How many devices are queued for a batch (counted once at open, then kept): the
    /// queue's cap is checked on every request, which must not scan it.
    pub(super) queued: Arc<AtomicUsize>,
}

impl EnrolmentStore {
    /// Opens the `enrolments` tree of `db`.
    pub fn open(db: &sled::Db) -> Result<Self, EnrolmentStoreError> {
        let tree = db.open_tree("enrolments").map_err(storage)?;
        let queued = tree.scan_prefix(b"q\0").count();
        Ok(Self {
            tree,
            recent_batch: Arc::default(),
            queued: Arc::new(AtomicUsize::new(queued)),
        })
    }

    /// How many batch-mode devices wait for a batch.
    pub fn queued_count(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// The device's enrolment, if any.
    pub fn get(&self, device: &PublicKey) -> Result<Option<Enrolment>, EnrolmentStoreError> {
        self.tree
            .get(enrolment_key(device))
            .map_err(storage)?
            .map(|bytes| serde_json::from_slice(&bytes).map_err(storage))
            .transpose()
    }

    /// Records a request nonce; `Err(Replay)` if it was seen before. Flushed before it
    /// returns, so a replay is refused across a crash too.
    pub fn remember_nonce(
        &self,
        nonce: &[u8; 16],
        created: u64,
    ) -> Result<Result<(), Replay>, EnrolmentStoreError> {
        let previous = self
            .tree
            .compare_and_swap(
                nonce_key(nonce),
                None as Option<&[u8]>,
                Some(&created.to_be_bytes()[..]),
            )
            .map_err(storage)?;
        self.tree.flush().map_err(storage)?;
        Ok(previous.map_err(|_| Replay))
    }

    /// Stores a new `Queued` row and queues the device's certificate `digest` for a batch,
    /// at time `now`, unless the device already has a row; returns the row that is stored
    /// afterwards (the existing one if there was one).
    pub fn enqueue(
        &self,
        enrolment: &Enrolment,
        digest: &Digest,
        now: u64,
    ) -> Result<Enrolment, EnrolmentStoreError> {
        let entry = (
            queue_key(now, &enrolment.device),
            digest.as_bytes().to_vec(),
        );
        let key = enrolment_key(&enrolment.device);
        let bytes = serde_json::to_vec(enrolment).map_err(storage)?;
        // Counted before the row is visible, so a batch formed meanwhile never takes the
        // count below the queue.
        self.queued.fetch_add(1, Ordering::Relaxed);
        let written = self
            .tree
            .transaction(|tx| match tx.get(&key)? {
                Some(existing) if !is_expired(&existing) => Ok((existing.to_vec(), false)),
                _ => {
                    tx.insert(key.as_slice(), bytes.as_slice())?;
                    tx.insert(entry.0.as_slice(), entry.1.as_slice())?;
                    Ok((bytes.clone(), true))
                }
            })
            .map_err(transaction_error);
        if !matches!(written, Ok((_, true))) {
            self.queued.fetch_sub(1, Ordering::Relaxed);
        }
        let (stored, _) = written?;
        self.tree.flush().map_err(storage)?;
        serde_json::from_slice(&stored).map_err(storage)
    }

    /// Moves an `Offered` row to `Broadcast`, ending its reservation (the coin is spent by
    /// the payment now); the row as stored afterwards. A row already `Broadcast` (the device
    /// sent its signature twice) or `Expired` (too late) is returned unchanged.
    pub fn mark_broadcast(
        &self,
        device: &PublicKey,
        state: EnrolmentState,
    ) -> Result<Option<Enrolment>, EnrolmentStoreError> {
        let key = enrolment_key(device);
        let stored = self
            .tree
            .transaction(|tx| {
                let Some(bytes) = tx.get(&key)? else {
                    return Ok(None);
                };
                let mut row: Enrolment = serde_json::from_slice(&bytes)
                    .map_err(|_| ConflictableTransactionError::Abort(()))?;
                if let EnrolmentState::Offered { reservation, .. } = &row.state {
                    if let Some(reservation) = reservation {
                        tx.remove(super::offers::expiry_key(reservation.expires_at, device))?;
                    }
                    row.state = state.clone();
                    let bytes = serde_json::to_vec(&row)
                        .map_err(|_| ConflictableTransactionError::Abort(()))?;
                    tx.insert(key.as_slice(), bytes)?;
                    tx.insert(unsettled_key(device), &[])?;
                }
                Ok(Some(row))
            })
            .map_err(transaction_error)?;
        self.tree.flush().map_err(storage)?;
        Ok(stored)
    }
}

impl EnrolmentStore {
    /// Enrolments whose anchor was broadcast and is not yet final.
    pub fn unsettled(&self) -> Result<Vec<Enrolment>, EnrolmentStoreError> {
        let mut rows = Vec::new();
        for entry in self.tree.scan_prefix(b"u\0") {
            let (key, _) = entry.map_err(storage)?;
            let device = PublicKey::from_sec1(&key[2..]).map_err(storage)?;
            if let Some(row) = self.get(&device)? {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// Stops watching a device whose anchor is final.
    pub fn settle(&self, device: &PublicKey) -> Result<(), EnrolmentStoreError> {
        self.tree.remove(unsettled_key(device)).map_err(storage)?;
        self.tree.flush().map_err(storage)?;
        Ok(())
    }
}
