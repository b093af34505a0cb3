//! Batches of batch-mode devices, in the enrolments tree next to the device rows.
//!
//! Keys: `b\0` ‖ sequence (8 bytes, big-endian) → [`StoredBatch`] JSON; `m\0` ‖ sequence
//! ‖ member index (8 bytes each, big-endian) → device key (33 bytes) ‖ certificate digest
//! (32 bytes); `w\0` ‖ sequence → nothing, while the batch's anchor is not final (the sync
//! loop watches only those). Big-endian keys keep batches and members in order.
//!
//! [`EnrolmentStore::form_batch`] writes the batch, its members, the members' rows (now
//! `Batched`) and the removal of their queue entries in one atomic sled batch, flushed
//! before it returns: a crash leaves either every member queued or every member in the
//! batch, never a device in two batches or in none.

use std::sync::{Arc, PoisonError};

use bitcoin::Txid;
use milagro_anchor::audit_log::LeafIndex;
use milagro_anchor::batch::{Batch, BatchMembershipProof};
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::PublicKey;
use serde::{Deserialize, Serialize};

use super::store::{queue_key, storage, Enrolment, EnrolmentState, EnrolmentStoreError};
use super::EnrolmentStore;

/// A batch as stored: its root and size, when it was formed, and the transaction anchoring
/// the root with the payment that funds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBatch {
    /// Sequence number, from 0.
    pub sequence: u64,
    /// The RFC 6962 root over the members' certificate digests, in member order.
    pub root: Digest,
    /// The number of members.
    pub size: u64,
    /// When it was formed (Unix seconds).
    pub created: u64,
    /// The anchoring transaction's id.
    pub txid: Txid,
    /// The signed anchoring transaction (hex).
    pub tx: String,
    /// The wallet's payment it spends (hex), re-sent with it.
    pub funding_tx: String,
}

/// One device of a batch: its key and its certificate's digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The device key.
    pub device: PublicKey,
    /// The digest of its Birth Certificate: the batch leaf.
    pub digest: Digest,
}

/// A device waiting for a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedDevice {
    /// When it was queued (Unix seconds).
    pub queued_at: u64,
    /// The device and its digest.
    pub member: Member,
}

fn batch_key(sequence: u64) -> Vec<u8> {
    [b"b\0".as_slice(), &sequence.to_be_bytes()].concat()
}

fn watch_key(sequence: u64) -> Vec<u8> {
    [b"w\0".as_slice(), &sequence.to_be_bytes()].concat()
}

fn members_prefix(sequence: u64) -> Vec<u8> {
    [b"m\0".as_slice(), &sequence.to_be_bytes()].concat()
}

fn member_key(sequence: u64, index: u64) -> Vec<u8> {
    [members_prefix(sequence).as_slice(), &index.to_be_bytes()].concat()
}

fn member_from(device: &[u8], digest: &[u8]) -> Result<Member, EnrolmentStoreError> {
    Ok(Member {
        device: PublicKey::from_sec1(device).map_err(storage)?,
        digest: Digest::from_slice(digest).map_err(storage)?,
    })
}

/// A `m\0` row's value: device key ‖ digest.
fn member_row(sequence: u64, value: &[u8]) -> Result<Member, EnrolmentStoreError> {
    let (device, digest) = value
        .split_at_checked(33)
        .ok_or_else(|| storage(format!("malformed member row of batch {sequence}")))?;
    member_from(device, digest)
}

/// The 8-byte big-endian number after a key's 2-byte prefix (a batch sequence, a time).
fn sequence_of(key: &[u8]) -> Result<u64, EnrolmentStoreError> {
    key.get(2..10)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| storage("malformed key"))
}

impl EnrolmentStore {
    /// Up to `limit` queued devices, oldest first.
    pub fn queued(&self, limit: usize) -> Result<Vec<QueuedDevice>, EnrolmentStoreError> {
        self.tree
            .scan_prefix(b"q\0")
            .take(limit)
            .map(|entry| {
                let (key, digest) = entry.map_err(storage)?;
                Ok(QueuedDevice {
                    queued_at: sequence_of(&key)?,
                    member: member_from(key.get(10..).unwrap_or_default(), &digest)?,
                })
            })
            .collect()
    }

    /// When the device that has waited longest was queued, if any is.
    pub fn oldest_queued(&self) -> Result<Option<u64>, EnrolmentStoreError> {
        self.tree
            .scan_prefix(b"q\0")
            .next()
            .map(|entry| sequence_of(&entry.map_err(storage)?.0))
            .transpose()
    }

    /// Stores `batch` with `members` (in leaf order) and moves each member's row from
    /// `Queued` to `Batched`, atomically (see the module documentation). Refuses a member
    /// that is not queued.
    pub fn form_batch(
        &self,
        batch: &StoredBatch,
        members: &[QueuedDevice],
    ) -> Result<(), EnrolmentStoreError> {
        let mut write = sled::Batch::default();
        for (index, queued) in (0u64..).zip(members) {
            let member = &queued.member;
            let mut row: Enrolment = self
                .get(&member.device)?
                .ok_or_else(|| storage(format!("queued device {} has no row", member.device)))?;
            if row.state != EnrolmentState::Queued {
                return Err(storage(format!("device {} is not queued", member.device)));
            }
            row.state = EnrolmentState::Batched {
                batch: batch.sequence,
                index,
                root: batch.root,
            };
            write.insert(
                super::store::enrolment_key(&member.device),
                serde_json::to_vec(&row).map_err(storage)?,
            );
            write.remove(queue_key(queued.queued_at, &member.device));
            write.insert(
                member_key(batch.sequence, index),
                [member.device.to_sec1().as_slice(), member.digest.as_bytes()].concat(),
            );
        }
        write.insert(
            batch_key(batch.sequence),
            serde_json::to_vec(batch).map_err(storage)?,
        );
        write.insert(watch_key(batch.sequence), &[]);
        self.tree.apply_batch(write).map_err(storage)?;
        self.tree.flush().map_err(storage)?;
        self.queued
            .fetch_sub(members.len(), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Batch `sequence`, if formed.
    pub fn batch(&self, sequence: u64) -> Result<Option<StoredBatch>, EnrolmentStoreError> {
        self.tree
            .get(batch_key(sequence))
            .map_err(storage)?
            .map(|bytes| serde_json::from_slice(&bytes).map_err(storage))
            .transpose()
    }

    /// The newest batch, if any.
    pub fn latest_batch(&self) -> Result<Option<StoredBatch>, EnrolmentStoreError> {
        self.tree
            .scan_prefix(b"b\0")
            .next_back()
            .map(|entry| {
                let (_, bytes) = entry.map_err(storage)?;
                serde_json::from_slice(&bytes).map_err(storage)
            })
            .transpose()
    }

    /// The members of batch `sequence`, in leaf order.
    pub fn batch_members(&self, sequence: u64) -> Result<Vec<Member>, EnrolmentStoreError> {
        self.tree
            .scan_prefix(members_prefix(sequence))
            .map(|entry| {
                let (_, value) = entry.map_err(storage)?;
                member_row(sequence, &value)
            })
            .collect()
    }

    /// Member `index` of batch `sequence`, if there is one.
    pub fn batch_member(
        &self,
        sequence: u64,
        index: u64,
    ) -> Result<Option<Member>, EnrolmentStoreError> {
        self.tree
            .get(member_key(sequence, index))
            .map_err(storage)?
            .map(|value| member_row(sequence, &value))
            .transpose()
    }

    /// Batches whose anchor is not yet final, oldest first.
    pub fn unsettled_batches(&self) -> Result<Vec<StoredBatch>, EnrolmentStoreError> {
        let mut batches = Vec::new();
        for entry in self.tree.scan_prefix(b"w\0") {
            let (key, _) = entry.map_err(storage)?;
            let sequence = sequence_of(&key)?;
            let batch = self
                .batch(sequence)?
                .ok_or_else(|| storage(format!("watched batch {sequence} is missing")))?;
            batches.push(batch);
        }
        Ok(batches)
    }

    /// Replaces a batch's anchoring transaction (the old one can never confirm); the root
    /// and members stay.
    pub fn replace_batch_anchor(&self, batch: &StoredBatch) -> Result<(), EnrolmentStoreError> {
        self.tree
            .insert(
                batch_key(batch.sequence),
                serde_json::to_vec(batch).map_err(storage)?,
            )
            .map_err(storage)?;
        self.tree.flush().map_err(storage)?;
        Ok(())
    }

    /// The membership proof of member `index` of batch `sequence`, from its stored members
    /// (the batch's tree is kept for the next member asking).
    pub fn membership_proof(
        &self,
        sequence: u64,
        index: u64,
    ) -> Result<BatchMembershipProof, EnrolmentStoreError> {
        let mut recent = self
            .recent_batch
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let batch = match recent.as_ref() {
            Some((cached, batch)) if *cached == sequence => Arc::clone(batch),
            _ => {
                let digests: Vec<Digest> = self
                    .batch_members(sequence)?
                    .iter()
                    .map(|m| m.digest)
                    .collect();
                let batch = Arc::new(Batch::build(&digests).map_err(storage)?);
                *recent = Some((sequence, Arc::clone(&batch)));
                batch
            }
        };
        drop(recent);
        batch.proof_for(LeafIndex::new(index)).map_err(storage)
    }

    /// Stops watching a batch whose anchor is final.
    pub fn settle_batch(&self, sequence: u64) -> Result<(), EnrolmentStoreError> {
        self.tree.remove(watch_key(sequence)).map_err(storage)?;
        self.tree.flush().map_err(storage)?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panicking test is a failing test
mod tests {
    use bitcoin::hashes::Hash as _;
    use milagro_anchor::envelope::InstructionKey;
    use milagro_anchor::keys::SecretKey;
    use rand_core::OsRng;

    use super::*;
    use crate::tenants::model::{GroupId, TenantId};

    fn store() -> EnrolmentStore {
        EnrolmentStore::open(&sled::Config::new().temporary(true).open().unwrap()).unwrap()
    }

    fn queued_row(store: &EnrolmentStore, at: u64) -> Member {
        let device = SecretKey::generate(&mut OsRng).public_key();
        let row = Enrolment {
            device,
            tenant: TenantId::new("acme").unwrap(),
            group: GroupId::new("fleet").unwrap(),
            birth_certificate: String::new(),
            instruction_key: InstructionKey::generate(&mut OsRng),
            state: EnrolmentState::Queued,
        };
        let digest = Digest::sha256(&device.to_sec1());
        store.enqueue(&row, &digest, at).unwrap();
        Member { device, digest }
    }

    fn stored_batch(sequence: u64, members: &[QueuedDevice]) -> StoredBatch {
        let digests: Vec<Digest> = members.iter().map(|q| q.member.digest).collect();
        StoredBatch {
            sequence,
            root: Batch::build(&digests).unwrap().root(),
            size: members.len() as u64,
            created: 10,
            txid: Txid::from_byte_array([sequence as u8; 32]),
            tx: String::new(),
            funding_tx: String::new(),
        }
    }

    #[test]
    fn a_batch_takes_the_queue_oldest_first_and_moves_every_member_at_once() {
        let store = store();
        let late = queued_row(&store, 300);
        let early = queued_row(&store, 100);
        let middle = queued_row(&store, 200);
        assert_eq!(store.oldest_queued().unwrap(), Some(100));
        // Queuing the same device again changes nothing.
        let again = Enrolment {
            device: early.device,
            tenant: TenantId::new("acme").unwrap(),
            group: GroupId::new("fleet").unwrap(),
            birth_certificate: String::new(),
            instruction_key: InstructionKey::generate(&mut OsRng),
            state: EnrolmentState::Queued,
        };
        store.enqueue(&again, &early.digest, 400).unwrap();
        let queued = store.queued(10).unwrap();
        let order: Vec<_> = queued.iter().map(|q| q.member).collect();
        assert_eq!(order, vec![early, middle, late]);
        assert_eq!(store.queued(2).unwrap().len(), 2);

        let batch = stored_batch(0, &queued);
        store.form_batch(&batch, &queued).unwrap();
        assert_eq!(store.oldest_queued().unwrap(), None);
        assert_eq!(store.batch_members(0).unwrap(), order);
        assert_eq!(store.batch_member(0, 2).unwrap(), Some(order[2]));
        assert_eq!(store.batch_member(0, 3).unwrap(), None);
        assert_eq!(store.latest_batch().unwrap(), Some(batch.clone()));
        for (index, member) in (0u64..).zip(&order) {
            let row = store.get(&member.device).unwrap().unwrap();
            assert_eq!(
                row.state,
                EnrolmentState::Batched {
                    batch: 0,
                    index,
                    root: batch.root
                }
            );
            store
                .membership_proof(0, index)
                .unwrap()
                .verify(&member.digest, &batch.root)
                .unwrap();
        }
        assert!(store.membership_proof(0, 3).is_err());
        // A member already batched cannot be put in a second batch.
        assert!(store
            .form_batch(&stored_batch(1, &queued), &queued)
            .is_err());
        assert!(store.batch(1).unwrap().is_none());

        assert_eq!(store.unsettled_batches().unwrap(), vec![batch.clone()]);
        let mut moved = batch.clone();
        moved.txid = Txid::from_byte_array([9; 32]);
        store.replace_batch_anchor(&moved).unwrap();
        assert_eq!(store.unsettled_batches().unwrap(), vec![moved]);
        store.settle_batch(0).unwrap();
        assert!(store.unsettled_batches().unwrap().is_empty());
        assert!(store.batch(0).unwrap().is_some());
    }
}
