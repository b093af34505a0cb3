//! The terms of an anchoring offer, sealed by the TBS to the one device that may read them.
//!
//! An offer in clear could be read by anyone who asks the TBS for a device's progress, and
//! swapped by anyone on the path: a device that checks only its key, its digest and the fee
//! would sign a transaction spending its funding output to someone else's change, and that
//! signature becomes a double-spend of the honest anchor once the payment is on chain. So
//! the TBS seals the PSBT together with what it means to be signed (the funding outpoint
//! it pays, the change script it expects back, the expiry of its coin reservation) under
//! the device's instruction key, which only the device and the TBS hold. The device opens
//! them, and signs only a PSBT that passes [`AnchorOffer::check`] **and** spends exactly
//! the sealed outpoint and pays exactly the sealed change, before the offer lapses.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bitcoin::{OutPoint, ScriptBuf};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use super::{AnchorOffer, OfferError, MAX_PSBT_BYTES};
use crate::birth_certificate::BirthCertificate;
use crate::envelope::{open_offer, seal_offer, InstructionKey, SealedOffer};
use crate::keys::PublicKey;

/// Largest change script accepted in terms (a P2WPKH is 22 bytes; a P2TR 34).
const MAX_CHANGE_SCRIPT_BYTES: usize = 64;

/// An offer as the TBS means it: the PSBT, the outpoint it funds the device from, the
/// script its change must go to, and when the offer lapses.
///
/// The TBS makes them with [`Self::new`] and [`Self::seal`]s them; the device
/// [`Self::open`]s them and [`Self::check`]s them, which is the only way it gets an
/// [`AnchorOffer`] to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferTerms {
    psbt: Vec<u8>,
    funding: OutPoint,
    change: ScriptBuf,
    expires_at: u64,
}

/// The sealed plaintext (JSON); the expiry travels in the sealing, bound, not in here.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Plaintext {
    /// The PSBT, base64 (standard alphabet, as PSBTs are usually written).
    psbt: String,
    /// `txid:vout`.
    funding: OutPoint,
    /// The change script, hex.
    change: String,
}

impl OfferTerms {
    /// TBS side: the terms of `offer`, built from `funding` with change to `change`,
    /// lapsing at `expires_at` (Unix seconds). `funding` and `change` are the values the
    /// offer was built from, stated apart from the PSBT so the device can hold the PSBT to
    /// them.
    pub fn new(offer: &AnchorOffer, funding: OutPoint, change: ScriptBuf, expires_at: u64) -> Self {
        Self {
            psbt: offer.to_psbt_bytes(),
            funding,
            change,
            expires_at,
        }
    }

    /// The funding outpoint the offer must spend.
    pub fn funding(&self) -> OutPoint {
        self.funding
    }

    /// The script the offer's change must pay.
    pub fn change(&self) -> &ScriptBuf {
        &self.change
    }

    /// When the offer lapses (Unix seconds).
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// TBS side: seals the terms for `device` under its instruction key.
    pub fn seal(
        &self,
        rng: &mut impl CryptoRngCore,
        key: &InstructionKey,
        tbs: &PublicKey,
        device: &PublicKey,
    ) -> Result<SealedOffer, OfferError> {
        let plaintext = Plaintext {
            psbt: STANDARD.encode(&self.psbt),
            funding: self.funding,
            change: hex::encode(self.change.as_bytes()),
        };
        let plaintext = serde_json::to_vec(&plaintext)
            .map_err(|e| OfferError::Terms(format!("cannot write the terms: {e}")))?;
        seal_offer(rng, key, tbs, device, self.expires_at, &plaintext).map_err(OfferError::Sealed)
    }

    /// Device side: opens terms that `tbs` sealed for `device` under the device's
    /// instruction key. Nothing in them is trusted until [`Self::check`].
    pub fn open(
        key: &InstructionKey,
        tbs: &PublicKey,
        device: &PublicKey,
        sealed: &SealedOffer,
    ) -> Result<Self, OfferError> {
        let (expires_at, plaintext) =
            open_offer(key, tbs, device, sealed).map_err(OfferError::Sealed)?;
        let terms: Plaintext =
            serde_json::from_slice(&plaintext).map_err(|e| OfferError::Terms(e.to_string()))?;
        // Capped before decoding: the sealing already caps the whole message, these keep
        // each field to what an anchoring offer can need.
        if terms.psbt.len() > MAX_PSBT_BYTES.div_ceil(3) * 4 {
            return Err(OfferError::Malformed(format!(
                "{} base64 characters",
                terms.psbt.len()
            )));
        }
        if terms.change.len() > 2 * MAX_CHANGE_SCRIPT_BYTES {
            return Err(OfferError::Terms(format!(
                "change script of {} hex characters",
                terms.change.len()
            )));
        }
        let psbt = STANDARD
            .decode(&terms.psbt)
            .map_err(|e| OfferError::Malformed(format!("psbt base64: {e}")))?;
        let change = hex::decode(&terms.change)
            .map_err(|e| OfferError::Terms(format!("change script: {e}")))?;
        Ok(Self {
            psbt,
            funding: terms.funding,
            change: ScriptBuf::from_bytes(change),
            expires_at,
        })
    }

    /// Device side, in one step: opens the offer `tbs` sealed for the device of `bc` under
    /// its instruction key `key` and [`Self::check`]s it at `now` (Unix seconds). The only
    /// way a device should come by an [`AnchorOffer`] to sign.
    pub fn open_checked(
        key: &InstructionKey,
        tbs: &PublicKey,
        bc: &BirthCertificate,
        sealed: &SealedOffer,
        now: u64,
    ) -> Result<AnchorOffer, OfferError> {
        Self::open(key, tbs, bc.public_key(), sealed)?.check(bc, now)
    }

    /// Device side: checks the offer at time `now` (Unix seconds): [`AnchorOffer::check`]
    /// (it anchors `bc` from the device's own key for a bounded fee), then that input 0
    /// spends exactly the sealed funding outpoint and output 1 pays exactly the sealed
    /// change script, and that the offer has not lapsed. Returns the offer to sign.
    pub fn check(self, bc: &BirthCertificate, now: u64) -> Result<AnchorOffer, OfferError> {
        let offer = AnchorOffer::check(&self.psbt, bc)?;
        let tx = offer.unsigned_tx();
        // `AnchorOffer::check` has established one input and two outputs.
        let (Some(input), Some(change)) = (tx.input.first(), tx.output.get(1)) else {
            return Err(OfferError::Shape("one input and two outputs"));
        };
        if input.previous_output != self.funding {
            return Err(OfferError::FundingMismatch {
                sealed: self.funding,
                psbt: input.previous_output,
            });
        }
        if change.script_pubkey != self.change {
            return Err(OfferError::ChangeMismatch {
                sealed: self.change,
                psbt: change.script_pubkey.clone(),
            });
        }
        if now >= self.expires_at {
            return Err(OfferError::Lapsed {
                expires_at: self.expires_at,
                now,
            });
        }
        Ok(offer)
    }
}

#[cfg(test)]
mod tests;
