//! The device's state directory: a few kilobytes, every file written atomically.
//!
//! | file | mode | written | holds |
//! |---|---|---|---|
//! | `device.key` | 0600 | once, never replaced | the device's secp256k1 secret key, 64 hex characters |
//! | `instruction.key` | 0600 | once, never replaced | the AES-128 instruction key, 32 hex characters |
//! | `device-bc.json` | 0600 | once, never replaced | the device's Birth Certificate (role `pat`), canonical JSON |
//! | `enrolment-credential.json` | 0600 | when installed | the maker's enrolment credential for this key, tenant and group |
//! | `state.json` | 0600 | replaced at each step | format, provisioning (with its sources), the verified TBS certificate, progress, instructions, the best chain seen |
//!
//! The directory is created with mode 0700. `state.json` is written last when a device is
//! provisioned, so its presence means the keys and certificate are complete; it is then
//! replaced once per protocol step (one atomic rename: a crash leaves the previous step or
//! the next, never a mix). Everything is written *before* it is sent: the instruction key
//! before the request that carries it, the signed anchor before the TBS sees it.
//!
//! Loading checks every file and their agreement (the certificate is the key's, the TBS
//! certificate has the provisioned digest, the anchor is the device's, the instructions are
//! for its tenant, group and anchor) and refuses anything else with [`Error::CorruptState`]
//! rather than guessing. `state.json`'s `format` is 1; another value is refused.

use std::path::{Path, PathBuf};

use bitcoin::{Amount, Transaction, Txid};
use milagro_anchor::birth_certificate::{BcFields, BirthCertificate, Role, Status, VERSION};
use milagro_anchor::enrolment_credential::EnrolmentCredential;
use milagro_anchor::envelope::InstructionKey;
use milagro_anchor::keys::SecretKey;
use milagro_anchor::purpose_keys::PurposeKeys;
use milagro_anchor::record::RecordCandidate;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::files;

mod records;
pub use records::{
    AnchorSummary, ChainSeen, ChainSources, Provisioning, RegistryPin, StoredInstructions,
};

/// The version of `state.json` this code reads and writes.
pub const STATE_FORMAT: u32 = 1;

const DEVICE_KEY: &str = "device.key";
const INSTRUCTION_KEY: &str = "instruction.key";
const DEVICE_BC: &str = "device-bc.json";
const CREDENTIAL: &str = "enrolment-credential.json";
const STATE: &str = "state.json";

/// The TBS this device verified (digest, role, status, anchor by SPV).
#[derive(Debug, Clone)]
pub(crate) struct TbsRecord {
    pub bc: BirthCertificate,
    pub anchor_txid: Txid,
    pub anchor_height: u32,
}

/// How far the device's anchor got.
#[derive(Debug, Clone)]
pub(crate) enum Progress {
    /// Direct mode: the device's anchoring transaction, stored signed before the TBS
    /// receives it (or, when a lost `state.json` was provisioned again, only its txid as
    /// the TBS reports it, until the instructions bring the transaction with its proof).
    Direct {
        txid: Txid,
        tx: Option<Transaction>,
        /// The value of the output `tx` spends, known when this device signed it.
        funding: Option<Amount>,
    },
    /// Batch mode: the TBS queued the device for a batch root it anchors itself.
    Batch,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TbsWire {
    birth_certificate: serde_json::Value,
    anchor_txid: Txid,
    anchor_height: u32,
}

/// `{"anchor_txid", "anchor_tx"}` in direct mode, `{"batch": true}` in batch mode.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgressWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    anchor_txid: Option<Txid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    anchor_tx: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    anchor_funding_sat: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    batch: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateWire {
    format: u32,
    provisioning: Provisioning,
    tbs: Option<TbsWire>,
    progress: Option<ProgressWire>,
    instructions: Option<StoredInstructions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chain: Option<ChainSeen>,
}

/// Everything a device holds, loaded from its state directory and cross-checked. Every
/// protocol state carries one ([`Provisioned::device`](crate::Provisioned::device) and the
/// like); it is read-only outside this crate.
#[derive(Debug)]
pub struct Device {
    pub(crate) dir: PathBuf,
    pub(crate) key: SecretKey,
    pub(crate) bc: BirthCertificate,
    pub(crate) instruction_key: InstructionKey,
    pub(crate) provisioning: Provisioning,
    pub(crate) tbs: Option<TbsRecord>,
    pub(crate) progress: Option<Progress>,
    pub(crate) instructions: Option<StoredInstructions>,
    pub(crate) chain: Option<ChainSeen>,
    pub(crate) credential: Option<EnrolmentCredential>,
}

impl Device {
    /// Provisions a device in `dir` (keys, certificate named `name`, created at `now`), or
    /// loads the one there: with new settings if it has not verified a TBS yet (nothing
    /// was sent under the old ones), otherwise only if the settings are the same (its
    /// [`ChainSources`] may change: each only adds checks).
    pub(crate) fn provision(
        dir: &Path,
        provisioning: Provisioning,
        name: Option<&str>,
        now: u64,
    ) -> Result<Self, Error> {
        provisioning.check().map_err(Error::Unsupported)?;
        files::create_private_dir(dir)?;
        if files::read(&dir.join(STATE))?.is_some() {
            let mut existing = Self::load(dir)?;
            if existing.tbs.is_none() && existing.provisioning != provisioning {
                // Nothing was sent under the old settings (a mistyped digest, say).
                existing.provisioning = provisioning;
                existing.save()?;
                return Ok(existing);
            }
            existing.check_same(&provisioning)?;
            if existing.provisioning.sources != provisioning.sources {
                existing.provisioning.sources = provisioning.sources;
                existing.save()?;
            }
            return Ok(existing);
        }
        let rng = &mut rand_core::OsRng;
        files::write_new(
            &dir.join(DEVICE_KEY),
            SecretKey::generate(rng).to_hex().as_bytes(),
        )?;
        let key = read_device_key(dir)?;
        files::write_new(
            &dir.join(INSTRUCTION_KEY),
            InstructionKey::generate(rng).to_hex().as_bytes(),
        )?;
        let instruction_key = read_instruction_key(dir)?;
        let public = key.public_key().to_string();
        let fields = BcFields {
            version: VERSION,
            role: Role::Pat,
            name: name.map_or_else(
                || format!("PAT {}", public.get(..16).unwrap_or(&public)),
                str::to_owned,
            ),
            endpoints: vec![],
            created: now,
            public_key: key.public_key(),
            status: Status::Active,
            previous: None,
            keys: PurposeKeys::none(),
        };
        let bc = BirthCertificate::sign(fields, &key)?;
        files::write_new(&dir.join(DEVICE_BC), &bc.to_canonical_json())?;
        let bc = read_device_bc(dir, &key)?;
        let state = Self {
            dir: dir.to_path_buf(),
            key,
            bc,
            instruction_key,
            provisioning,
            tbs: None,
            progress: None,
            instructions: None,
            chain: None,
            credential: None,
        };
        state.save()?;
        Ok(state)
    }

    /// Loads and cross-checks the state in `dir`.
    pub(crate) fn load(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(STATE);
        let bytes = files::read(&path)?.ok_or_else(|| Error::NotProvisioned(dir.to_path_buf()))?;
        let wire: StateWire =
            serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(&path, e))?;
        if wire.format != STATE_FORMAT {
            return Err(Error::corrupt(
                &path,
                format!("format {}, this code reads {STATE_FORMAT}", wire.format),
            ));
        }
        wire.provisioning
            .check()
            .map_err(|e| Error::corrupt(&path, e))?;
        let key = read_device_key(dir)?;
        let bc = read_device_bc(dir, &key)?;
        let instruction_key = read_instruction_key(dir)?;
        let tbs = wire
            .tbs
            .map(|t| tbs_record(t, &wire.provisioning))
            .transpose()
            .map_err(|e| Error::corrupt(&path, e))?;
        let progress = wire
            .progress
            .map(|p| progress(p, &bc))
            .transpose()
            .map_err(|e| Error::corrupt(&path, e))?;
        let state = Self {
            dir: dir.to_path_buf(),
            key,
            bc,
            instruction_key,
            provisioning: wire.provisioning,
            tbs,
            progress,
            instructions: wire.instructions,
            chain: wire.chain,
            credential: read_credential(dir)?,
        };
        state
            .check_consistent()
            .map_err(|e| Error::corrupt(&path, e))?;
        Ok(state)
    }

    /// Replaces `state.json` with this state.
    pub(crate) fn save(&self) -> Result<(), Error> {
        let path = self.dir.join(STATE);
        let tbs = self
            .tbs
            .as_ref()
            .map(|t| {
                Ok::<_, serde_json::Error>(TbsWire {
                    birth_certificate: serde_json::from_slice(&t.bc.to_canonical_json())?,
                    anchor_txid: t.anchor_txid,
                    anchor_height: t.anchor_height,
                })
            })
            .transpose()
            .map_err(|e| Error::corrupt(&path, e))?;
        let wire = StateWire {
            format: STATE_FORMAT,
            provisioning: self.provisioning.clone(),
            tbs,
            progress: self.progress.as_ref().map(|p| match p {
                Progress::Direct { txid, tx, funding } => ProgressWire {
                    anchor_txid: Some(*txid),
                    anchor_tx: tx.as_ref().map(bitcoin::consensus::encode::serialize_hex),
                    anchor_funding_sat: funding.map(Amount::to_sat),
                    batch: false,
                },
                Progress::Batch => ProgressWire {
                    anchor_txid: None,
                    anchor_tx: None,
                    anchor_funding_sat: None,
                    batch: true,
                },
            }),
            instructions: self.instructions.clone(),
            chain: self.chain.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&wire).map_err(|e| Error::corrupt(&path, e))?;
        files::write_atomically(&path, &bytes)
    }

    /// Stores `credential` (which must be for this device's key, tenant and group) in
    /// the state directory, replacing any other.
    pub(crate) fn install_credential(
        &mut self,
        credential: EnrolmentCredential,
    ) -> Result<(), Error> {
        credential.check(
            &self.provisioning.tenant,
            &self.provisioning.group,
            &self.key.public_key(),
        )?;
        files::write_atomically(&self.dir.join(CREDENTIAL), credential.to_json().as_bytes())?;
        self.credential = Some(credential);
        Ok(())
    }

    fn check_same(&self, wanted: &Provisioning) -> Result<(), Error> {
        let stored = &self.provisioning;
        let differs = [
            (
                "tbs url",
                stored.tbs_url != wanted.tbs_url,
                stored.tbs_url.clone(),
            ),
            (
                "tbs digest",
                stored.tbs_digest != wanted.tbs_digest,
                stored.tbs_digest.to_string(),
            ),
            (
                "tenant",
                stored.tenant != wanted.tenant,
                stored.tenant.clone(),
            ),
            ("group", stored.group != wanted.group, stored.group.clone()),
            (
                "network",
                stored.network != wanted.network,
                stored.network.to_string(),
            ),
        ];
        match differs.into_iter().find(|(_, differs, _)| *differs) {
            Some((field, _, stored)) => Err(Error::ProvisionedOtherwise {
                path: self.dir.clone(),
                field,
                stored,
            }),
            None => Ok(()),
        }
    }

    fn check_consistent(&self) -> Result<(), String> {
        if self.progress.is_some() && self.tbs.is_none() {
            return Err("an anchor was sent to a tbs that was never verified".into());
        }
        let Some(stored) = &self.instructions else {
            return Ok(());
        };
        let Some(progress) = &self.progress else {
            return Err("instructions without an anchoring transaction".into());
        };
        let got = &stored.instructions;
        if stored.sequence != got.revision {
            return Err(format!(
                "instructions stored as sequence {} say revision {}",
                stored.sequence, got.revision
            ));
        }
        if (got.tenant.as_str(), got.group.as_str())
            != (&self.provisioning.tenant, &self.provisioning.group)
        {
            return Err(format!(
                "instructions for {}/{}, provisioned for {}/{}",
                got.tenant, got.group, self.provisioning.tenant, self.provisioning.group
            ));
        }
        if got.device.txid() != stored.device_anchor.txid {
            return Err("instructions name another anchoring transaction".into());
        }
        match progress {
            Progress::Direct { txid, .. }
                if got.device.is_batched() || got.device.txid() != *txid =>
            {
                Err("instructions name another anchoring transaction".into())
            }
            Progress::Batch if !got.device.is_batched() => {
                Err("instructions for a direct anchor, the device is in a batch".into())
            }
            _ => Ok(()),
        }
    }
}

fn read_device_key(dir: &Path) -> Result<SecretKey, Error> {
    let path = dir.join(DEVICE_KEY);
    let bytes = files::read_secret(&path)?.ok_or_else(|| Error::corrupt(&path, "missing"))?;
    let text = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
    SecretKey::from_hex(&text).map_err(|e| Error::corrupt(&path, e))
}

fn read_instruction_key(dir: &Path) -> Result<InstructionKey, Error> {
    let path = dir.join(INSTRUCTION_KEY);
    let bytes = files::read_secret(&path)?.ok_or_else(|| Error::corrupt(&path, "missing"))?;
    let text = Zeroizing::new(String::from_utf8_lossy(&bytes).trim().to_owned());
    InstructionKey::from_hex(&text).map_err(|e| Error::corrupt(&path, e))
}

fn read_device_bc(dir: &Path, key: &SecretKey) -> Result<BirthCertificate, Error> {
    let path = dir.join(DEVICE_BC);
    let bytes = files::read(&path)?.ok_or_else(|| Error::corrupt(&path, "missing"))?;
    let bc = BirthCertificate::parse(&bytes).map_err(|e| Error::corrupt(&path, e))?;
    if bc.role() != Role::Pat {
        return Err(Error::corrupt(
            &path,
            format!("a {} certificate", bc.role()),
        ));
    }
    if *bc.public_key() != key.public_key() {
        return Err(Error::corrupt(
            &path,
            "certifies another key than device.key",
        ));
    }
    Ok(bc)
}

fn read_credential(dir: &Path) -> Result<Option<EnrolmentCredential>, Error> {
    let path = dir.join(CREDENTIAL);
    let Some(bytes) = files::read(&path)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    EnrolmentCredential::from_json(&text)
        .map(Some)
        .map_err(|e| Error::corrupt(&path, e))
}

fn tbs_record(wire: TbsWire, provisioning: &Provisioning) -> Result<TbsRecord, String> {
    let json = serde_json::to_vec(&wire.birth_certificate).map_err(|e| e.to_string())?;
    let bc = BirthCertificate::parse(&json).map_err(|e| format!("tbs certificate: {e}"))?;
    if bc.digest() != provisioning.tbs_digest || bc.role() != Role::Tbs {
        return Err("the stored tbs certificate is not the provisioned one".into());
    }
    Ok(TbsRecord {
        bc,
        anchor_txid: wire.anchor_txid,
        anchor_height: wire.anchor_height,
    })
}

fn progress(wire: ProgressWire, bc: &BirthCertificate) -> Result<Progress, String> {
    let txid = match (wire.batch, wire.anchor_txid) {
        (true, None) if wire.anchor_tx.is_none() && wire.anchor_funding_sat.is_none() => {
            return Ok(Progress::Batch)
        }
        (false, Some(txid)) => txid,
        _ => return Err("progress is neither a batch nor one anchoring transaction".into()),
    };
    let funding = wire.anchor_funding_sat.map(Amount::from_sat);
    let Some(hex) = wire.anchor_tx else {
        return Ok(Progress::Direct {
            txid,
            tx: None,
            funding,
        });
    };
    let tx: Transaction = bitcoin::consensus::encode::deserialize_hex(&hex)
        .map_err(|e| format!("anchor transaction: {e}"))?;
    if tx.compute_txid() != txid {
        return Err("the anchor transaction does not have the stored txid".into());
    }
    let record = RecordCandidate::from_tx(&tx).map_err(|e| format!("anchor transaction: {e}"))?;
    if record.payload().digest != bc.digest() || record.claimed_signer() != *bc.public_key() {
        return Err("the anchor transaction is not this device's".into());
    }
    Ok(Progress::Direct {
        txid,
        tx: Some(tx),
        funding,
    })
}

#[cfg(test)]
mod tests;
