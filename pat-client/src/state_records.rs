//! The public face of a device's state: its provisioning, its verified instructions, and
//! read-only access to the rest.

use std::path::Path;

use bitcoin::{Network, Txid};
use milagro_anchor::birth_certificate::BirthCertificate;
use milagro_anchor::digest::Digest;
use milagro_anchor::enrolment::MAX_NAME_BYTES;
use milagro_anchor::instructions::Instructions;
use milagro_anchor::keys::PublicKey;
use serde::{Deserialize, Serialize};

use super::{Device, Progress};

/// What a device is provisioned with, and nothing more: whom to ask, which certificate
/// that server must have, and where the device belongs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provisioning {
    /// The TBS's base URL (plain `http://` in this build).
    pub tbs_url: String,
    /// The digest of the TBS's Birth Certificate.
    pub tbs_digest: Digest,
    /// The tenant (device maker or application developer).
    pub tenant: String,
    /// The device group within the tenant.
    pub group: String,
    /// The Bitcoin network whose genesis the header chain starts from.
    pub network: Network,
}

impl Provisioning {
    pub(crate) fn check(&self) -> Result<(), String> {
        for (what, name) in [("tenant", &self.tenant), ("group", &self.group)] {
            if name.is_empty() || name.len() > MAX_NAME_BYTES {
                return Err(format!(
                    "the {what} name must be 1 to {MAX_NAME_BYTES} bytes"
                ));
            }
        }
        if !(self.tbs_url.starts_with("http://") || self.tbs_url.starts_with("https://")) {
            return Err(format!("tbs url {:?} is not http(s)", self.tbs_url));
        }
        Ok(())
    }
}

/// A verified anchor, as remembered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorSummary {
    /// The anchoring transaction.
    pub txid: Txid,
    /// The height of its block.
    pub height: u32,
    /// Its confirmations when it was verified.
    pub depth: u32,
}

/// Instructions as stored, once every anchor in them verified by SPV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredInstructions {
    /// The sealing sequence (= the group's revision).
    pub sequence: u64,
    /// The instructions.
    pub instructions: Instructions,
    /// The device's own anchor.
    pub device_anchor: AnchorSummary,
    /// The D-TAs' anchors then the IdP's, in the order of the instructions.
    pub service_anchors: Vec<AnchorSummary>,
}

impl Device {
    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The device's public key.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// The device's Birth Certificate.
    pub fn birth_certificate(&self) -> &BirthCertificate {
        &self.bc
    }

    /// What the device was provisioned with.
    pub fn provisioning(&self) -> &Provisioning {
        &self.provisioning
    }

    /// The TBS certificate this device verified, once it did.
    pub fn tbs_certificate(&self) -> Option<&BirthCertificate> {
        self.tbs.as_ref().map(|t| &t.bc)
    }

    /// The device's anchoring transaction, once signed (or reported by the TBS); for a
    /// batch member, its batch root's, once instructions proved it.
    pub fn anchor_txid(&self) -> Option<Txid> {
        match self.progress.as_ref()? {
            Progress::Direct { txid, .. } => Some(*txid),
            Progress::Batch => self.instructions.as_ref().map(|i| i.device_anchor.txid),
        }
    }

    /// Whether the device enrolled in batch mode (its certificate anchored under a TBS
    /// batch root, not by its own transaction).
    pub fn is_batched(&self) -> bool {
        matches!(self.progress, Some(Progress::Batch))
    }

    /// The device's own signed anchoring transaction (direct mode), once stored.
    pub(crate) fn signed_anchor(&self) -> Option<&bitcoin::Transaction> {
        match self.progress.as_ref()? {
            Progress::Direct { tx, .. } => tx.as_ref(),
            Progress::Batch => None,
        }
    }

    /// The last verified instructions, once enrolled.
    pub fn instructions(&self) -> Option<&StoredInstructions> {
        self.instructions.as_ref()
    }
}
