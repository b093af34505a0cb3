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
//! # Anchoring and storage
//!
//! The log itself is the one every service keeps ([`milagro_service::audit`]): the sync
//! loop signs a C2SP checkpoint of the log and anchors its digest as an `AuditLogRoot`
//! record from a UTXO of the TBS key, every `audit.checkpoint_interval_secs` and only when
//! the log grew ([`milagro_service::audit::anchoring`] has the rule, and why it never
//! anchors one checkpoint twice). Every anchored checkpoint is kept; the consistency proof
//! between two consecutive ones is computed from the log when asked, and checked before
//! each new checkpoint is anchored. Each entry is stored under its device key (33-byte
//! compressed SEC1), so a device is logged once; at start and before each checkpoint,
//! registrations a crash left unlogged are appended ([`RegistrationLog::catch_up`]).

use bitcoin::hashes::Hash as _;
use bitcoin::Txid;
use milagro_anchor::audit_log::LeafIndex;
use milagro_anchor::digest::Digest;
use milagro_anchor::keys::PublicKey;

use crate::enrolment::{Enrolment, EnrolmentState, EnrolmentStore};
use crate::tenants::model::{GroupId, TenantId};
pub use milagro_service::audit::{
    anchoring, store, Audit, AuditError, AuditStore, AuditStoreError, StoredCheckpoint,
};

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

/// The TBS's registrations in its [`Audit`] log.
pub trait RegistrationLog {
    /// Logs a broadcast or batched enrolment (once per device: again is a no-op that
    /// returns the same index); `None` for an enrolment that is only offered or queued.
    fn register(&self, row: &Enrolment) -> Result<Option<LeafIndex>, AuditError>;

    /// Logs every broadcast enrolment still watched by the chain loop that has no entry (a
    /// crash between recording the broadcast and logging it leaves such a row).
    fn catch_up(&self, enrolments: &EnrolmentStore) -> Result<(), AuditError>;

    /// The device's leaf index and entry, if it is logged.
    fn registration(&self, device: &PublicKey) -> Result<Option<(LeafIndex, Digest)>, AuditError>;
}

impl RegistrationLog for Audit {
    fn register(&self, row: &Enrolment) -> Result<Option<LeafIndex>, AuditError> {
        let entry = match &row.state {
            EnrolmentState::Broadcast { txid, .. } => {
                registration_entry(&row.device, &row.tenant, &row.group, txid)
            }
            EnrolmentState::Batched { root, .. } => {
                batch_registration_entry(&row.device, &row.tenant, &row.group, root)
            }
            EnrolmentState::Offered { .. }
            | EnrolmentState::Expired { .. }
            | EnrolmentState::Queued => return Ok(None),
        };
        let (index, new) = self.append(&row.device.to_sec1(), &entry)?;
        if new {
            tracing::info!(device = %row.device, %index, "registration logged");
        }
        Ok(Some(index))
    }

    fn catch_up(&self, enrolments: &EnrolmentStore) -> Result<(), AuditError> {
        for row in enrolments
            .unsettled()
            .map_err(|e| AuditError::Records(e.to_string()))?
        {
            self.register(&row)?;
        }
        Ok(())
    }

    fn registration(&self, device: &PublicKey) -> Result<Option<(LeafIndex, Digest)>, AuditError> {
        self.entry_of(&device.to_sec1())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a panicking test is a failing test
mod tests;
