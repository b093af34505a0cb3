//! The public face of a device's state: its provisioning, its verified instructions, and
//! read-only access to the rest.

use std::path::Path;

use bitcoin::{BlockHash, Network, Txid, Work};
use milagro_anchor::birth_certificate::BirthCertificate;
use milagro_anchor::digest::Digest;
use milagro_anchor::enrolment::MAX_NAME_BYTES;
use milagro_anchor::instructions::Instructions;
use milagro_anchor::keys::{PublicKey, SecretKey};
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
    /// Independent sources the TBS's answers are checked against (none by default).
    #[serde(default, skip_serializing_if = "ChainSources::is_empty")]
    pub sources: ChainSources,
}

/// The sources a device checks its TBS against (`docs/threat-model.md`, "what n sources
/// buy"). Each one only adds checks: a device may be given more of them (or fewer) after
/// it enrolled, and every source must answer for a lookup to succeed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSources {
    /// Electrum servers (`tcp://host:port`) whose best chain the TBS's headers must agree
    /// with. They confirm; they cannot discover records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub electrum: Vec<String>,
    /// More registries (TBSes run by other operators), each pinned by its certificate
    /// digest: certificate lookups and the superseded check ask all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registries: Vec<RegistryPin>,
}

impl ChainSources {
    /// No source besides the TBS.
    pub fn is_empty(&self) -> bool {
        self.electrum.is_empty() && self.registries.is_empty()
    }
}

/// A registry (a TBS) the device asks besides its own, and the digest of the Birth
/// Certificate it must serve. Written `DIGEST@URL` on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryPin {
    /// Its base URL.
    pub url: String,
    /// The digest of its Birth Certificate.
    pub digest: Digest,
}

impl std::str::FromStr for RegistryPin {
    type Err = String;

    /// Parses `DIGEST@URL`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (digest, url) = s
            .split_once('@')
            .ok_or_else(|| format!("{s:?} is not DIGEST@URL"))?;
        let digest = digest
            .parse()
            .map_err(|e| format!("{digest:?} is not a certificate digest: {e}"))?;
        let url = url.trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("registry url {url:?} is not http(s)"));
        }
        Ok(Self { url, digest })
    }
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
        let urls =
            std::iter::once(&self.tbs_url).chain(self.sources.registries.iter().map(|r| &r.url));
        for url in urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("tbs url {url:?} is not http(s)"));
            }
        }
        if let Some(url) = self
            .sources
            .electrum
            .iter()
            .find(|u| !u.starts_with("tcp://"))
        {
            return Err(format!("electrum url {url:?} is not tcp://host:port"));
        }
        Ok(())
    }
}

/// The best chain this device has accepted, and which sources agreed on it. No chain with
/// less work is accepted afterwards, across restarts: a TBS cannot take the device back to
/// a weaker branch it accepted before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSeen {
    /// Its tip's height.
    pub height: u32,
    /// Its tip's block hash.
    pub hash: BlockHash,
    /// Its cumulative proof of work.
    #[serde(with = "work_hex")]
    pub work: Work,
    /// The sources that agreed on it: the TBS's URL first, then each Electrum server's.
    pub agreed_by: Vec<String>,
}

/// [`Work`] as 64 hex characters, big-endian (the way `getblockchaininfo` shows it).
mod work_hex {
    use bitcoin::Work;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(work: &Work, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(work.to_be_bytes()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Work, D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&text, &mut bytes).map_err(serde::de::Error::custom)?;
        Ok(Work::from_be_bytes(bytes))
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

    /// The device's anchored key: its DPoP proofs at the IdP sign with it
    /// ([`crate::idp_login::DeviceLogin::wait`]), binding its ID token to it.
    pub fn key(&self) -> &SecretKey {
        &self.key
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

    /// The best chain this device accepted, and who agreed on it.
    pub fn chain_seen(&self) -> Option<&ChainSeen> {
        self.chain.as_ref()
    }

    /// The last verified instructions, once enrolled.
    pub fn instructions(&self) -> Option<&StoredInstructions> {
        self.instructions.as_ref()
    }
}
