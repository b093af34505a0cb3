//! Instructions: opened with the device's key, checked to be for this device, verified by
//! SPV against fresh headers, refused if older than the stored ones, and only then stored.

use bitcoin::Transaction;
use milagro_anchor::envelope::SealedInstructions;
use milagro_anchor::instructions::Instructions;
use milagro_anchor::keys::PublicKey;
use milagro_anchor::proof::{AnchorProof, VerifiedAnchor};
use milagro_wire::tbs::enrolment::{EnrolmentProgress, EnrolmentStage};

use crate::enrolment::{instructions_path, sealed_instructions, Enrolled};
use crate::error::{Error, Step};
use crate::http::{Answer, ServiceClient};
use crate::sources::device_chain;
use crate::state::{AnchorSummary, ChainSeen, Device, StoredInstructions};

/// The TBS's progress report while instructions are not ready (`202`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// `offered`, `broadcast`, … as the TBS says.
    pub status: String,
    /// The anchor's confirmations, when the TBS reports them.
    pub depth: Option<u64>,
}

impl Pending {
    /// What the progress of a `202` answer says.
    pub(crate) fn from_answer(answer: &Answer) -> Result<Self, Error> {
        let progress: EnrolmentProgress = answer.read(Step::FetchInstructions)?;
        let depth = match progress.stage {
            EnrolmentStage::Confirmed { depth, .. } => Some(u64::from(depth)),
            _ => None,
        };
        Ok(Self {
            status: progress.stage.status().to_owned(),
            depth,
        })
    }
}

/// What a refresh found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refreshed {
    /// Newer instructions were verified and stored.
    Updated {
        /// The sequence stored before.
        previous: u64,
        /// The sequence stored now.
        sequence: u64,
    },
    /// The TBS serves the sequence already stored: nothing changed.
    Unchanged {
        /// The stored sequence.
        sequence: u64,
    },
    /// The TBS has no instructions ready (its anchor went back to waiting for
    /// confirmations, after a reorg): the stored ones stay.
    Pending(Pending),
}

/// Instructions ready to store, and the device's own anchoring transaction from their
/// proof (direct mode; a batch member's proof carries the batch's transaction).
pub(crate) struct Accepted {
    pub stored: StoredInstructions,
    pub device_tx: Option<Transaction>,
    /// The chain they were verified against.
    pub chain: ChainSeen,
}

/// Opens, checks and verifies `sealed` for `device`; refuses a sequence not above the
/// stored one.
pub(crate) fn accept_instructions(
    device: &Device,
    tbs_key: &PublicKey,
    tbs: &ServiceClient,
    sealed: &SealedInstructions,
) -> Result<Accepted, Error> {
    if let Some(stored) = device.instructions.as_ref().map(|i| i.sequence) {
        if sealed.sequence() <= stored {
            return Err(Error::StaleInstructions {
                offered: sealed.sequence(),
                stored,
            });
        }
    }
    let instructions = Instructions::open(
        &device.instruction_key,
        tbs_key,
        &device.public_key(),
        sealed,
    )?;
    let provisioning = &device.provisioning;
    if (instructions.tenant.as_str(), instructions.group.as_str())
        != (&provisioning.tenant, &provisioning.group)
    {
        return Err(Error::ForeignInstructions(format!(
            "they are for {}/{}, the device belongs to {}/{}",
            instructions.tenant, instructions.group, provisioning.tenant, provisioning.group
        )));
    }
    let chain = device_chain(tbs, device)?;
    let verified = instructions.verify(&device.bc, tbs_key, &chain.headers)?;
    let anchor = verified.device_anchor();
    let got = verified.instructions();
    if got.device.txid() != anchor.txid() {
        return Err(Error::ForeignInstructions(format!(
            "they name anchor {} but prove {}",
            got.device.txid(),
            anchor.txid()
        )));
    }
    if got.device.is_batched() != device.is_batched() {
        return Err(Error::ForeignInstructions(format!(
            "they anchor the device {}, it enrolled {}",
            mode(got.device.is_batched()),
            mode(device.is_batched()),
        )));
    }
    // A batch root may be anchored anew (its first transaction could never confirm), so
    // only a direct anchor is held to the transaction the device knows.
    if let (false, Some(txid)) = (device.is_batched(), device.anchor_txid()) {
        if txid != anchor.txid() {
            return Err(Error::ForeignInstructions(format!(
                "they prove anchor {}, the device's is {txid}",
                anchor.txid()
            )));
        }
    }
    let device_tx = if got.device.is_batched() {
        None
    } else {
        let proof = AnchorProof::from_json(got.device.anchor_proof())
            .map_err(|e| Error::ForeignInstructions(e.to_string()))?;
        Some(proof.tx().clone())
    };
    let summary = |a: &VerifiedAnchor| AnchorSummary {
        txid: a.txid(),
        height: a.height(),
        depth: a.depth(),
    };
    let stored = StoredInstructions {
        sequence: sealed.sequence(),
        device_anchor: summary(anchor),
        service_anchors: verified.service_anchors().iter().map(summary).collect(),
        instructions: got.clone(),
    };
    Ok(Accepted {
        stored,
        device_tx,
        chain: chain.seen,
    })
}

impl Enrolled {
    /// Fetches the instructions again; stores them if their sequence is above the stored
    /// one (after opening and verifying them like the first ones), reports them unchanged
    /// if it is the same, and refuses a lower one ([`Error::StaleInstructions`]).
    ///
    /// On an error nothing changes, in memory or on disk.
    pub fn refresh(&mut self, tbs: &ServiceClient) -> Result<Refreshed, Error> {
        let step = Step::FetchInstructions;
        let answer = tbs.get(step, &instructions_path(&self.device.public_key()))?;
        if answer.status != 200 {
            return Ok(Refreshed::Pending(Pending::from_answer(&answer)?));
        }
        let sealed = sealed_instructions(&answer)?;
        let previous = self.stored.sequence;
        if sealed.sequence() == previous {
            return Ok(Refreshed::Unchanged { sequence: previous });
        }
        let accepted = accept_instructions(&self.device, &self.tbs_key, tbs, &sealed)?;
        let sequence = accepted.stored.sequence;
        let old = self.device.instructions.replace(accepted.stored.clone());
        let old_chain = self.device.chain.replace(accepted.chain);
        if let Err(error) = self.device.save() {
            self.device.instructions = old;
            self.device.chain = old_chain;
            return Err(error);
        }
        *self.stored = accepted.stored;
        Ok(Refreshed::Updated { previous, sequence })
    }
}

fn mode(batched: bool) -> &'static str {
    if batched {
        "in a batch"
    } else {
        "by its own transaction"
    }
}
