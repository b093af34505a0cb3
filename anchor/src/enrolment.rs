//! The messages a device (PAT) sends a TBS to enrol, and the checks the TBS runs on them.
//!
//! 1. [`EnrolmentRequest`]: the device's self-signed Birth Certificate, a fresh
//!    [`InstructionKey`] for the answers, the tenant and group it was provisioned for, a
//!    random nonce and its creation time; sealed to the TBS key
//!    ([`Purpose::EnrolmentRequest`], sender = the device key). Opening checks that the
//!    certificate is a `pat` one, that it is signed by the key the envelope names as
//!    sender, and that the request is recent: an envelope is not authenticated by itself,
//!    the certificate's self-signature is.
//! 2. The TBS answers with an [`AnchorOffer`](crate::anchor_offer::AnchorOffer) (a PSBT the
//!    device checks itself, so it travels in clear).
//! 3. [`SignedAnchor`]: the signed anchoring transaction, sealed to the TBS
//!    ([`Purpose::SignedAnchorTx`]).
//!
//! Replays: a request carries a random nonce and the envelope a fresh ephemeral key; the
//! TBS remembers both for [`MAX_CLOCK_SKEW_SECS`] either side of `created` and treats a
//! request from an already enrolled device as a lookup of its existing state.

use bitcoin::consensus::encode;
use bitcoin::Transaction;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

use crate::birth_certificate::{BcError, BirthCertificate, Role};
use crate::envelope::{
    open, seal, EnvelopeError, InstructionKey, Purpose, SealedEnvelope, SenderId,
};
use crate::keys::{PublicKey, SecretKey};

/// How far a request's `created` may be from the TBS clock, either way, in seconds.
pub const MAX_CLOCK_SKEW_SECS: u64 = 600;
/// Longest tenant or group name carried (the TBS applies its own, stricter rules).
pub const MAX_NAME_BYTES: usize = 64;

/// Why an enrolment message was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrolmentError {
    /// The envelope does not open, or is not of the expected purpose.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The plaintext is not the expected JSON.
    #[error("malformed enrolment message: {0}")]
    Malformed(String),
    /// The Birth Certificate is invalid.
    #[error("invalid birth certificate: {0}")]
    BirthCertificate(#[from] BcError),
    /// The certificate is not a device (`pat`) certificate.
    #[error("only a pat certificate can enrol, got {0}")]
    NotAPat(Role),
    /// The envelope's sender is not the certificate's key.
    #[error("the envelope sender is not the certificate's key")]
    SenderMismatch,
    /// `created` is too far from the TBS clock.
    #[error("request created at {created}, more than {MAX_CLOCK_SKEW_SECS} s from now ({now})")]
    Stale {
        /// The request's time.
        created: u64,
        /// The TBS clock.
        now: u64,
    },
    /// A tenant or group name is empty or too long.
    #[error("invalid {0} name")]
    InvalidName(&'static str),
}

/// A device's request to enrol.
#[derive(Debug)]
pub struct EnrolmentRequest {
    /// The device's self-signed certificate.
    pub birth_certificate: BirthCertificate,
    /// The key the TBS seals its answers with.
    pub instruction_key: InstructionKey,
    /// The tenant the device was provisioned for.
    pub tenant: String,
    /// The device group within it.
    pub group: String,
    /// 16 random bytes, unique per request.
    pub nonce: [u8; 16],
    /// When the device made the request (Unix seconds).
    pub created: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestWire {
    birth_certificate: serde_json::Value,
    instruction_key: InstructionKey,
    tenant: String,
    group: String,
    nonce: String,
    created: u64,
}

impl EnrolmentRequest {
    /// A fresh request with a new nonce.
    pub fn new(
        rng: &mut impl CryptoRngCore,
        birth_certificate: BirthCertificate,
        instruction_key: InstructionKey,
        tenant: &str,
        group: &str,
        now: u64,
    ) -> Result<Self, EnrolmentError> {
        check_name(tenant, "tenant")?;
        check_name(group, "group")?;
        let mut nonce = [0u8; 16];
        rng.fill_bytes(&mut nonce);
        Ok(Self {
            birth_certificate,
            instruction_key,
            tenant: tenant.to_owned(),
            group: group.to_owned(),
            nonce,
            created: now,
        })
    }

    /// Seals the request to the TBS key; the sender is the device key.
    pub fn seal(
        &self,
        rng: &mut impl CryptoRngCore,
        tbs: &PublicKey,
    ) -> Result<SealedEnvelope, EnrolmentError> {
        let certificate: serde_json::Value =
            serde_json::from_slice(&self.birth_certificate.to_canonical_json())
                .map_err(|e| EnrolmentError::Malformed(e.to_string()))?;
        let wire = RequestWire {
            birth_certificate: certificate,
            instruction_key: self.instruction_key.clone(),
            tenant: self.tenant.clone(),
            group: self.group.clone(),
            nonce: hex::encode(self.nonce),
            created: self.created,
        };
        let plaintext = zeroize::Zeroizing::new(
            serde_json::to_vec(&wire).map_err(|e| EnrolmentError::Malformed(e.to_string()))?,
        );
        let sender = SenderId::from_public_key(self.birth_certificate.public_key());
        Ok(seal(
            rng,
            tbs,
            Purpose::EnrolmentRequest,
            &sender,
            &plaintext,
        )?)
    }

    /// TBS side: opens and checks a request at time `now`.
    pub fn open(
        tbs_key: &SecretKey,
        envelope: &SealedEnvelope,
        now: u64,
    ) -> Result<Self, EnrolmentError> {
        let opened = open(tbs_key, Purpose::EnrolmentRequest, envelope)?;
        let wire: RequestWire = serde_json::from_slice(&opened.plaintext)
            .map_err(|e| EnrolmentError::Malformed(e.to_string()))?;
        let certificate = serde_json::to_vec(&wire.birth_certificate)
            .map_err(|e| EnrolmentError::Malformed(e.to_string()))?;
        let birth_certificate = BirthCertificate::parse(&certificate)?;
        if birth_certificate.role() != Role::Pat {
            return Err(EnrolmentError::NotAPat(birth_certificate.role()));
        }
        if opened.sender.public_key().as_ref() != Some(birth_certificate.public_key()) {
            return Err(EnrolmentError::SenderMismatch);
        }
        if wire.created.abs_diff(now) > MAX_CLOCK_SKEW_SECS {
            return Err(EnrolmentError::Stale {
                created: wire.created,
                now,
            });
        }
        check_name(&wire.tenant, "tenant")?;
        check_name(&wire.group, "group")?;
        let mut nonce = [0u8; 16];
        hex::decode_to_slice(&wire.nonce, &mut nonce)
            .map_err(|e| EnrolmentError::Malformed(format!("nonce: {e}")))?;
        Ok(Self {
            birth_certificate,
            instruction_key: wire.instruction_key,
            tenant: wire.tenant,
            group: wire.group,
            nonce,
            created: wire.created,
        })
    }

    /// The device key.
    pub fn device(&self) -> &PublicKey {
        self.birth_certificate.public_key()
    }
}

fn check_name(name: &str, what: &'static str) -> Result<(), EnrolmentError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(EnrolmentError::InvalidName(what));
    }
    Ok(())
}

/// The device's signed anchoring transaction, on its way back to the TBS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedAnchor {
    /// The device key (the envelope's sender).
    pub device: PublicKey,
    /// The signed transaction.
    pub tx: Transaction,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedAnchorWire {
    tx: String,
}

impl SignedAnchor {
    /// Seals the signed transaction to the TBS key.
    pub fn seal(
        &self,
        rng: &mut impl CryptoRngCore,
        tbs: &PublicKey,
    ) -> Result<SealedEnvelope, EnrolmentError> {
        let wire = SignedAnchorWire {
            tx: encode::serialize_hex(&self.tx),
        };
        let plaintext =
            serde_json::to_vec(&wire).map_err(|e| EnrolmentError::Malformed(e.to_string()))?;
        Ok(seal(
            rng,
            tbs,
            Purpose::SignedAnchorTx,
            &SenderId::from_public_key(&self.device),
            &plaintext,
        )?)
    }

    /// TBS side: opens the envelope. Whether the transaction is the one offered, signed by
    /// the device, is [`AnchorOffer::accept`](crate::anchor_offer::AnchorOffer::accept)'s
    /// check.
    pub fn open(tbs_key: &SecretKey, envelope: &SealedEnvelope) -> Result<Self, EnrolmentError> {
        let opened = open(tbs_key, Purpose::SignedAnchorTx, envelope)?;
        let device = opened
            .sender
            .public_key()
            .ok_or(EnrolmentError::SenderMismatch)?;
        let wire: SignedAnchorWire = serde_json::from_slice(&opened.plaintext)
            .map_err(|e| EnrolmentError::Malformed(e.to_string()))?;
        let tx = encode::deserialize_hex(&wire.tx)
            .map_err(|e| EnrolmentError::Malformed(format!("tx: {e}")))?;
        Ok(Self { device, tx })
    }
}

#[cfg(test)]
#[path = "enrolment_tests.rs"]
mod tests;
